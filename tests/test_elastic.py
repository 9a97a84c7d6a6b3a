"""Elastic layers: prefix slicing over channel groups, concatenated layouts, extraction, errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gancomp_lite.nn.blocks import ConvNormAct, ResidualBlock, SeparableConv2d, conv
from gancomp_lite.nn.elastic import (
    ChannelError,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticInstanceNorm2d,
    ElasticLinear,
    extract,
    set_active,
)

FULL = {"a": 6, "b": 4, "c": 5}
SMALL = {"a": 3, "b": 2, "c": 4}
AB_INDEX = torch.tensor([0, 1, 2, 6, 7])          # first 3 of a (0..5), first 2 of b (6..9)


def test_conv_runs_the_first_channels_of_its_weight():
    torch.manual_seed(0)
    layer = ElasticConv2d("a", "c", FULL, 3)
    x = torch.randn(2, 3, 8, 8)
    set_active(layer, SMALL)
    expected = F.conv2d(x, layer.weight[:4, :3], layer.bias[:4], padding=1)
    torch.testing.assert_close(layer(x), expected)
    assert (layer.in_width(), layer.out_width()) == (3, 4)
    set_active(layer, None)
    assert layer(torch.randn(1, 6, 8, 8)).shape == (1, 5, 8, 8)


def test_concatenated_layout_takes_a_prefix_of_each_part():
    torch.manual_seed(0)
    layer = ElasticConv2d(("a", "b"), ("c", 2), FULL, 1, bias=False)   # int part: fixed width 2
    assert layer.weight.shape == (7, 10, 1, 1)
    set_active(layer, SMALL)
    x = torch.randn(1, 5, 4, 4)
    out_index = torch.tensor([0, 1, 2, 3, 5, 6])                          # 4 of c, then both fixed channels
    weight = layer.weight[out_index][:, AB_INDEX]
    torch.testing.assert_close(layer(x), F.conv2d(x, weight))


def test_depthwise_conv_slices_channels_once():
    torch.manual_seed(0)
    layer = ElasticConv2d("a", "a", FULL, 3, depthwise=True)
    assert layer.weight.shape == (6, 1, 3, 3)
    set_active(layer, SMALL)
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight[:3], layer.bias[:3], padding=1, groups=3))
    with pytest.raises(ChannelError, match="keeps its layout"):
        ElasticConv2d("a", "b", FULL, 3, depthwise=True)


def test_reflect_padding_is_kept_when_sliced():
    torch.manual_seed(0)
    layer = ElasticConv2d("a", "b", FULL, 3, padding_mode="reflect")
    set_active(layer, SMALL)
    x = torch.randn(1, 3, 6, 6)
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), layer.weight[:2, :3], layer.bias[:2])
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("depthwise", [False, True])
def test_transposed_conv_slices_in_out_weight(depthwise):
    torch.manual_seed(0)
    out_layout = "a" if depthwise else "b"
    layer = ElasticConvTranspose2d("a", out_layout, FULL, 3, depthwise=depthwise)
    set_active(layer, SMALL)
    x = torch.randn(1, 3, 4, 4)
    if depthwise:
        expected = F.conv_transpose2d(x, layer.weight[:3], layer.bias[:3], 2, 1, 1, groups=3)
    else:
        expected = F.conv_transpose2d(x, layer.weight[:3, :2], layer.bias[:2], 2, 1, 1)
    out = layer(x)
    assert out.shape == (1, 3 if depthwise else 2, 8, 8)
    torch.testing.assert_close(out, expected)


def test_linear_slices_and_accepts_token_dims():
    torch.manual_seed(0)
    layer = ElasticLinear(("a", "b"), "c", FULL)
    set_active(layer, SMALL)
    x = torch.randn(2, 7, 5)                                  # (batch, tokens, features)
    expected = F.linear(x, layer.weight[:4][:, AB_INDEX], layer.bias[:4])
    torch.testing.assert_close(layer(x), expected)


def test_batchnorm_updates_only_the_active_running_stats():
    torch.manual_seed(0)
    bn = ElasticBatchNorm2d("a", FULL)
    set_active(bn, SMALL)
    bn.train()
    x = torch.randn(8, 3, 4, 4) * 3 + 2
    bn(x)
    assert torch.all(bn.running_mean[:3] != 0) and torch.all(bn.running_mean[3:] == 0)
    assert torch.all(bn.running_var[3:] == 1)
    torch.testing.assert_close(bn.running_mean[:3], 0.1 * x.mean(dim=(0, 2, 3)))
    bn.eval()
    expected = F.batch_norm(x, bn.running_mean[:3], bn.running_var[:3], bn.weight[:3], bn.bias[:3], False)
    torch.testing.assert_close(bn(x), expected)


def test_batchnorm_writes_back_stats_of_a_concatenated_layout():
    torch.manual_seed(0)
    bn = ElasticBatchNorm2d(("a", "b"), FULL)
    set_active(bn, SMALL)
    x = torch.randn(8, 5, 4, 4) + 1
    bn.train()
    bn(x)
    touched = torch.zeros(10, dtype=torch.bool)
    touched[AB_INDEX] = True
    assert torch.all(bn.running_mean[touched] != 0) and torch.all(bn.running_mean[~touched] == 0)
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_without_running_stats_uses_batch_statistics():
    bn = ElasticBatchNorm2d("a", FULL, track_running_stats=False, momentum=None)
    set_active(bn, SMALL)
    bn.eval()
    x = torch.randn(4, 3, 4, 4) * 5 + 3
    out = bn(x)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)


def test_instance_norm_slices_affine_parameters():
    norm = ElasticInstanceNorm2d("a", FULL, affine=True)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 7.0))
        norm.bias.copy_(torch.arange(6.0))
    set_active(norm, SMALL)
    x = torch.randn(2, 3, 5, 5)
    expected = F.instance_norm(x, weight=norm.weight[:3], bias=norm.bias[:3])
    torch.testing.assert_close(norm(x), expected)


class Tiny(nn.Module):
    """A small elastic generator: every block kind, a concatenation, a transposed conv."""

    def __init__(self, full):
        super().__init__()
        self.stem = ConvNormAct(3, "a", full, 3, norm="batch")
        self.down = ConvNormAct("a", "b", full, 3, stride=2, separable=True)
        self.block = ResidualBlock("b", "c", full, separable=True)
        self.up = ConvNormAct("b", "a", full, 3, stride=2, transposed=True, separable=True)
        self.out = conv(("a", "a"), 3, full, 3)                  # concatenation with the skip

    def forward(self, x):
        skip = self.stem(x)
        h = self.up(self.block(self.down(skip)))
        return torch.tanh(self.out(torch.cat([h, skip], dim=1)))


def test_extract_gives_the_supernet_output_at_the_config():
    torch.manual_seed(0)
    supernet = Tiny(FULL)
    supernet.train()
    set_active(supernet, SMALL)
    supernet(torch.randn(4, 3, 8, 8))           # move BN running stats away from their init
    supernet.eval()
    x = torch.randn(2, 3, 8, 8)
    expected = supernet(x)
    subnet = extract(supernet, Tiny(SMALL).eval(), SMALL)
    torch.testing.assert_close(subnet(x), expected)
    assert subnet.out.weight.shape == (3, 6, 3, 3)
    set_active(supernet, None)
    assert supernet(x).shape == (2, 3, 8, 8)


def test_separable_conv_is_depthwise_norm_pointwise():
    layer = SeparableConv2d("a", "b", FULL, 3, stride=2)
    depthwise, norm, pointwise = layer
    assert depthwise.depthwise and depthwise.stride == (2, 2) and depthwise.weight.shape == (6, 1, 3, 3)
    assert isinstance(norm, ElasticInstanceNorm2d)
    assert pointwise.weight.shape == (4, 6, 1, 1)
    assert layer(torch.randn(1, 6, 8, 8)).shape == (1, 4, 4, 4)


def test_wrong_input_width_names_the_expected_layout():
    layer = ElasticConv2d(("a", "b"), "c", FULL, 3)
    set_active(layer, SMALL)
    with pytest.raises(ChannelError, match=r"expects 5 input channels.*\['a', 'b'\].*\(1, 7, 4, 4\)"):
        layer(torch.randn(1, 7, 4, 4))


def test_bad_active_widths_name_the_group():
    layer = ElasticConv2d("a", "c", FULL, 3)
    set_active(layer, {"a": 7, "c": 2})
    with pytest.raises(ChannelError, match=r"group 'a': width 7 is outside 1\.\.6"):
        layer(torch.randn(1, 7, 4, 4))
    set_active(layer, {"a": 2})
    with pytest.raises(ChannelError, match="no width for channel group 'c'"):
        layer(torch.randn(1, 2, 4, 4))
    with pytest.raises(ChannelError, match=r"channel group 'z' has no width; known groups: \['a', 'b', 'c'\]"):
        ElasticConv2d("z", "a", FULL, 3)


def test_extract_into_a_wrong_subnet_names_the_layer():
    supernet = Tiny(FULL)
    with pytest.raises(ChannelError, match=r"layer 'stem.0' weight"):
        extract(supernet, Tiny(SMALL), {"a": 2, "b": 2, "c": 4})
