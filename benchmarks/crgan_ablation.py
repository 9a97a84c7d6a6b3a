"""CR-GAN's objective after the warm-up: which of its terms erase the person the latent learned?

    python benchmarks/crgan_ablation.py --start runs/curves/crgan-warm3000.pt --steps 500 \
        [--variant official] [--variant "p0 r100=p_reconstruct_fake=0.0,lambda_recon=100.0"] [--seed 0]

Every variant continues the same training state: `--start` is a Trainer checkpoint of a quick CR-GAN
teacher run (G, its critic and their optimizers; e.g. `teacher_curves.py`'s ``last.pt`` copied at the
end of the reconstruction warm-up). It trains `--steps` more steps of the two-path objective with
the variant's recipe options (the teacher spec's batch; the optimizers keep their state) and is
scored with the judge on the test identities. A variant is ``label`` (the official objective) or
``label=key=value,key=value``. One line per variant (rank-1 per |yaw| and mean, L1, SSIM), also
appended as JSON to ``--out``.
"""
from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

from torch.utils.data import DataLoader
from tqdm import tqdm

from gancomp_lite.checkpoint import load_checkpoint
from gancomp_lite.recipes.base import OptimConfig
from gancomp_lite.recipes.crgan import CRGANRecipe
from gancomp_lite.seeding import seed_everything
from gancomp_lite.teachers import load_judge, prepare_teacher

YAWS = ("90", "75", "60", "45", "30", "15", "mean")


def parse_variant(text: str) -> tuple[str, dict[str, object]]:
    """``label`` or ``label=key=value,key=value`` -> (label, recipe options)."""
    label, _, rest = text.partition("=")
    options = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value in variant {text!r}, got {item!r}")
        options[key.strip()] = ast.literal_eval(value)
    return label.strip(), options


def run_variant(start: Path, options: dict[str, object], steps: int, seed: int) -> dict[str, object]:
    """Continue the training state at `start` for `steps` steps under `options`; the judge's metrics."""
    from gancomp_lite.evaluate import evaluate

    state, manifest = load_checkpoint(start, expect={"recipe": "crgan"})
    run = prepare_teacher("crgan", seed=seed)
    recipe = CRGANRecipe(run.generator, run.discriminator, seed=seed, **options)
    recipe.setup("cpu", OptimConfig(lr=run.spec.lr, betas=run.spec.betas), total_steps=manifest["total_steps"])
    recipe.load_state_dict(state["recipe"])
    seed_everything(seed)
    loader = DataLoader(run.train, batch_size=run.spec.batch_size, shuffle=True, drop_last=True)
    first, batches = int(manifest["step"]), iter(())
    recipe.train()
    for step in tqdm(range(first, first + steps), desc="crgan", leave=False):
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            batch = next(batches)
        recipe.train_step(batch, step)
    run.generator.eval()
    return evaluate(run.test, load_judge("quick"), run.generator, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=Path, required=True, help="a Trainer checkpoint (last.pt) of a quick CR-GAN run")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--variant", action="append", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    for label, options in map(parse_variant, args.variant or ["official"]):
        began = time.perf_counter()
        metrics = run_variant(args.start, options, args.steps, args.seed)
        row = {"label": label, "options": options, "start": str(args.start), "steps": args.steps,
               "rank1": metrics["rank1"], "l1": metrics["l1"], "ssim": metrics["ssim"],
               "seconds": round(time.perf_counter() - began, 1)}
        print(f"{label:28s} " + " ".join(f"{100 * metrics['rank1'][y]:5.1f}" for y in YAWS)
              + f"  l1 {metrics['l1']:.4f}  ssim {metrics['ssim']:.3f}  {row['seconds']:.0f}s", flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
