"""Separable students, their initialisation, the sensitivity study and notebook 03's plots (tiny models)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from data_tools.protocol import NEUTRAL_ILLUMINATION
from gancomp_lite import cost
from gancomp_lite.compress import sensitivity as S
from gancomp_lite.viz import sensitivity as V
from gancomp_lite.models.registry import build
from gancomp_lite.nn.blocks import SeparableConv2d
from gancomp_lite.nn.elastic import ElasticConv2d, ElasticConvTranspose2d

ARCH, SIZE, KNOBS = "resnet9", 16, {"ngf": 4, "step": 2}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def teacher(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build(ARCH, None, SIZE, **KNOBS).eval()


def make_kernels_separable(model: nn.Module) -> None:
    """Give every dense k x k kernel the form W[o, i] = P[o, i] * D[i], which a separable conv represents exactly."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (ElasticConv2d, ElasticConvTranspose2d)) and not m.depthwise and m.kernel_size[0] > 1:
                shape = m.weight.shape
                if isinstance(m, ElasticConvTranspose2d):      # (in, out, k, k)
                    m.weight.copy_(torch.randn(shape[0], shape[1], 1, 1) * torch.randn(shape[0], 1, *shape[2:]) * 0.2)
                else:                                          # (out, in, k, k)
                    m.weight.copy_(torch.randn(shape[0], shape[1], 1, 1) * torch.randn(1, shape[1], *shape[2:]) * 0.2)


class Faces(Dataset):
    """Two illuminations x 3 identities x 4 yaws of random 'faces' whose frontal depends on the identity."""

    def __init__(self, seed: int = 0, size: int = SIZE):
        g = torch.Generator().manual_seed(seed)
        frontals = torch.rand(3, 3, size, size, generator=g) * 2 - 1
        self.items, self.records = [], []
        for illum in (NEUTRAL_ILLUMINATION, "04"):
            for ident in range(3):
                for yaw in (0, 15, -30, 45):
                    profile = (frontals[ident] + 0.3 * torch.randn(3, size, size, generator=g)).clamp(-1, 1)
                    self.items.append({"profile": profile, "frontal": frontals[ident], "yaw": yaw, "identity": ident,
                                       "illumination": illum})
                    self.records.append(SimpleNamespace(illumination=illum, identity=str(ident)))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class PoolIdentity(nn.Module):
    """A stand-in identity network: 4x4 average-pooled grayscale as the feature."""

    input_size = 16

    def forward(self, gray):
        feature = F.adaptive_avg_pool2d(gray, 4).flatten(1)
        return feature, feature


# ------------------------------------------------------------------ students and their initialisation
def test_layer_groups_name_the_swapped_convs():
    layers = S.group_layers(ARCH, SIZE, KNOBS)
    assert set(layers) == set(S.separable_groups(ARCH))
    assert layers["c0"] == ["stem.0"] and layers["c6"] == ["up1.0"] and layers["out"] == ["out"]
    assert len(layers["c4"]) == 6 and all(n.startswith(("blocks.3.", "blocks.4.", "blocks.5.")) for n in layers["c4"])
    with pytest.raises(ValueError, match=r"no layer groups \['blocks'\]; separable layer groups are \['c0'"):
        S.separable_cost(ARCH, SIZE, KNOBS, ("blocks",))
    with pytest.raises(ValueError, match="no per-group separable switch"):
        S.separable_groups("mobile-resnet9")


def test_students_keep_every_other_teacher_tensor():
    t = teacher()
    calibration = Faces()[0]["profile"][None]
    for group in ("c0", "c4", "c7", "out"):
        student, layers = S.make_student(ARCH, t, KNOBS, (group,), calibration, init="fresh")
        fresh = S.transfer_weights(t, student)
        assert fresh and all(any(k.startswith(n + ".") for n in layers) for k in fresh)
        source = t.state_dict()
        for key, value in student.state_dict().items():
            if key not in fresh:
                assert torch.equal(value, source[key]), key
        assert S.layer_role(student, layers) == {"c0": "other", "c4": "residual", "c7": "upsampling", "out": "other"}[group]
    control, layers = S.make_student(ARCH, t, KNOBS, (), calibration)
    x = torch.stack([Faces()[i]["profile"] for i in range(3)])
    assert layers == [] and torch.equal(control.eval()(x), t(x))


def test_svd_init_reproduces_a_teacher_whose_kernels_are_separable():
    t = teacher()
    make_kernels_separable(t)
    x = Faces()[5]["profile"][None]        # one image: per-image norm statistics equal the calibration's
    with torch.no_grad():
        expected = t(x)
        for group in S.separable_groups(ARCH):
            student, _ = S.make_student(ARCH, t, KNOBS, (group,), x, init="svd")
            assert torch.allclose(student(x), expected, atol=1e-4), group
            fresh, _ = S.make_student(ARCH, t, KNOBS, (group,), x, init="fresh")
            assert not torch.allclose(fresh(x), expected, atol=1e-2), group


