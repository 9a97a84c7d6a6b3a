"""Every stage survives a kill: periodic checkpoints, exact resume, refusal of changed settings, atomic re-renders.

Kill-and-resume: a child process is killed with SIGKILL mid-run (or a run is interrupted in-process right
after a checkpoint), resumed, and its final tensors compared with an uninterrupted run's.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gancomp_lite.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gancomp_lite.cli import main
from gancomp_lite.train import Trainer
from test_train import PairDataset, assert_same, config, full_state, make_recipe

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def _child(code: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{TESTS}{os.pathsep}{ROOT}"}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 30.0) -> None:
    """SIGKILL `proc` as soon as `ready()` holds (the test fails if it never does)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the child never reached the point to kill it at"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _step(out: Path) -> int:
    try:
        return json.loads((out / "last.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


def _interrupt_after(monkeypatch, step: int):
    """Make every Trainer stop (KeyboardInterrupt: exit 130) right after `step`, before any later save;
    returns the call that lets them run on."""
    save_due = Trainer._save_due

    def interrupted(self) -> bool:
        if self.step == step:
            raise KeyboardInterrupt
        return save_due(self)

    monkeypatch.setattr(Trainer, "_save_due", interrupted)
    return lambda: monkeypatch.setattr(Trainer, "_save_due", save_due)


# ----------------------------------------------------------------------------- the Trainer
def test_a_trainer_killed_mid_run_resumes_to_the_same_tensors(tmp_path):
    out = tmp_path / "killed"
    proc = _child(
        "import time, torch; torch.set_num_threads(1)\n"
        "from test_train import PairDataset, config, make_recipe\n"
        "from gancomp_lite.train import Trainer\n"
        f"Trainer(make_recipe(), PairDataset(), config({str(out)!r}, steps=8, ckpt_every=1),\n"
        "        on_log=lambda step, metrics: time.sleep(0.2)).fit()\n")
    _kill_when(proc, lambda: _step(out) >= 2)
    assert 2 <= _step(out) < 8
    load_checkpoint(out / "last.pt")                          # whole: written atomically
    resumed = make_recipe()
    assert Trainer(resumed, PairDataset(), config(out, steps=8, ckpt_every=1)).fit().step == 8
    straight = make_recipe()
    Trainer(straight, PairDataset(), config(tmp_path / "straight", steps=8, ckpt_every=1)).fit()
    assert_same(full_state(straight), full_state(resumed))
    assert (out / "metrics.csv").read_text() == (tmp_path / "straight" / "metrics.csv").read_text()


class _Killed(BaseException):
    """Stands for SIGKILL in-process: nothing after it runs, not even `except Exception` handlers."""


def _kill_at(step: int):
    def on_log(at: int, metrics: dict) -> None:
        if at == step:
            raise _Killed
    return on_log


def test_a_log_row_spanning_a_kill_averages_the_same_steps(tmp_path, monkeypatch):
    """Checkpoints at steps 2, 4, 6 and log rows at 3, 6: the row of step 3 averages steps 1-3 also when the
    run died right after step 2's checkpoint (the loss values not yet logged are in the checkpoint)."""
    save = Trainer.save

    def killed_after_step_2(self):
        path = save(self)
        if self.step == 2:
            raise _Killed
        return path

    monkeypatch.setattr(Trainer, "save", killed_after_step_2)
    with pytest.raises(_Killed):
        Trainer(make_recipe(), PairDataset(), config(tmp_path / "killed", log_every=3)).fit()
    monkeypatch.setattr(Trainer, "save", save)
    assert _step(tmp_path / "killed") == 2 and not (tmp_path / "killed" / "metrics.csv").exists()
    Trainer(make_recipe(), PairDataset(), config(tmp_path / "killed", log_every=3)).fit()
    Trainer(make_recipe(), PairDataset(), config(tmp_path / "straight", log_every=3)).fit()
    for name in ("metrics.jsonl", "metrics.csv"):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "straight" / name).read_text()


@pytest.mark.parametrize("minutes, kept", [(0.0, 2), (None, -1)])
def test_the_trainer_also_checkpoints_by_the_clock(tmp_path, minutes, kept):
    cfg = config(tmp_path, steps=6, ckpt_every=100, ckpt_minutes=minutes)
    with pytest.raises(_Killed):
        Trainer(make_recipe(), PairDataset(), cfg, on_log=_kill_at(3)).fit()
    assert _step(tmp_path) == kept


@pytest.mark.parametrize("change, named", [
    ({"lr": 2e-3}, "lr=0.001 in the checkpoint, 0.002 now"),
    ({"decay_from": None}, "decay_from"),
    ({"fingerprint": {"data": "/other"}}, "fingerprint.data"),
])
def test_a_resume_with_other_settings_is_refused_naming_them(tmp_path, change, named):
    Trainer(make_recipe(), PairDataset(), config(tmp_path, stop_after=2)).fit()
    with pytest.raises(CheckpointError, match=named):
        Trainer(make_recipe(), PairDataset(), config(tmp_path, **change)).fit()
    assert _step(tmp_path) == 2                               # the refused run changed nothing
    assert Trainer(make_recipe(), PairDataset(), config(tmp_path, resume=False, **change)).fit().step == 6


def test_a_resume_with_another_recipe_setting_or_data_is_refused(tmp_path):
    from test_train import TinyGenerator, TinyPatchD
    from gancomp_lite.recipes.pix2pix import Pix2PixRecipe

    Trainer(make_recipe(), PairDataset(), config(tmp_path, stop_after=2)).fit()
    other = Pix2PixRecipe(TinyGenerator(), TinyPatchD(), gan_mode="lsgan", lambda_recon=5.0)
    with pytest.raises(CheckpointError, match="recipe.lambda_recon=10.0 in the checkpoint, 5.0 now"):
        Trainer(other, PairDataset(), config(tmp_path)).fit()
    with pytest.raises(CheckpointError, match="dataset_size=10 in the checkpoint, 12 now"):
        Trainer(make_recipe(), PairDataset(12), config(tmp_path)).fit()
    wider = Pix2PixRecipe(TinyGenerator(width=4), TinyPatchD(), gan_mode="lsgan", lambda_recon=10.0)
    with pytest.raises(CheckpointError, match="shapes.G"):
        Trainer(wider, PairDataset(), config(tmp_path)).fit()


def test_a_log_line_cut_short_by_a_kill_is_dropped_on_resume(tmp_path):
    out = tmp_path / "cut"
    Trainer(make_recipe(), PairDataset(), config(out, stop_after=2)).fit()
    with open(out / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 3, "epoch": 0, "loss_D": 0.2')
    with open(out / "metrics.csv", "a") as handle:
        handle.write("3,0,loss_")
    assert Trainer(make_recipe(), PairDataset(), config(out)).fit().step == 6
    Trainer(make_recipe(), PairDataset(), config(tmp_path / "straight")).fit()
    for name in ("metrics.jsonl", "metrics.csv"):
        assert (out / name).read_text() == (tmp_path / "straight" / name).read_text()


@pytest.mark.parametrize("field", ["steps", "batch_size", "ckpt_every"])
def test_zero_steps_or_batch_is_refused(tmp_path, field):
    from gancomp_lite.errors import InputError

    with pytest.raises(InputError, match=f"TrainConfig.{field} must be at least 1"):
        Trainer(make_recipe(), PairDataset(), config(tmp_path, **{field: 0}))


# ----------------------------------------------------------------------------- the distillation stage
SIZE, KNOBS, STUDENT = 32, {"ngf": 8, "step": 4}, "4_4_4_4_4_4_4_8"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> dict[str, Path]:
    """A tiny SynthPIE tree and tiny 'shipped' resnet9 teacher + identity network."""
    from data_tools.synthpie import render_synthpie
    from gancomp_lite.models.discriminator import PatchGAN
    from gancomp_lite.models.lightcnn import LightCNN, save_identity_network
    from gancomp_lite.models.registry import build

    base = tmp_path_factory.mktemp("shipped")
    render_synthpie(base / "data", ids=4, size=SIZE, illums=1, progress=False)
    render_synthpie(base / "data2", ids=4, size=SIZE, illums=1, seed=1, progress=False)
    d_knobs = {"in_channels": 6, "ndf": 8, "n_layers": 2}
    torch.manual_seed(0)
    save_checkpoint(base / "weights" / "resnet9-quick.pt",
                    {"G": build("resnet9", None, SIZE, **KNOBS).state_dict(), "D": PatchGAN(**d_knobs).state_dict()},
                    {"arch": "resnet9", "preset": "quick", "size": SIZE, "knobs": KNOBS, "config": "8_8_8_8_8_8_8_8",
                     "discriminator": {"kind": "patchgan", "knobs": d_knobs}})
    save_identity_network(base / "weights" / "lightcnn-quick.pt", LightCNN("9", num_classes=3, width=0.125, input_size=SIZE))
    save_identity_network(base / "weights" / "judge-quick.pt", LightCNN("29", num_classes=3, width=0.125, input_size=SIZE),
                          role="judge")
    return {"data": base / "data", "data2": base / "data2", "weights": base / "weights"}


def _distill(shipped, out: Path, *extra: str, data: str = "data") -> list[str]:
    return ["distill", "--arch", "resnet9", "--config", STUDENT, "--steps", "4", "--batch-size", "4",
            "--ckpt-every", "2", "--out", str(out), "--data", str(shipped[data]), "--weights", str(shipped["weights"]),
            *extra]


def _student(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "student.pt")[0]


def test_distill_checkpoints_before_its_end_and_a_killed_run_resumes_exactly(shipped, tmp_path, monkeypatch):
    assert main(_distill(shipped, tmp_path / "straight")) == 0
    run_on = _interrupt_after(monkeypatch, 3)
    assert main(_distill(shipped, tmp_path / "killed")) == 130
    assert _step(tmp_path / "killed") == 2 and not (tmp_path / "killed" / "student.pt").exists()
    run_on()
    assert main(_distill(shipped, tmp_path / "killed")) == 0
    assert_same(_student(tmp_path / "straight"), _student(tmp_path / "killed"))
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert [row["step"] for row in summary["history"]] == [4]


@pytest.mark.parametrize("extra, named", [
    (["--lambda-distill", "5"], "lambda_distill=1.0 in the checkpoint, 5.0 now"),
    (["--random-d"], "inherit_d=True in the checkpoint, False now"),
    (["--taps", "down2"], "taps="),
    (["--seed", "1"], "seed"),
])
def test_a_distill_rerun_with_other_settings_is_refused_and_fresh_starts_over(shipped, tmp_path, capsys, extra, named):
    out = tmp_path / "run"
    assert main(_distill(shipped, out, "--steps", "2")) == 0
    before = (out / "summary.json").read_bytes()
    capsys.readouterr()
    assert main(_distill(shipped, out, "--steps", "2", *extra)) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1 and "Traceback" not in err
    assert (out / "summary.json").read_bytes() == before            # nothing written was touched
    assert main(_distill(shipped, out, "--steps", "2", *extra, "--fresh")) == 0
    (kept,) = tmp_path.glob("run.old-*")
    assert (kept / "summary.json").read_bytes() == before and (out / "summary.json").read_bytes() != before


def test_a_distill_rerun_on_other_data_is_refused(shipped, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_distill(shipped, out, "--steps", "2")) == 0
    assert main(_distill(shipped, out, "--steps", "2", data="data2")) == 2
    assert "fingerprint.data=" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the compression pipeline
def tiny_splits(root: Path):
    """A `teachers.quick_splits` that serves the tiny tree at `root` (its last training identity validates)."""
    from data_tools.dataset import hold_out_identities, load_splits
    from gancomp_lite.teachers import Splits

    train, test = load_splits(root, "multipie", size=SIZE)
    rest, val = hold_out_identities(train, 1)
    return lambda preset="quick", seed=0: Splits(root, rest, val, test)


def _compress(shipped, out: Path, *extra: str) -> list[str]:
    return ["compress", "--teacher", "resnet9", "--ratio", "2", "--steps-supernet", "8", "--steps-finetune", "2",
            "--candidates", "2", "--val-limit", "8", "--metric", "l1", "--batch-size", "4", "--out", str(out),
            "--weights", str(shipped["weights"]), *extra]


@pytest.fixture
def tiny_compress(shipped, monkeypatch):
    """`compress` in this process reads the tiny tree."""
    from gancomp_lite import teachers

    monkeypatch.setattr(teachers, "quick_splits", tiny_splits(shipped["data"]))


SLOW_STEPS = ("save_due = Trainer._save_due\n"                    # 0.3 s per step, so that the poll sees step 2
              "Trainer._save_due = lambda self: time.sleep(0.3) or save_due(self)")


def _cli_child(args: list[str], setup: str) -> subprocess.Popen:
    """`gancomp-lite args` in a child process, with `setup` (code: point it at tiny data, slow it down) run first."""
    return _child(
        "import functools, time, torch; torch.set_num_threads(1)\n"
        "from pathlib import Path\n"
        "from gancomp_lite import teachers\n"
        "from gancomp_lite.cli import main\n"
        "from gancomp_lite.compress import pipeline, search\n"
        "from gancomp_lite.train import Trainer\n"
        "from test_reliability_resume import tiny_splits, tiny_teacher\n"
        f"{setup}\n"
        f"main({args!r})\n")


def _compress_child(shipped, args: list[str], slow: str = SLOW_STEPS) -> subprocess.Popen:
    """`gancomp-lite compress args` in a child process on the tiny tree, with `slow` (code) run before it."""
    return _cli_child(args, f"teachers.quick_splits = tiny_splits(Path({str(shipped['data'])!r}))\n{slow}")


def test_a_compress_killed_in_its_supernet_resumes_to_the_uninterrupted_student(shipped, tiny_compress, tmp_path):
    out = tmp_path / "killed"
    args = _compress(shipped, out)
    proc = _compress_child(shipped, args)
    _kill_when(proc, lambda: _step(out / "supernet") >= 2, timeout=60)
    assert 2 <= _step(out / "supernet") < 8 and not (out / "search_scores.json").exists()
    assert main(args) == 0                                    # the same command again
    assert main(_compress(shipped, tmp_path / "straight")) == 0
    assert_same(_student(tmp_path / "straight"), _student(out))
    searched = [json.loads((folder / "search.json").read_text())["candidates"] for folder in (out, tmp_path / "straight")]
    assert searched[0] == searched[1]                         # the resumed supernet scores every candidate alike


def _record_starts(monkeypatch) -> list[tuple[str, int]]:
    """(out folder name, step it starts from) of every Trainer run from now on in this process."""
    starts = []
    prepare = Trainer._prepare
    monkeypatch.setattr(Trainer, "_prepare", lambda self: prepare(self) or starts.append((self.out_dir.name, self.step)))
    return starts


def test_a_compress_killed_in_its_finetuning_resumes_to_the_uninterrupted_student(shipped, tiny_compress, tmp_path,
                                                                                  monkeypatch):
    out = tmp_path / "killed"
    args = _compress(shipped, out, "--steps-finetune", "8")               # argparse takes the last one
    proc = _compress_child(shipped, args,                                 # 0.3 s per fine-tuning step only
                           "save_due = Trainer._save_due\n"
                           "Trainer._save_due = lambda self: (self.out_dir.name == 'finetune' and time.sleep(0.3)) "
                           "or save_due(self)")
    _kill_when(proc, lambda: _step(out / "finetune") >= 2, timeout=60)
    killed_at = _step(out / "finetune")
    assert 2 <= killed_at < 8 and _step(out / "supernet") == 8
    assert (out / "search.json").exists() and not (out / "student.pt").exists()
    load_checkpoint(out / "finetune" / "last.pt")                        # whole: written atomically
    starts = _record_starts(monkeypatch)
    assert main(args) == 0                                                # the same command again
    assert starts == [("supernet", 8), ("finetune", killed_at)]           # resumed, not trained again
    assert main(_compress(shipped, tmp_path / "straight", "--steps-finetune", "8")) == 0
    assert_same(_student(tmp_path / "straight"), _student(out))
    assert_same(load_checkpoint(tmp_path / "straight" / "finetune" / "last.pt")[0]["recipe"],
                load_checkpoint(out / "finetune" / "last.pt")[0]["recipe"])
    assert ((out / "finetune" / "metrics.csv").read_text()
            == (tmp_path / "straight" / "finetune" / "metrics.csv").read_text())


def _saved_scores(out: Path) -> dict[str, dict[str, float]]:
    try:
        return json.loads((out / "search_scores.json").read_text())["scores"]
    except (OSError, ValueError, KeyError):
        return {}


def test_a_compress_killed_in_its_search_resumes_without_rescoring(shipped, tiny_compress, tmp_path, monkeypatch):
    from gancomp_lite.compress.search import CandidateScorer

    out = tmp_path / "killed"
    args = _compress(shipped, out, "--candidates", "6")
    proc = _compress_child(shipped, args,                 # 0.5 s per candidate, each saved as soon as scored
                           "score = search.CandidateScorer.__call__\n"
                           "search.CandidateScorer.__call__ = lambda self, config: time.sleep(0.5) or score(self, config)\n"
                           "pipeline.search = functools.partial(search.search, save_every=0.0)")
    _kill_when(proc, lambda: len(_saved_scores(out)) >= 2, timeout=60)
    saved = _saved_scores(out)
    assert 2 <= len(saved) < 6 and not (out / "search.json").exists() and not (out / "finetune").exists()

    scored = []
    score = CandidateScorer.__call__
    monkeypatch.setattr(CandidateScorer, "__call__",
                        lambda self, config: scored.append(self.space.encode(config)) or score(self, config))
    starts = _record_starts(monkeypatch)
    assert main(args) == 0                                                # the same command again
    assert starts == [("supernet", 8), ("finetune", 0)]
    resumed = json.loads((out / "search.json").read_text())["candidates"]
    assert len(resumed) == 6 and len(scored) == 6 - len(saved)
    assert not set(scored) & set(saved)                                   # what the killed run saved is reused
    assert {c["config"] for c in resumed} == set(scored) | set(saved)
    scored.clear()
    assert main(_compress(shipped, tmp_path / "straight", "--candidates", "6")) == 0
    assert len(scored) == 6
    assert json.loads((tmp_path / "straight" / "search.json").read_text())["candidates"] == resumed
    assert_same(_student(tmp_path / "straight"), _student(out))


def test_a_compress_rerun_with_other_settings_is_refused_and_fresh_starts_over(shipped, tiny_compress, tmp_path,
                                                                              capsys):
    out = tmp_path / "run"
    assert main(_compress(shipped, out, "--steps-supernet", "2")) == 0
    before = {name: (out / name).read_bytes() for name in ("settings.json", "report.json", "student.pt")}
    capsys.readouterr()
    assert main(_compress(shipped, out, "--steps-supernet", "2", "--seed", "1")) == 2
    err = capsys.readouterr().err
    assert "seed: 0 there, 1 now" in err and "--fresh" in err and err.count("\n") == 1
    assert {name: (out / name).read_bytes() for name in before} == before     # nothing written was touched
    assert main(_compress(shipped, out, "--steps-supernet", "2", "--seed", "1", "--fresh")) == 0
    (kept,) = tmp_path.glob("run.old-*")
    assert {name: (kept / name).read_bytes() for name in before} == before
    assert json.loads((out / "settings.json").read_text())["seed"] == 1


def test_compress_ckpt_minutes_reaches_both_trainers_and_may_change_on_resume(shipped, tiny_compress, tmp_path,
                                                                             monkeypatch):
    from gancomp_lite.compress import pipeline as P

    with pytest.raises(P.CompressError, match="--ckpt-minutes must be at least 0"):
        P.CompressSettings("resnet9", ratio=2, ckpt_minutes=-1.0)
    configs = []
    train_config = P._train_config
    monkeypatch.setattr(P, "_train_config", lambda *args: configs.append(train_config(*args)) or configs[-1])
    run_on = _interrupt_after(monkeypatch, 3)
    assert main(_compress(shipped, tmp_path, "--ckpt-minutes", "30")) == 130
    assert _step(tmp_path / "supernet") == 2 and [c.ckpt_minutes for c in configs] == [30.0]
    run_on()
    assert main(_compress(shipped, tmp_path, "--ckpt-minutes", "0.5")) == 0   # resumed, not refused
    assert [c.ckpt_minutes for c in configs] == [30.0, 0.5, 0.5]
    assert "ckpt_minutes" not in json.loads((tmp_path / "settings.json").read_text())


def test_compress_runs_at_its_thread_count_and_a_resume_at_another_is_refused(shipped, tiny_compress, tmp_path,
                                                                             monkeypatch, capsys):
    """CPU float sums are split per thread: the count shapes the result, so settings.json records it."""
    from gancomp_lite.compress import pipeline as P

    with pytest.raises(P.CompressError, match="--threads must be at least 1"):
        P.CompressSettings("resnet9", ratio=2, threads=0)
    seen = []

    def killed_in_the_supernet(*args, **kwargs):                     # the count it trains at, then stop
        seen.append(torch.get_num_threads())
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "train_supernet", killed_in_the_supernet)
    before = torch.get_num_threads()
    assert main(_compress(shipped, tmp_path, "--threads", "3")) == 130
    assert seen == [3] and torch.get_num_threads() == before          # restored afterwards
    assert json.loads((tmp_path / "settings.json").read_text())["threads"] == 3
    capsys.readouterr()
    assert main(_compress(shipped, tmp_path, "--threads", "1")) == 2
    assert "threads: 3 there, 1 now" in capsys.readouterr().err


# ----------------------------------------------------------------------------- teacher training
def tiny_teacher(root: Path):
    """(`teachers._data`, resnet9 `TeacherSpec`) for `gancomp-lite teachers train` on the tiny tree at `root`:
    the quick preset's 64 px, 8 steps of batch 4 (so checkpoints every 2 steps) of a narrow resnet9."""
    from dataclasses import replace

    from data_tools.dataset import load_splits
    from gancomp_lite.teachers import QUICK_TEACHERS

    def data(preset="quick", seed=0):
        return (root, *load_splits(root, "multipie", size=64))

    return data, replace(QUICK_TEACHERS["resnet9"], knobs=KNOBS, steps=8, batch_size=4)


def _teachers_train(work: Path, out: Path) -> list[str]:
    return ["teachers", "train", "--arch", "resnet9", "--work-dir", str(work), "--out", str(out)]


def _weights_without_teacher(shipped, folder: Path) -> Path:
    """A weights folder holding the identity network and the judge (what scoring a new teacher reads)."""
    import shutil

    folder.mkdir()
    for name in ("lightcnn-quick", "judge-quick"):
        for suffix in (".pt", ".json"):
            shutil.copy(shipped["weights"] / (name + suffix), folder)
    return folder


def test_a_teacher_training_killed_mid_run_resumes_to_the_uninterrupted_teacher(shipped, tmp_path, monkeypatch):
    from gancomp_lite import teachers

    work, out = tmp_path / "killed", _weights_without_teacher(shipped, tmp_path / "weights")
    args = _teachers_train(work, out)
    proc = _cli_child(args, "teachers._data, teachers.QUICK_TEACHERS['resnet9'] = "
                            f"tiny_teacher(Path({str(shipped['data'])!r}))\n{SLOW_STEPS}")
    _kill_when(proc, lambda: _step(work / "resnet9") >= 2, timeout=60)
    killed_at = _step(work / "resnet9")
    assert 2 <= killed_at < 8 and not (out / "resnet9-quick.pt").exists()
    load_checkpoint(work / "resnet9" / "last.pt")             # whole: written atomically

    data, spec = tiny_teacher(shipped["data"])
    monkeypatch.setattr(teachers, "_data", data)
    monkeypatch.setitem(teachers.QUICK_TEACHERS, "resnet9", spec)
    starts = _record_starts(monkeypatch)
    assert main(args) == 0                                    # the same command again
    assert starts == [("resnet9", killed_at)]                 # resumed, not trained again
    straight = _weights_without_teacher(shipped, tmp_path / "weights-straight")
    assert main(_teachers_train(tmp_path / "straight", straight)) == 0
    assert_same(load_checkpoint(tmp_path / "straight" / "resnet9" / "last.pt")[0]["recipe"],
                load_checkpoint(work / "resnet9" / "last.pt")[0]["recipe"])
    shipped_g = [load_checkpoint(folder / "resnet9-quick.pt")[0]["G"] for folder in (straight, out)]
    assert_same(*shipped_g)
    assert (work / "resnet9" / "metrics.csv").read_text() == (tmp_path / "straight" / "resnet9" / "metrics.csv").read_text()


def test_a_teacher_resumed_on_other_data_is_refused_naming_it(shipped, tmp_path, monkeypatch, capsys):
    from gancomp_lite import teachers

    work, out = tmp_path / "work", _weights_without_teacher(shipped, tmp_path / "weights")
    data, spec = tiny_teacher(shipped["data"])
    monkeypatch.setitem(teachers.QUICK_TEACHERS, "resnet9", spec)
    monkeypatch.setattr(teachers, "_data", data)
    run_on = _interrupt_after(monkeypatch, 3)
    assert main(_teachers_train(work, out)) == 130 and _step(work / "resnet9") == 2
    run_on()
    monkeypatch.setattr(teachers, "_data", tiny_teacher(shipped["data2"])[0])
    capsys.readouterr()
    assert main(_teachers_train(work, out)) == 2
    err = capsys.readouterr().err
    assert "fingerprint.data" in err and err.count("\n") == 1
    assert _step(work / "resnet9") == 2 and not (out / "resnet9-quick.pt").exists()


# ----------------------------------------------------------------------------- SynthPIE re-render
def test_a_killed_synthpie_rerender_keeps_the_old_tree(tmp_path):
    from data_tools.dataset import load_records
    from data_tools.synthpie import render_synthpie

    root = tmp_path / "synth"
    render_synthpie(root, ids=2, size=16, illums=1, progress=False)
    before = {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    proc = _child(f"from gancomp_lite.cli import main; main(['data', 'synthpie', '--out', {str(root)!r}, "
                  "'--ids', '60', '--size', '64', '--illums', '3'])")
    _kill_when(proc, lambda: not (root / "session01").exists() or any(tmp_path.glob(".synth.tmp-*/session01")))
    after = {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert after == before
    assert len(load_records(root, "multipie")) > 0
    assert main(["data", "synthpie", "--out", str(root), "--ids", "2", "--size", "16", "--illums", "1"]) == 0
    assert not list(tmp_path.glob(".synth.*"))                         # the killed render's leftovers are gone
