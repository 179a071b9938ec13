"""The chapter figures' helpers: the hand sum against torch, the padding, the drawings."""

import itertools

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from dlmath._book import convfig

matplotlib.use("agg")


def test_window_sum_matches_conv2d_everywhere():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-3, 4, (4, 5), generator=g)
    w = torch.randint(-2, 3, (3, 2), generator=g)
    for padding in (0, 1, 2):
        z = F.conv2d(x[None, None].double(), w[None, None].double(), padding=padding)[0, 0]
        for u, v in itertools.product(range(z.shape[0]), range(z.shape[1])):
            value, text = convfig.window_sum(x.tolist(), w.tolist(), padding, (u, v))
            assert value == z[u, v].item()
            assert text.endswith(f"= {value}".replace("-", "−"))


def test_pad_grid_is_torch_pad():
    x = [[1, 2, 3], [4, 5, 6]]
    assert convfig.pad_grid(x, 2) == F.pad(torch.tensor(x), (2, 2, 2, 2)).tolist()


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_pad_grid_rejects_bad_padding(bad):
    with pytest.raises(ValueError, match="padding"):
        convfig.pad_grid([[1]], bad)


def test_window_sum_rejects_a_cell_outside():
    with pytest.raises(ValueError, match="no window"):
        convfig.window_sum([[1, 2], [3, 4]], [[1, 1], [1, 1]], 0, (1, 0))


def test_drawings_run():
    import matplotlib.pyplot as plt

    fig = convfig.draw_padded_conv([[1, 2], [3, 4]], [[1]], [[1, 2], [3, 4]], 1, (0, 0))
    assert len(fig.axes) == 3
    plt.close(fig)
    fig, ax = plt.subplots()
    convfig.draw_windows(ax, 7, 2, 2, 0, ceil_mode=True)
    assert ax.get_xlabel().startswith("input position")
    plt.close(fig)
