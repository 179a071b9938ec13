import matplotlib as mpl
import matplotlib.colors as mcolors
import numpy as np
import pytest

from dlmath._book import plotting


def test_palette_colours_are_distinct_and_valid():
    colours = list(plotting.OKABE_ITO.values())
    assert len(set(colours)) == len(colours) == 8
    rgb = np.array([mcolors.to_rgb(c) for c in colours])
    # pairwise distances in RGB are all clearly non-zero
    d = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    assert d[~np.eye(len(colours), dtype=bool)].min() > 0.1


def test_style_is_temporary_and_svg():
    before = dict(mpl.rcParams)
    with plotting.book_style():
        assert mpl.rcParams["savefig.format"] == "svg"
        assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][0] == plotting.OKABE_ITO["blue"]
    assert mpl.rcParams["savefig.format"] == before["savefig.format"]


def test_figure_and_labels_validate():
    with pytest.raises(ValueError, match="ncols"):
        plotting.figure(ncols=0)
    fig, ax = plotting.figure()
    with pytest.raises(ValueError, match="xlabel and ylabel"):
        plotting.label_axes(ax, "", "y")
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_import_changes_nothing():
    import importlib
    import subprocess
    import sys

    code = (
        "import matplotlib as mpl; before = dict(mpl.rcParams); "
        "import dlmath._book.plotting; assert dict(mpl.rcParams) == before"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert importlib.import_module("dlmath._book.plotting") is plotting