def test_factorize_is_the_best_rank_one_approximation_per_input_channel():
    torch.manual_seed(1)
    full = {"a": 5, "b": 7}
    dense = ElasticConv2d("a", "b", full, 3)
    sep = SeparableConv2d("a", "b", full, 3, norm="none")
    S.factorize(dense, sep)
    depthwise, pointwise = sep[0].weight, sep[2].weight                   # (5, 1, 3, 3), (7, 5, 1, 1)
    approx = pointwise * depthwise.transpose(0, 1)                        # (7, 5, 3, 3)
    slices = dense.weight.detach().transpose(0, 1).flatten(2)             # (5, 7, 9)
    singular = torch.linalg.svdvals(slices)
    residual = (dense.weight - approx).transpose(0, 1).flatten(2).square().sum((1, 2))
    assert torch.allclose(residual, singular[:, 1:].square().sum(1), rtol=1e-4, atol=1e-6)
    assert torch.equal(sep[2].bias, dense.bias)


def test_batchnorm_is_folded_into_an_identity_on_the_calibration_batch():
    torch.manual_seed(2)
    full = {"a": 4, "b": 6}
    dense_net = nn.Sequential(ElasticConvTranspose2d("a", "b", full, 3))
    sep_net = nn.Sequential(SeparableConv2d("a", "b", full, 3, 2, transposed=True, norm="batch"))
    make_kernels_separable(dense_net)
    x = torch.randn(4, 4, 5, 5)
    assert S.init_from_teacher(dense_net, sep_net, x) == ["0"]
    with torch.no_grad():
        assert torch.allclose(sep_net.eval()(x), dense_net(x), atol=1e-4)
        assert torch.allclose(sep_net.train()(x), dense_net(x), atol=1e-4)


def test_separable_cost_matches_the_hand_count():
    """c6 (up1: transposed 3x3, 4*ngf -> 2*ngf at 4 -> 8 px) in the physical convention: MACs saved by hand."""
    cin, cout, k, h_in, h_out = 4 * KNOBS["ngf"], 2 * KNOBS["ngf"], 3, SIZE // 4, SIZE // 2
    dense = h_in ** 2 * cin * cout * k * k
    separable = h_in ** 2 * cin * k * k + h_out ** 2 * cin * cout        # depthwise (input grid) + pointwise
    base = S.separable_cost(ARCH, SIZE, KNOBS, (), convention="physical").macs
    assert base - S.separable_cost(ARCH, SIZE, KNOBS, ("c6",), convention="physical").macs == dense - separable


def test_mac_ratio_is_what_the_cost_model_counts():
    full = {"a": 16, "b": 24}
    dense = nn.Sequential(ElasticConv2d("a", "b", full, 5))
    sep = nn.Sequential(SeparableConv2d("a", "b", full, 5, norm="none"))
    inputs = (torch.zeros(1, 16, 8, 8),)
    ratio = cost.CostModel(sep, inputs=inputs).macs() / cost.CostModel(dense, inputs=inputs).macs()
    assert math.isclose(ratio, V.mac_ratio(24, 5))
    with pytest.raises(ValueError, match="positive"):
        V.mac_ratio(0, 3)


# ------------------------------------------------------------------ the study
@pytest.fixture(scope="module")
def study():
    torch.set_num_threads(1)
    data = Faces()
    settings = S.RetrainSettings(steps=3, batch_size=4, calibration=4, seed=0)
    run = lambda: S.sensitivity(ARCH, teacher(), KNOBS, data, S.neutral_subset(data), PoolIdentity(),
                                groups=("c4", "c6"), settings=settings, convention="physical", progress=False)
    return run(), run


def test_sensitivity_rows_measure_quality_against_macs(study, tmp_path):
    results, _ = study
    control, c4, c6 = results["rows"]
    assert [r["group"] for r in results["rows"]] == ["none", "c4", "c6"]
    assert control["macs_saved"] == 0 and control["d_l1_init"] == 0 and control["d_rank1_init"] == 0
    assert (c4["role"], c6["role"]) == ("residual", "upsampling")
    base = S.separable_cost(ARCH, SIZE, KNOBS, (), convention="physical")
    assert c6["macs"] == S.separable_cost(ARCH, SIZE, KNOBS, ("c6",), convention="physical").macs
    assert c4["macs_saved"] == base.macs - c4["macs"] > c6["macs_saved"] > 0
    assert results["teacher"]["macs"] == base.macs and results["eval_samples"] == 12
    for row in (c4, c6):
        assert row["d_l1"] == pytest.approx(row["l1"] - results["teacher"]["l1"])
        assert row["history"]["step"][-1] == 3 and len(row["history"]["loss_G_distill"]) == 3
    assert S.load_results(S.save_results(results, tmp_path / "r.json")) == results
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a sensitivity result"):
        S.load_results(tmp_path / "bad.json")


