"""The evaluation protocol on hand-made cases whose answers are known in advance."""
from __future__ import annotations

import argparse
import json
import math
import sys
import types

import pytest
import torch
from torch import nn

from conftest import make_multipie
from gancomp_lite.checkpoint import save_checkpoint
from gancomp_lite.evaluate import (
    ID_FID_NOTE,
    NonFiniteError,
    _pixel_scores,
    compare,
    evaluate,
    format_table,
    frechet_distance,
    paired_difference,
    rank1_by_yaw,
    rank1_interval,
    register,
)
from gancomp_lite.models import registry
from gancomp_lite.models.lightcnn import LightCNN, save_identity_network

N_IDS, SIZE = 4, 16


class StripeIdentity(nn.Module):
    """A stand-in identity network: feature k = mean brightness of horizontal stripe k."""

    input_size = SIZE

    def forward(self, gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = gray.reshape(len(gray), N_IDS, -1).mean(dim=2)
        return feature, feature


def stripe_face(identity: int) -> torch.Tensor:
    """RGB in [-1, 1], bright only on stripe `identity`: StripeIdentity sees the one-hot e_identity."""
    img = -torch.ones(3, SIZE, SIZE)
    rows = SIZE // N_IDS
    img[:, identity * rows:(identity + 1) * rows] = 1.0
    return img


def sample(identity: int, yaw: int, shown: int, illumination: str = "07") -> dict:
    """A test sample whose profile shows identity `shown` (a wrong one where the pose 'confuses')."""
    return {"profile": stripe_face(shown), "frontal": stripe_face(identity), "yaw": yaw,
            "identity": identity, "illumination": illumination}


def confusing_test_set() -> list[dict]:
    """Per identity: frontal (yaw 0), +-15 right, +45 right and -45 wrong, +-90 wrong; one other-light copy."""
    items = []
    for k in range(N_IDS):
        wrong = (k + 1) % N_IDS
        items += [sample(k, 0, k), sample(k, 15, k), sample(k, -15, k), sample(k, 45, k),
                  sample(k, -45, wrong), sample(k, 90, wrong), sample(k, -90, wrong, illumination="01")]
    return items


def test_rank1_exact_on_a_constructed_case():
    gallery = torch.eye(3)
    probes = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 1, 0], [0.2, 0.1, 0.9]])
    ids = torch.tensor([0, 1, 0, 2])       # the third probe looks like identity 1: a miss
    yaws = torch.tensor([30, -30, 60, -60])
    result = rank1_by_yaw(probes, ids, yaws, gallery, torch.tensor([0, 1, 2]))
    assert result == {"30": 1.0, "60": 0.5, "mean": 0.75}


def test_raw_profiles_merge_plus_and_minus_yaw():
    result = evaluate(confusing_test_set(), StripeIdentity(), progress=False)
    assert result["rank1_raw"] == {"15": 1.0, "45": 0.5, "90": 0.0, "mean": 0.5}
    assert "rank1" not in result
    assert result["n_probes"] == 6 * N_IDS and result["n_gallery"] == N_IDS
    assert result["note"] == ID_FID_NOTE
    assert json.loads(json.dumps(result)) == result


def test_perfect_generator_scores_perfectly_and_a_copying_one_scores_like_the_raw_profiles():
    data = confusing_test_set()
    perfect = evaluate(data, StripeIdentity(), lambda batch: batch["frontal"], batch_size=5, progress=False)
    assert perfect["rank1"] == {"15": 1.0, "45": 1.0, "90": 1.0, "mean": 1.0}
    assert perfect["l1"] == 0.0 and perfect["ssim"] == pytest.approx(1.0) and math.isinf(perfect["psnr"])
    assert perfect["id_fid"] == pytest.approx(0.0, abs=1e-9)
    # FID compares distributions, not pairs: the raw profiles show every identity equally often,
    # exactly like the real frontals, so ID-FID cannot see that half of them show the wrong one.
    assert perfect["raw"]["id_fid"] == pytest.approx(0.0, abs=1e-9)
    # A blank output (features 0) against 24 one-hot features, 6 per identity: |mu|^2 = 4/16 and
    # tr(S_real) = 4 * (24/23) * (1/4)(3/4) = 18/23 (unbiased covariance).
    blank = evaluate(data, StripeIdentity(), lambda b: -torch.ones_like(b["frontal"]), progress=False)
    assert blank["id_fid"] == pytest.approx(4 / 16 + 18 / 23, rel=1e-9)

    copying = evaluate(data, StripeIdentity(), nn.Identity(), batch_size=3, progress=False)
    assert copying["rank1"] == copying["rank1_raw"]
    assert copying["l1"] == pytest.approx(copying["raw"]["l1"])
    # 3 of 6 probe images per identity differ from the frontal on 2 of 4 stripes (L1 = 0.5 there).
    assert copying["l1"] == pytest.approx(3 / 6 * 0.5)


