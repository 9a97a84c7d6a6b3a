"""Cost model: GAN Compression's published integers, torchinfo, FlopCounterMode, extracted models, the CLI."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchinfo import summary

from gancomp_lite import cli
from gancomp_lite.cost import CostModel, count, layer_table
from gancomp_lite.models.registry import build
from gancomp_lite.nn.blocks import ConvNormAct, conv
from gancomp_lite.nn.elastic import ChannelError, ElasticLinear, extract, set_active
from gancomp_lite.space import ConfigError

SIZE = 32
TINY = {"ngf": 16, "step": 4}
SUB = "8_4_12_4_16_8_12_4"


# --- GAN Compression's published figures (README and tutorial), at 256 x 256 ------------------------
@pytest.mark.parametrize("arch, config, macs, params", [
    ("resnet9", None, 56_831_770_624, 11_378_179),                            # Original: 56.8G / 11.4M
    ("mobile-resnet9", "16_16_32_16_32_32_16_16", 2_546_204_672, 356_867),   # horse2zebra: 2.55G / 0.357M
    ("mobile-resnet9", "32_32_48_32_48_48_16_16", 4_993_843_200, 822_051),   # edges2shoes: 4.99G / 0.822M
    ("mobile-resnet9", "16_16_32_16_16_64_16_24", 2_984_771_584, None),      # gan-compression#97
])
def test_published_gan_compression_figures(arch, config, macs, params):
    cost = count(arch, config, 256)
    assert cost.macs == macs
    if params is not None:
        assert cost.params == params


def test_physical_count_of_resnet9_matches_the_flop_counter_figure():
    # notebooks_ecosystem.md 4.2: FlopCounterMode gives 49.552 G for the ngf-64 ResNet-9 at 256
    assert round(count("resnet9", None, 256, convention="physical").macs / 1e9, 3) == 49.552


# --- against other counters ------------------------------------------------------------------------
def _elements(model: nn.Module, x: torch.Tensor, types) -> int:
    """Output elements of every module of `types` in one forward (independent of the cost model)."""
    total = []
    handles = [m.register_forward_hook(lambda m, a, o: total.append(o.numel()))
               for m in model.modules() if isinstance(m, types)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return sum(total)


class DenseConvs(nn.Module):
    def __init__(self, full, bias):
        super().__init__()
        self.a = conv(3, "a", full, 3, bias=bias)
        self.b = conv("a", "b", full, 3, stride=2, bias=bias)
        self.c = conv(("b", 2), "a", full, 1, bias=bias)
        self.d = conv("a", "a", full, 5, separable=True, norm="none", bias=bias)

    def forward(self, x):
        h = self.b(self.a(x))
        return self.d(self.c(torch.cat([h, h[:, :2]], dim=1)))


@pytest.mark.parametrize("bias", [False, True])
def test_dense_and_depthwise_convs_match_torchinfo(bias):
    full = {"a": 12, "b": 20}
    model = DenseConvs(full, bias)
    x = torch.zeros(1, 3, 16, 16)
    info = summary(model, input_data=x, device="cpu", verbose=0)
    bias_macs = _elements(model, x, nn.Conv2d) if bias else 0    # torchinfo adds one MAC per output for a bias
    cost = count(model, size=16)
    assert info.total_mult_adds == cost.macs + bias_macs
    assert info.total_params == cost.params


def test_resnet9_matches_torchinfo_after_bias_and_norm_terms():
    model = build("resnet9", SUB, SIZE, **TINY)
    x = torch.zeros(1, 3, SIZE, SIZE)
    info = summary(model, input_data=x, device="cpu", verbose=0)
    convs = _elements(model, x, (nn.Conv2d, nn.ConvTranspose2d))   # torchinfo: bias, output-grid ConvT
    norms = _elements(model, x, nn.InstanceNorm2d)                  # torchinfo: IN(affine=False) is free
    assert info.total_mult_adds == count(model).macs + convs - norms
    assert info.total_params == count(model).params


def _flop_counter_macs(model: nn.Module, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("arch, knobs", [("resnet9", {}), ("mobile-resnet9", {}),
                                         ("resnet9", {"separable": ("c6", "c7")})])
def test_physical_convention_matches_the_flop_counter(arch, knobs):
    model = build(arch, SUB, SIZE, **TINY, **knobs)
    assert count(model, convention="physical").macs == _flop_counter_macs(model, torch.zeros(1, 3, SIZE, SIZE))


def test_transposed_conv_conventions_differ_by_stride_squared():
    full = {"a": 8, "b": 4}
    model = nn.Sequential(conv("a", "b", full, 3, stride=2, transposed=True, bias=False))
    model.in_channels = 8
    x = torch.zeros(1, 8, 16, 16)
    physical = count(model, size=16, convention="physical").macs
    assert physical == _flop_counter_macs(model, x) == 16 * 16 * 8 * 4 * 9
    assert count(model, size=16).macs == 4 * physical                          # output grid: 32 x 32


class WithLinear(nn.Module):
    def __init__(self, full):
        super().__init__()
        self.conv = ConvNormAct(3, "a", full, 3, stride=2, norm="batch")
        self.fc = ElasticLinear(("a", 1), "b", full)

    def forward(self, x):
        h = self.conv(x).mean(dim=(2, 3))
        return self.fc(torch.cat([h, h[:, :1]], dim=1))


def test_linear_and_batchnorm_layers():
    full = {"a": 6, "b": 10}
    model = WithLinear(full)
    x = torch.zeros(1, 3, 8, 8)
    for convention in ("gancomp", "physical"):                 # BN is free in both; linear = in * out
        assert count(model, size=8, convention=convention).macs == _flop_counter_macs(model, x)
    cost_model = CostModel(model, 8)
    assert cost_model.params({"a": 4, "b": 3}) == 3 * 4 * 9 + 4 + 2 * 4 + 5 * 3 + 3


# --- supernet = extracted subnet ---------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["resnet9", "mobile-resnet9"])
def test_supernet_cost_at_a_config_equals_the_extracted_subnet(arch):
    supernet = build(arch, None, SIZE, **TINY)
    config = supernet.space.decode(SUB)
    widths = supernet.space.widths(config)
    subnet = extract(supernet, build(arch, config, SIZE, **TINY), widths)
    from_supernet = CostModel(supernet).cost(config)
    assert from_supernet == count(subnet) == count(arch, SUB, SIZE, **TINY)
    assert from_supernet.params == sum(p.numel() for p in subnet.parameters())
    set_active(supernet, widths)
    assert count(subnet, convention="physical").macs == _flop_counter_macs(supernet, torch.zeros(1, 3, SIZE, SIZE))


# --- the API -------------------------------------------------------------------------------------------
def test_batch_and_layer_table_agree_with_single_configs():
    model = CostModel.for_arch("mobile-resnet9", 64)
    rng = random.Random(0)
    configs = [model.space.sample(rng) for _ in range(200)]
    batch = model.macs_batch(model.array(configs), "physical")
    params = model.params_batch(model.array(configs))
    assert batch.tolist() == [model.macs(c, "physical") for c in configs]
    assert params.tolist() == [model.params(c) for c in configs]
    rows = model.layer_table(configs[0])
    assert sum(r["macs"] for r in rows) == model.macs(configs[0])
    assert sum(r["params"] for r in rows) == model.params(configs[0])
    assert [r["kind"] for r in rows[:3]] == ["conv", "instancenorm", "conv"]
    assert rows == layer_table("mobile-resnet9", configs[0], 64)


def test_macs_grow_with_every_group():
    model = CostModel.for_arch("mobile-resnet9", 64)
    base = model.space.smallest()
    for group in model.groups:
        wider = {**base, group: 16}
        assert model.macs(wider) > model.macs(base), group


def test_bad_inputs_are_refused_clearly():
    model = CostModel.for_arch("mobile-resnet9", 64, ngf=16, step=4)
    with pytest.raises(ValueError, match="unknown MACs convention 'torchinfo'"):
        model.macs(None, "torchinfo")
    with pytest.raises(ConfigError, match=r"group 'c2': 20 is wider than the teacher \(16\)"):
        model.macs("16_16_20_16_16_16_16_16")
    with pytest.raises(ConfigError, match="has 3 fields; expected 8"):
        model.macs("16_16_16")
    with pytest.raises(ConfigError, match=r"missing \['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'\]"):
        model.macs({"c0": 16})
    with pytest.raises(ChannelError, match=r"group 'c3': 80 channels is outside 1\.\.64"):
        model.macs_batch(np.array([[16, 16, 16, 20, 16, 16, 16, 16]]))
    plain = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(TypeError, match=r"layer '0' is a plain Conv2d"):
        count(plain, size=8)


# --- `gancomp-lite macs` ----------------------------------------------------------------------------------
def test_cli_prints_json(capsys):
    assert cli.main(["macs", "--arch", "mobile-resnet9", "--config", "16_16_32_16_32_32_16_16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["macs"] == 2_546_204_672 and report["params"] == 356_867
    assert (report["arch"], report["size"], report["convention"]) == ("mobile-resnet9", 256, "gancomp")


def test_cli_width_knob_size_and_convention(capsys):
    cli.main(["macs", "--arch", "resnet9", "--ngf", "16", "--knob", "step=4", "--size", "32", "--config", SUB,
              "--convention", "physical"])
    text = capsys.readouterr().out
    expected = count("resnet9", SUB, SIZE, convention="physical", **TINY)
    assert f"{expected.macs:,} MACs" in text and f"{expected.params:,} parameters" in text
    assert "physical convention" in text


def test_cli_refuses_an_impossible_config(capsys):
    assert cli.main(["macs", "--arch", "mobile-resnet9", "--config", "16_12_32_16_32_32_16_16"]) == 2
    assert "group 'c1': 12 is not an allowed step" in capsys.readouterr().err
