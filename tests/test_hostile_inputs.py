"""Hostile but fair inputs: every bad argument or file is one line naming it and exit 2, never a traceback.

Property-based (hypothesis) over config strings, sizes, file names and CSV rows for the loaders and
`gancomp-lite macs`, plus one case per defect of issue 11 that the loaders used to accept or crash on.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_multipie, write_image
from data_tools.caspeal import load_caspeal
from data_tools.check import check_tree
from data_tools.folder import load_folder
from data_tools.protocol import DataError
from gancomp_lite.cli import main

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CASPEAL = "MY_000001_IEU+00_PM{yaw}_EN_A0_D0_T0_BB_M0_R1_S0.tif"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`gancomp-lite argv` in this process: (exit status, stdout, stderr); a traceback fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit_:       # argparse's own usage errors
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def assert_one_line_error(status: int, err: str, *words: str) -> None:
    assert status == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


# ----------------------------------------------------------------------------- macs (defect 8)
@pytest.mark.parametrize("argv, words", [
    (["--size", "0"], ["--size", "[1, 4096]"]),
    (["--size", "100000"], ["--size", "[1, 4096]"]),
    (["--ngf", "100000000"], ["--ngf", "[1, 4096]"]),
    (["--config", ""], ["--config is empty"]),
    (["--config", "1_2"], ["config string '1_2'"]),
    (["--knob", "ngf=99999999"], ["--knob ngf", "at most 4096"]),
])
def test_macs_refuses_impossible_sizes_widths_and_configs(argv, words):
    assert_one_line_error(*run_cli(["macs", "--arch", "resnet9", *argv])[::2], *words)


@FAST
@given(size=st.integers(-10, 10 ** 7))
def test_macs_any_size_is_a_count_or_a_one_line_refusal(size):
    status, out, err = run_cli(["macs", "--arch", "mobile-resnet9", "--size", str(size), "--json"])
    if status == 0:
        assert json.loads(out)["size"] == size and 1 <= size <= 4096 and size % 4 == 0
    else:
        assert_one_line_error(status, err)


@FAST
@given(config=st.text(alphabet="0123456789_-+ x", max_size=30))
def test_macs_any_config_string_is_a_count_or_a_one_line_refusal(config):
    status, out, err = run_cli(["macs", "--arch", "resnet9", "--size", "32", "--config", config, "--json"])
    if status == 0:
        assert json.loads(out)["macs"] > 0
    else:
        assert_one_line_error(status, err)


# ----------------------------------------------------------------------------- one error path (defects 9, 10)
def test_synthpie_bad_arguments_are_one_line(tmp_path):
    assert_one_line_error(*run_cli(["data", "synthpie", "--out", str(tmp_path / "s"), "--size", "0"])[::2],
                          "size", "[8, 4096]")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    assert_one_line_error(*run_cli(["data", "synthpie", "--out", str(tmp_path / "mine"), "--ids", "1"])[::2],
                          "holds no synthpie.json")
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


@pytest.mark.parametrize("argv, words", [
    (["--steps", "0"], ["--steps", "at least 1"]),
    (["--batch-size", "0"], ["--batch-size", "at least 1"]),
    (["--config", "1_2_3"], ["config string"]),
    (["--taps", "nonsense"], ["nonsense", "not feature taps"]),
    (["--lambda-distill", "nan"], ["lambda_distill", "finite"]),
])
def test_distill_bad_arguments_are_one_line_and_write_nothing(tmp_path, argv, words):
    base = {"--config": "8_8_8_8_8_8_8_8", "--steps": "2", "--out": str(tmp_path / "run")}
    for key, value in zip(argv[::2], argv[1::2]):
        base[key] = value
    args = ["distill", "--arch", "resnet9"] + [x for kv in base.items() for x in kv]
    assert_one_line_error(*run_cli(args)[::2], *words)
    assert not (tmp_path / "run").exists()


def test_eval_on_missing_data_is_one_line(tmp_path):
    assert_one_line_error(*run_cli(["eval", "--data", str(tmp_path / "nowhere"),
                                    "--identity", str(tmp_path / "none.pt")])[::2], "nowhere" )


def test_debug_shows_the_traceback():
    from gancomp_lite.errors import InputError

    with pytest.raises(InputError, match="--config is empty"):
        main(["macs", "--arch", "resnet9", "--config", "", "--debug"])


@pytest.mark.parametrize("argv, words", [
    (["teachers", "train", "--arch", "bogus"], ["--arch", "'bogus'", "tpgan", "judge"]),
    (["teachers", "rescore", "--arch", "bogus"], ["--arch", "'bogus'", "tpgan"]),
    (["teachers", "rescore", "--arch", "lightcnn"], ["--arch", "'lightcnn'", "tpgan"]),
    (["bench", "--teacher", "resnet9", "--size", "32", "--runs", "1", "--warmup", "0", "--device", "bogus"],
     ["--device", "'bogus'", "cpu"]),
    (["bench", "--teacher", "resnet9", "--size", "32", "--runs", "1", "--warmup", "0", "--device", "cuda:99"],
     ["--device", "'cuda:99'", "CUDA device count"]),
    (["eval", "--data", ".", "--identity", "x.pt", "--device", "bogus"], ["--device", "'bogus'"]),
    (["eval", "--data", ".", "--identity", "x.pt", "--batch-size", "0"], ["--batch-size", "at least 1"]),
])
def test_unknown_names_and_impossible_counts_are_one_line(argv, words):
    """Issue 11: an --arch, --device or --batch-size outside its rule names it and the rule, never a traceback."""
    assert_one_line_error(*run_cli(argv)[::2], *words)


@pytest.mark.parametrize("split, words", [
    ("bogus", ["split 'bogus'", "'first:N' or 'fraction:F'"]),
    ("fraction:inf", ["split 'fraction:inf'", "finite number"]),
])
def test_eval_refuses_an_unknown_split_on_one_line(multipie_tree, split, words):
    argv = ["eval", "--data", str(multipie_tree), "--identity", "x.pt", "--split", split]
    assert_one_line_error(*run_cli(argv)[::2], *words)


def test_a_non_finite_search_score_stops_compress_on_one_line(tmp_path, monkeypatch):
    """Issue 11: a candidate scored NaN is an error (exit 1, as a NaN loss), never a score."""
    from gancomp_lite.compress import pipeline
    from gancomp_lite.compress.search import search
    from gancomp_lite.space import ChannelSpace

    space = ChannelSpace.uniform("toy", {"a": 8, "b": 8}, step=4)

    def diverged(settings, out, **options):              # the search stage of a supernet that diverged
        return search(space, lambda config: {"l1": float("nan"), "ssim": 0.0}, lambda config: sum(config.values()),
                      16, metric="l1", strategy="exhaustive")

    monkeypatch.setattr(pipeline, "compress", diverged)
    status, out, err = run_cli(["compress", "--teacher", "resnet9", "--ratio", "2", "--out", str(tmp_path / "run")])
    assert status == 1 and out == "", err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "gancomp-lite compress: error: candidate" in err and "'l1': nan" in err and "never a score" in err


def test_a_generator_with_non_finite_outputs_is_not_scored():
    import torch

    from gancomp_lite.compress.search import CandidateScorer
    from gancomp_lite.evaluate import NonFiniteError
    from gancomp_lite.models.registry import build, channel_space

    supernet = build("resnet9", None, 32, ngf=8, step=4)
    for parameter in supernet.parameters():
        parameter.data.fill_(float("nan"))
    faces = [{"profile": torch.zeros(3, 32, 32), "frontal": torch.zeros(3, 32, 32), "yaw": torch.tensor(45),
              "identity": torch.tensor(0)}] * 2
    space = channel_space("resnet9", 32, ngf=8, step=4)
    scorer = CandidateScorer(supernet, space, faces, identity_net=None, batch_size=2)
    with pytest.raises(NonFiniteError, match=f"{space.encode(space.smallest())} produced non-finite outputs"):
        scorer(space.smallest())


# ----------------------------------------------------------------------------- data check crashes (defect 4)
def _csv(root: Path, rows: list[list[str]] | bytes, header=("profile", "frontal", "identity", "yaw")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if isinstance(rows, bytes):
        (root / "pairs.csv").write_bytes(rows)
    else:
        with open(root / "pairs.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([list(header), *rows])
    return root


def _pair_images(root: Path) -> None:
    write_image(root / "p.png", value=1)
    write_image(root / "f.png", value=2)


def test_data_check_reports_a_short_row_instead_of_crashing(tmp_path):
    root = _csv(tmp_path, [["p.png", "f.png", "alice", "45"], ["p.png", "f.png"]])
    _pair_images(root)
    report = check_tree("folder", root)
    assert report.pairs == 1 and any("line 3" in b and "number of fields" in b for b in report.bad_files)
    with pytest.raises(DataError, match="line 3"):
        load_folder(root)


def test_data_check_reports_a_non_utf8_csv(tmp_path):
    root = _csv(tmp_path, "profile,frontal,identity,yaw\np.png,f.png,Jos\xe9,45\n".encode("latin-1"))
    _pair_images(root)
    report = check_tree("folder", root)
    assert not report.ok and "not UTF-8" in report.error
    assert_one_line_error(*run_cli(["eval", "--data", str(root), "--format", "folder",
                                    "--identity", str(tmp_path / "none.pt")])[::2])


def test_data_check_text_report_prints_a_non_utf8_file_name(tmp_path, capfd):
    root = tmp_path / "tree"
    write_image(root / "alice" / "0" / "a.png")
    bad = os.fsdecode(b"b\xff.png")
    write_image(root / "alice" / "+400" / bad)
    status = main(["data", "check", "--format", "folder", "--root", str(root)])
    out = capfd.readouterr().out
    assert status == 1 and "\\udcff" in out


# ----------------------------------------------------------------------------- what data check accepted (defect 5)
def test_a_caspeal_file_in_two_folders_is_a_duplicate(tmp_path):
    for folder in ("pose", "copy"):
        write_image(tmp_path / folder / CASPEAL.format(yaw="+00"), value=0)
        write_image(tmp_path / folder / CASPEAL.format(yaw="+45"), value=1)
    records = load_caspeal(tmp_path, strict=False)
    assert len(records) == 2 and sum("duplicate" in s.rule for s in records.skipped) == 2
    with pytest.raises(DataError, match="duplicate"):
        load_caspeal(tmp_path)


def test_a_folder_yaw_of_400_is_refused(tmp_path):
    write_image(tmp_path / "alice" / "0" / "a.png")
    write_image(tmp_path / "alice" / "+400" / "a.png")
    with pytest.raises(DataError, match=r"\+400 is outside \[-90, 90\]"):
        load_folder(tmp_path)
    assert len(load_folder(tmp_path, strict=False).skipped) == 1


@pytest.mark.parametrize("row, rule", [
    (["p.png", "f.png", "alice", "999"], "999 is outside"),
    (["p.png", "f.png", "  ", "45"], "identity is empty"),
])
def test_csv_rows_with_impossible_values_are_refused(tmp_path, row, rule):
    root = _csv(tmp_path, [row])
    _pair_images(root)
    with pytest.raises(DataError, match=rule):
        load_folder(root)
    report = check_tree("folder", root)
    assert not report.ok and any(rule in b for b in report.bad_files)


def test_an_identity_folder_linked_under_a_second_name_is_refused(tmp_path):
    write_image(tmp_path / "alice" / "0" / "a.png")
    write_image(tmp_path / "alice" / "45" / "a.png", value=3)
    (tmp_path / "zed").symlink_to(tmp_path / "alice", target_is_directory=True)
    with pytest.raises(DataError, match="'zed' is a link to 'alice'"):
        load_folder(tmp_path)
    records = load_folder(tmp_path, strict=False)
    assert records.identities() == ["alice"] and len(records.skipped) == 2


# ----------------------------------------------------------------------------- property-based loaders
cell = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@FAST
@given(rows=st.lists(st.lists(cell, max_size=6), max_size=6))
def test_any_csv_rows_load_or_are_reported(tmp_path, rows):
    root = _csv(tmp_path / "csv", rows)
    _pair_images(root)
    try:
        records = load_folder(root, strict=False)
    except DataError:
        return
    assert all(-90 <= r.yaw <= 90 and r.identity for r in records)
    report = check_tree("folder", root)
    report.format()
    json.dumps(report.to_dict())


@FAST
@given(raw=st.binary(max_size=200))
def test_any_csv_bytes_load_or_are_reported(tmp_path, raw):
    root = _csv(tmp_path / "bytes", b"profile,frontal,identity,yaw\n" + raw)
    try:
        load_folder(root, strict=False)
    except DataError:
        pass
    check_tree("folder", root)


name = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))


@FAST
@given(names=st.lists(name, min_size=1, max_size=4, unique=True), fmt=st.sampled_from(["multipie", "caspeal", "folder"]))
def test_any_file_names_are_checked_and_printed(tmp_path_factory, names, fmt):
    root = tmp_path_factory.mktemp("names")
    make_multipie(root, subjects=("001",), cameras=["05_1", "19_0"], illums=("07",))
    write_image(root / "001" / "0" / "a.png")
    for raw in names:
        path = root / os.fsdecode(raw + b".png")
        path.write_bytes(raw)
    report = check_tree(fmt, root)
    text = report.format()
    text.encode("utf-8", "backslashreplace")
    status, out, _ = run_cli(["data", "check", "--format", fmt, "--root", str(root)])
    assert status in (0, 1) and out


def test_eval_size_zero_and_empty_batches_are_refused():
    """Issue 11 item 9: `eval --size 0` is refused on one line; CR-GAN and PIM name an empty batch."""
    import torch

    from gancomp_lite.models.registry import build

    code, _, err = run_cli(["eval", "--data", ".", "--identity", "x.pt", "--size", "0"])
    assert code == 2 and "--size" in err and "Traceback" not in err
    for arch, knobs in (("crgan", {"base": 4}), ("pim", {"base": 4})):
        with pytest.raises(ValueError, match="non-empty batch"):
            build(arch, None, 64, **knobs).eval()(torch.zeros(0, 3, 64, 64))