def test_sensitivity_is_seeded(study):
    results, run = study
    again = run()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(again["rows"]) == strip(results["rows"])


def test_evaluation_subset_and_a_study_without_the_before_measurement():
    data = Faces()
    subset = S.neutral_subset(data, identities=2)
    assert len(subset) == 8 and {data[i]["identity"] for i in subset.indices} == {0, 1}
    with pytest.raises(ValueError, match="no sample at illumination '99'"):
        S.neutral_subset(data, "99")
    results = S.sensitivity(ARCH, teacher(), KNOBS, data, subset, PoolIdentity(), groups=("out",),
                            settings=S.RetrainSettings(steps=1, batch_size=4, calibration=2), control=False,
                            eval_before=False, progress=False)
    assert [r["group"] for r in results["rows"]] == ["out"] and "d_l1_init" not in results["rows"][0]
    V.plot_sensitivity(results)
    with pytest.raises(ValueError, match="eval_before=True"):
        V.plot_sensitivity(results, stage="_init")


def test_distillation_pulls_a_fresh_student_towards_the_teacher():
    torch.set_num_threads(1)
    t, data = teacher(), Faces()
    x = torch.stack([data[i]["profile"] for i in range(4)])
    student, _ = S.make_student(ARCH, t, KNOBS, ("c0",), x, init="fresh")      # the stem: before every tap
    history = S.retrain(student, t, data, S.RetrainSettings(steps=12, batch_size=8, lr=2e-3, lambda_recon=1.0), x[:2])
    assert history["loss_G_distill"][-1] < 0.5 * history["loss_G_distill"][0]


def test_retrain_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="unknown init 'zeros'"):
        S.RetrainSettings(init="zeros")
    with pytest.raises(ValueError, match="steps must be >= 0"):
        S.RetrainSettings(steps=-1)


# ------------------------------------------------------------------ plots and the widget
def test_sensitivity_bar_chart_shows_the_rows(study):
    results, _ = study
    fig = V.plot_sensitivity(results)
    saved, dl1, drank = ([p.get_height() for p in ax.patches[:3]] for ax in fig.axes)
    assert saved == pytest.approx([r["macs_saved_pct"] for r in results["rows"]])
    assert dl1 == pytest.approx([r["d_l1"] for r in results["rows"]])
    assert drank == pytest.approx([100 * r["d_rank1"] for r in results["rows"]])
    init = V.plot_sensitivity(results, stage="_init")
    assert [p.get_height() for p in init.axes[1].patches[:3]] == pytest.approx([r["d_l1_init"] for r in results["rows"]])
    with pytest.raises(ValueError, match="stage must be"):
        V.plot_sensitivity(results, stage="after")


def test_choice_adds_single_group_changes_and_counts_macs_live(study):
    results, _ = study
    macs = V.choice_macs(results, ["c4", "c6"])
    assert macs == S.separable_cost(ARCH, SIZE, KNOBS, ("c4", "c6"), convention="physical").macs
    rows = {r["group"]: r for r in results["rows"]}
    swap = V.choice_summary(results, ["c4", "c6"], macs)                     # right after the swap: changes add
    assert swap["d_l1"] == pytest.approx(rows["c4"]["d_l1_init"] + rows["c6"]["d_l1_init"])
    summary = V.choice_summary(results, ["c4", "c6"], macs, stage="")
    control = rows["none"]          # the re-training's own effect counts once, each group's beyond it adds
    assert summary["d_l1"] == pytest.approx(rows["c4"]["d_l1"] + rows["c6"]["d_l1"] - control["d_l1"])
    assert summary["rank1"] == pytest.approx(results["teacher"]["rank1"] + rows["c4"]["d_rank1"]
                                             + rows["c6"]["d_rank1"] - control["d_rank1"])
    alone = V.choice_summary(results, ["c6"], rows["c6"]["macs"], stage="")
    assert alone["l1"] == pytest.approx(rows["c6"]["l1"]) and alone["macs_saved_pct"] == pytest.approx(rows["c6"]["macs_saved_pct"])
    nothing = V.choice_summary(results, [], results["teacher"]["macs"])
    assert (nothing["l1"], nothing["macs_saved_pct"]) == (results["teacher"]["l1"], 0)
    assert summary["macs_saved_pct"] > rows["c4"]["macs_saved_pct"]
    fig = V.plot_choice(results, summary)
    star = fig.axes[0].collections[-1].get_offsets()[0]
    assert star[0] == pytest.approx(macs / 1e6) and star[1] == pytest.approx(summary["l1"])
    c6_point = fig.axes[1].collections[2].get_offsets()[0]
    assert c6_point[1] == pytest.approx(rows["c6"]["rank1"])
    with pytest.raises(ValueError, match="stage must be"):
        V.choice_summary(results, ["c4"], macs, stage="after")
    worse = {**results, "rows": [{**r, "d_rank1_init": -0.9} for r in results["rows"]]}
    assert V.choice_summary(worse, ["c4", "c6"], macs)["rank1"] == 0.0          # a sum below 0% is clipped
    for bad in ("c0", "none"):
        with pytest.raises(ValueError, match=rf"no sensitivity rows for groups \['{bad}'\]; measured groups are \['c4', 'c6'\]"):
            V.choice_summary(results, [bad], macs)


