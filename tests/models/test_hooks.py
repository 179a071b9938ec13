"""dlmath.models.layer_output: the hooked output equals running the network up to that layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlmath.models import layer_output
from dlmath.models.zoo import three_block_cnn


@pytest.mark.parametrize("layer,upto", [("block1.conv", 1), ("block1.relu", 2), ("block2", None)])
def test_layer_output_equals_the_truncated_network(layer, upto):
    torch.manual_seed(0)
    net = three_block_cnn(in_channels=1, size=16, channels=(4, 6, 8), hidden=(10,),
                          num_classes=3).eval()
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        if upto is None:                                   # a whole block
            expected = net.block2(net.block1(x))
        else:                                              # the first layers of block 1
            expected = net.block1[:upto](x)
    torch.testing.assert_close(layer_output(net, x, layer), expected, rtol=0, atol=0)
    assert not net.block1.conv._forward_hooks              # the hook is gone


def test_tuple_inputs_and_outputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(2, 3, batch_first=True)

        def forward(self, a, b):
            return self.lstm(a + b)[0]

    net = Two()
    a, b = torch.rand(1, 4, 2), torch.rand(1, 4, 2)
    out = layer_output(net, (a, b), "lstm")                 # first element of (output, (h, c))
    torch.testing.assert_close(out, net(a, b).detach())


def test_errors():
    with pytest.raises(ValueError, match="no layer 'fc'"):
        layer_output(nn.Sequential(nn.ReLU()), torch.zeros(1), "fc")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        layer_output(lambda x: x, torch.zeros(1), "0")