def test_gallery_uses_the_requested_illumination_or_an_explicit_set():
    data = confusing_test_set()
    with pytest.raises(ValueError, match=r"identities \[0, 1, 2, 3\]"):
        evaluate(data, StripeIdentity(), gallery_illumination="05", progress=False)
    # A gallery whose images are shifted by one identity turns every correct match into a miss.
    shifted = [{"frontal": stripe_face((k + 1) % N_IDS), "identity": k} for k in range(N_IDS)]
    result = evaluate(data, StripeIdentity(), gallery=shifted, progress=False)
    assert result["rank1_raw"]["15"] == 0.0


def test_bad_generator_output_and_no_probes_are_refused():
    data = confusing_test_set()
    with pytest.raises(ValueError, match=r"\(6, 3, 16, 16\), got \(6, 1, 16, 16\)"):
        evaluate(data, StripeIdentity(), lambda b: b["frontal"][:, :1], batch_size=7, progress=False)
    with pytest.raises(ValueError, match="no probes"):
        evaluate([d for d in data if d["yaw"] == 0], StripeIdentity(), progress=False)


def test_evaluation_restores_training_mode():
    net, gen = LightCNN("9", 4, width=0.125, input_size=16), nn.Conv2d(3, 3, 1)
    net.train(), gen.train()
    evaluate(confusing_test_set(), net, gen, progress=False)
    assert net.training and gen.training


def test_pixel_scores_of_identical_and_different_images():
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    same = _pixel_scores(img, img)
    assert torch.equal(same["l1"], torch.zeros(2))
    assert torch.allclose(same["ssim"], torch.ones(2)) and torch.isinf(same["psnr"]).all()
    noisy = _pixel_scores((img + 0.2 * torch.randn_like(img)).clamp(-1, 1), img)
    assert (noisy["ssim"] < 0.99).all() and (noisy["psnr"] < 30).all() and (noisy["l1"] > 0).all()
    grey = torch.zeros(1, 3, 16, 16)                # 0.5 in [0, 1] against 0.75: MSE 1/16 -> 12.04 dB
    assert _pixel_scores(grey, grey + 0.5)["psnr"].item() == pytest.approx(10 * math.log10(16), rel=1e-5)


def test_frechet_distance():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(200, 8, generator=gen)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = torch.arange(8.0) / 4
    assert frechet_distance(a, a + shift) == pytest.approx(shift.square().sum().item(), rel=1e-6)
    # b = 2a + shift: mu_b - mu_a = mu_a + shift and S_b = 4 S, so d = |mu_a + shift|^2 + tr(S) + 4 tr(S) - 2 * 2 tr(S).
    a64 = a.double()
    expected = (a64.mean(0) + shift).square().sum().item() + torch.cov(a64.T).trace().item()
    assert frechet_distance(a, 2 * a + shift) == pytest.approx(expected, rel=1e-6)
    few = torch.randn(20, 256, generator=gen)       # N < D: singular covariances
    assert frechet_distance(few, few) < 1e-6 * torch.cov(few.T).trace().item()
    with pytest.raises(ValueError, match="same D"):
        frechet_distance(a, a[:, :4])


def test_format_table_rows():
    data = confusing_test_set()
    results = {"perfect": evaluate(data, StripeIdentity(), lambda b: b["frontal"], progress=False)}
    table = format_table(results, extra_columns={"perfect": {"MACs (gancomp)": "1.0G"}})
    lines = table.splitlines()
    assert lines[0] == "| method | ±90° | ±45° | ±15° | mean | L1 | SSIM | ID-FID* | MACs (gancomp) |"
    assert lines[2].startswith("| raw profiles | 0.00 | 50.00 | 100.00 | 50.00 |")
    assert lines[3].startswith("| perfect | 100.00 | 100.00 | 100.00 | 100.00 | 0.000 | 1.000 |")
    assert lines[3].endswith("| 1.0G |") and lines[2].endswith("| – |")
    assert "NOT Inception-FID" in table