def test_explorer_redraws_when_a_box_is_ticked(study, monkeypatch):
    results, _ = study
    drawn = []
    monkeypatch.setattr(V, "plot_choice", lambda res, summary: drawn.append(summary))
    ui = V.separable_explorer(results)
    boxes, stage = ui.children[0].children, ui.children[1]
    assert [b.description for b in boxes] == ["c4", "c6"]
    boxes[1].value = True
    assert drawn[-1]["groups"] == ["c6"] and drawn[-1]["stage"] == "_init"
    assert drawn[-1]["macs"] == S.separable_cost(ARCH, SIZE, KNOBS, ("c6",), convention="physical").macs
    stage.value = ""
    assert drawn[-1]["stage"] == "" and drawn[-1]["l1"] == pytest.approx(results["rows"][2]["l1"])


def test_layer_macs_plot_colours_groups():
    table = cost.layer_table(ARCH, None, SIZE, "gancomp", **KNOBS)
    layers = S.group_layers(ARCH, SIZE, KNOBS)
    assert V.group_of("blocks.4.body.1.0", layers) == "c4" and V.group_of("blocks.4.body.1.1", layers) is None
    fig = V.plot_layer_macs(table, layers)
    convs = [r for r in table if r["kind"] in V.CONV_KINDS]
    bars = fig.axes[0].patches[:len(convs)]
    assert [b.get_height() for b in bars] == pytest.approx([r["macs"] / 1e6 for r in convs])
    assert len({b.get_facecolor() for b in bars}) == len(layers)
    assert len(V.plot_mac_ratio((3, 7)).axes[0].lines) == 4


# ------------------------------------------------------------------ TP-GAN's per-group switch
def test_tpgan_groups_swap_their_own_layers_and_true_means_every_resblock():
    from gancomp_lite.models import tpgan

    knobs = {"base": 8, "step": 4}
    layers = S.group_layers("tpgan", 32, knobs)
    assert set(layers) == set(tpgan.LAYER_GROUPS) == set(tpgan.teacher_widths(8))      # one per channel group
    assert layers["up32"] == ["decoder.up32.0"] and layers["sel128"] == ["decoder.select128.conv1",
                                                                         "decoder.select128.conv2"]
    assert len(layers["dec16"]) == 6 and "decoder.select16.conv1" in layers["dec16"]
    assert len(layers["part512"]) == 4 * 4                                     # two resblocks in each rotator
    assert all(layers[g] for g in tpgan.LAYER_GROUPS)
    with torch.device("meta"):
        dense = build("tpgan", None, 32, **knobs)
        everything = S.swapped_layers(dense, build("tpgan", None, 32, separable=True, **knobs))
    assert sorted(everything) == sorted(n for g in tpgan.RESBLOCK_GROUPS for n in layers[g])
    with pytest.raises(ValueError, match=r"cannot make \['dec8'\] separable; layer groups are \['enc128'"):
        tpgan.build(None, 32, separable=("dec8",), **knobs)


def test_tpgan_students_start_as_the_teacher_when_its_kernels_are_separable():
    knobs = {"base": 8, "step": 4}
    torch.manual_seed(0)
    t = build("tpgan", None, 32, **knobs).eval()
    make_kernels_separable(t)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = t(x)
        for group in ("enc64", "up32", "dec128", "part128"):
            student, layers = S.make_student("tpgan", t, knobs, (group,), x)
            assert S.layer_role(student, layers) == ("upsampling" if group == "up32" else "residual")
            assert torch.allclose(student.eval()(x), expected, atol=1e-4), group
