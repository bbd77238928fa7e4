"""Grid efficiency of ``capgate run-grid`` on a grid of short trials, measured on this machine.

    grid efficiency = sum(trial busy seconds) / (trial-phase wall seconds x concurrent slots)

Busy seconds are measured inside each trial (train_one_run + the atomic record write, after the
worker has imported torch); the wall clock covers the whole Tune phase, worker start-up included. Target: >= 0.85. The same grid is
also run with a fresh worker per trial (``reuse_actors=False``) for comparison, side by side.

    .venv/bin/python benchmarks/grid_efficiency.py [--runs 24] [--steps 60] [--slots 2]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from unittest import mock

import yaml

TINY_WORLD = {"llvip_train": 48, "llvip_test": 8, "flir_train": 2, "flir_val": 8, "flir_video": 2,
              "imagenet_classes": 2, "imagenet_train": 2, "imagenet_val": 1, "coco_train": 2, "coco_val": 1,
              "domainnet_classes": 2, "domainnet_train": 2, "domainnet_test": 1,
              "domainnet_domains": ["real", "sketch"]}


def write_spec(folder: Path, runs: int, steps: int) -> Path:
    seeds = list(range(max(1, runs // 2)))
    spec = {
        "study": "bench", "task": "detection", "classes": ["person"], "class_map": "person",
        "world": {"seed": 0, "config": TINY_WORLD},
        "datasets": {"llvip": {"format": "llvip", "root": "synthetic"}},
        "train_sets": [{"dataset": "llvip", "split": "train", "modality": "rgb", "eval": [
            {"dataset": "llvip", "split": "test", "modality": "rgb", "shift": "in_domain"},
            {"dataset": "llvip", "split": "test", "modality": "ir", "shift": "cross_modality"}]}],
        "rungs": {"efficientnet": ["B-7"], "mobilenetv3": ["S-6"]},
        "seeds": seeds,
        "recipe": {"steps": steps, "batch_size": 8, "resolution": 64, "warmup_steps": 2},
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def measure(spec: Path, storage: Path, slots: int, reuse: bool) -> tuple[float, float, float, int]:
    from ray import tune

    from capgate.grid import run_grid

    real = tune.TuneConfig

    def config(**kw):  # noqa: ANN003, ANN202
        kw["reuse_actors"] = reuse
        return real(**kw)

    with mock.patch.object(tune, "TuneConfig", config):
        res = run_grid(spec, storage=storage, num_cpus=slots, max_concurrent=slots)
    return res.efficiency or 0.0, res.busy_seconds, res.trials_wall_seconds, res.n_trained


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=24)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--slots", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        tmp = Path(tmp)
        spec = write_spec(tmp, args.runs, args.steps)
        rows = []
        for reuse in (True, False):
            eff, busy, wall, n = measure(spec, tmp / f"store-{reuse}", args.slots, reuse)
            rows.append((reuse, eff, busy, wall, n))
    print(f"grid of {rows[0][4]} short trials on {args.slots} slots ({args.steps} steps each, 64 px)")
    print(f"{'reuse_actors':>12} {'busy s':>8} {'wall s':>8} {'efficiency':>10}")
    for reuse, eff, busy, wall, _ in rows:
        print(f"{str(reuse):>12} {busy:8.1f} {wall:8.1f} {eff:10.3f}")
    ok = rows[0][1] >= 0.85
    print(f"capgate (reuse_actors=True) grid efficiency {rows[0][1]:.3f}: target >= 0.85 "
          f"{'met' if ok else 'NOT met'}; ratio vs fresh workers {rows[0][1] / max(rows[1][1], 1e-9):.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