class _Recolor(nn.Module):
    """A 1x1-conv 'generator' for the command-line test."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x)


def test_command_line_on_a_multipie_tree(tmp_path, monkeypatch, capsys):
    root = tmp_path / "mp"
    make_multipie(root, subjects=("001", "002", "003", "004"), illums=("00", "07"))
    identity = tmp_path / "id.pt"
    save_identity_network(identity, LightCNN("9", 2, width=0.125, input_size=16))

    family = types.ModuleType("fake_family")
    family.space = lambda **knobs: None
    family.build = lambda config, size, **knobs: _Recolor()
    monkeypatch.setitem(sys.modules, "fake_family", family)
    monkeypatch.setitem(registry.FAMILIES, "fake", "fake_family")
    generator = tmp_path / "recolor.pt"
    save_checkpoint(generator, _Recolor().state_dict(), {"arch": "fake", "config": None, "size": 16})

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    base = ["eval", "--data", str(root), "--identity", str(identity), "--split", "first:2", "--device", "cpu"]
    args = parser.parse_args(base + ["--generator", str(generator), "--json"])
    assert args.func(args) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"recolor"}
    assert results["recolor"]["n_probes"] == 2 * 12 * 2 and results["recolor"]["n_gallery"] == 2
    assert set(results["recolor"]["rank1"]) == {"15", "30", "45", "60", "75", "90", "mean"}

    args = parser.parse_args(base)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "| raw profiles |" in out and "±90°" in out and "scored by id.pt (sha256 " in out

    # two generators: intervals, and the paired difference of the second against the first
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    save_checkpoint(other, _Recolor().state_dict(), {"arch": "fake", "config": None, "size": 16})
    args = parser.parse_args(base + ["--generator", str(generator), "--generator", str(other), "--json"])
    assert args.func(args) == 0
    results = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert set(results["paired"]) == {"other - recolor"} and len(results["recolor"]["rank1_ci"]["mean"]) == 2
    assert results["recolor"]["scored_by"]["file"] == "id.pt"
    args = parser.parse_args(base + ["--generator", str(generator), "--generator", str(other)])
    assert args.func(args) == 0
    assert "other - recolor (rank-1 points, paired 95% interval): 90: " in capsys.readouterr().out

    # NaN weights: the run failed (exit 1, as a NaN loss or search score), one line on stderr, no score
    from gancomp_lite.cli import main

    broken = _Recolor()
    torch.nn.init.constant_(broken.mix.weight, float("nan"))
    nan_path = tmp_path / "nan.pt"
    save_checkpoint(nan_path, broken.state_dict(), {"arch": "fake", "config": None, "size": 16})
    assert main(base + ["--generator", str(nan_path), "--json"]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error" in line]     # besides progress bars
    assert captured.out == "" and len(errors) == 1 and "Traceback" not in captured.err
    assert errors[0].startswith("gancomp-lite eval: error: the generator") and "non-finite" in errors[0]


# ------------------------------------------------------------------ intervals and paired differences
def test_interval_of_two_identities_is_every_possible_resample():
    """Identity 0 always right, identity 1 always wrong: resamples give 0, 0.5 or 1 (p = 1/4, 1/2, 1/4)."""
    correct, ids, yaws = [1, 1, 0, 0], [0, 0, 1, 1], [15, -15, 15, -15]
    assert rank1_interval(correct, ids, yaws, resamples=4000) == {"15": [0.0, 1.0], "mean": [0.0, 1.0]}
    assert rank1_interval(correct, ids, yaws, level=0.4, resamples=4000) == {"15": [0.5, 0.5], "mean": [0.5, 0.5]}
    # one identity: nothing to resample
    assert rank1_interval([1, 0, 1], [7, 7, 7], [15, 30, 45])["mean"] == pytest.approx([2 / 3, 2 / 3])


def test_interval_narrows_as_one_over_root_identities_and_is_seeded():
    gen = torch.Generator().manual_seed(0)
    skill = torch.rand(400, generator=gen)                       # per-identity probability of a hit
    ids = torch.arange(400).repeat_interleave(12)
    yaws = torch.tensor([15, 30, 45, 60, 75, 90]).repeat(800)
    correct = torch.rand(len(ids), generator=gen) < skill[ids]
    few, many = ids < 25, ids < 400
    width = {n: (lambda ci: ci["mean"][1] - ci["mean"][0])(rank1_interval(correct[m], ids[m], yaws[m]))
             for n, m in (("few", few), ("many", many))}
    assert width["few"] / width["many"] == pytest.approx(4.0, rel=0.25)       # sqrt(400 / 25)
    assert rank1_interval(correct, ids, yaws, seed=3) == rank1_interval(correct, ids, yaws, seed=3)
    point = rank1_by_yaw(torch.nn.functional.one_hot(torch.where(correct, ids, (ids + 1) % 400)).double(),
                         ids, yaws, torch.eye(400, dtype=torch.float64), torch.arange(400))
    ci = rank1_interval(correct, ids, yaws)
    assert all(ci[k][0] <= point[k] <= ci[k][1] for k in ci)


def test_paired_difference_cancels_what_both_models_share():
    gen = torch.Generator().manual_seed(1)
    ids = torch.arange(20).repeat_interleave(36)
    yaws = torch.tensor([15, -15, 30, -30, 45, -45, 60, -60, 75, -75, 90, -90]).repeat(60)
    a = torch.rand(len(ids), generator=gen) < torch.rand(20, generator=gen)[ids]
    same = paired_difference(a, a, ids, yaws)
    assert same["diff"]["mean"] == 0.0 and same["ci"]["mean"] == [0.0, 0.0]
    b = a.clone()
    b[(ids == 3) & (yaws.abs() == 90)] = True                   # b also gets identity 3's six +-90 probes
    gained = (~a[(ids == 3) & (yaws.abs() == 90)]).sum().item()
    paired = paired_difference(a, b, ids, yaws)
    assert paired["diff"]["90"] == pytest.approx(gained / 120) and paired["diff"]["15"] == 0.0
    assert paired["ci"]["15"] == [0.0, 0.0] and paired["ci"]["90"][0] >= 0.0
    # The unpaired intervals of a and b are far wider than the paired one.
    unpaired = rank1_interval(a, ids, yaws)["mean"]
    assert paired["ci"]["mean"][1] - paired["ci"]["mean"][0] < 0.2 * (unpaired[1] - unpaired[0])
    with pytest.raises(ValueError, match="same probes"):
        paired_difference(a, b[:-1], ids, yaws)


def test_evaluate_returns_intervals_and_per_probe_results_that_compare():
    data = confusing_test_set()
    perfect = evaluate(data, StripeIdentity(), lambda b: b["frontal"], per_probe=True, progress=False)
    copying = evaluate(data, StripeIdentity(), nn.Identity(), per_probe=True, progress=False)
    assert perfect["rank1_ci"]["mean"] == [1.0, 1.0] and perfect["n_identities"] == N_IDS
    assert perfect["probes"]["correct"] == [1] * 6 * N_IDS
    assert copying["probes"]["correct"] == copying["probes"]["correct_raw"]
    assert perfect["rank1_vs_raw"]["diff"] == {"15": 0.0, "45": 0.5, "90": 1.0, "mean": 0.5}
    assert compare(copying, perfect)["diff"]["90"] == 1.0
    lo, hi = copying["rank1_raw_ci"]["45"]
    assert lo <= copying["rank1_raw"]["45"] <= hi and perfect["interval"]["resamples"] > 0
    assert json.loads(json.dumps(perfect)) == perfect
    bare = evaluate(data, StripeIdentity(), nn.Identity(), resamples=0, progress=False)
    assert not {"rank1_ci", "rank1_raw_ci", "rank1_vs_raw", "probes"} & set(bare)
    with pytest.raises(ValueError, match="per_probe=True"):
        compare(bare, perfect)


def test_non_finite_outputs_are_an_error_never_a_score():
    data = confusing_test_set()
    with pytest.raises(NonFiniteError, match="generator .* non-finite"):
        evaluate(data, StripeIdentity(), lambda b: torch.full_like(b["frontal"], float("nan")), progress=False)
    with pytest.raises(NonFiniteError, match="identity network"):
        evaluate(data, _NaNIdentity(), progress=False)


class _NaNIdentity(StripeIdentity):
    def forward(self, gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = super().forward(gray)[0] * float("nan")
        return feature, feature


def test_format_table_with_intervals_names_the_scorer():
    data = confusing_test_set()
    results = {"perfect": evaluate(data, StripeIdentity(), lambda b: b["frontal"], progress=False)}
    lines = format_table(results, intervals=True, scored_by="judge.pt").splitlines()
    assert lines[3].startswith("| perfect | 100.00 [100.0, 100.0] |")
    assert "95% interval" in lines[-1] and "scored by judge.pt" in lines[-1]
