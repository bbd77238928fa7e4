"""Peak RSS of the ``capgate run-grid`` driver on grids of stubbed trials, measured on this machine.

Each size runs in a fresh interpreter through the real driver path: ``run_grid`` loads and
expands the spec, runs the preflight, probes the storage from every node, generates the synthetic
world in a Ray task, runs the pretraining stages' Ray tasks, and puts every run on one
``tune.grid_search`` axis (the stage list shared once through the object store), then collects the
results table. Only what runs inside the workers is stubbed: a trial writes ``ok`` records for its
run into the store and reports, a stage task returns at once; nothing trains and no worker imports
torch. The driver's peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` of that interpreter (Ray's own
processes are not counted); growth per trial is taken over the smallest size.

The study is 2 rungs x 3 inits (scratch, imagenet, imagenet_coco: two stages) x N/6 seeds on one
train set with two eval sets. Target: a few KB per trial.

What made the driver light (issue 13 measured 0.9 MB per trial, 5.37 GB at 5,040 trials, with every
trial's config carrying the stage list, and 707 MB of torch):

* Tune's default per-trial loggers are off: its TensorBoard logger imported torch (tensorboardX) into
  the driver, and all three wrote files per trial that nothing reads.
* A trial's config holds its run id; the run specs go once into the object store
  (``grid.trial.SharedRuns``). Tune copies each config about eight times (config, unresolved
  config, evaluated params, tag, the last result, its cached JSON states): a 1.1 KB RunSpec JSON
  there cost about 13 KB per trial.
* Tune still keeps about 45 KB per trial (running statistics of every reported number, cached JSON)
  until its experiment ends, so the grid runs as consecutive experiments of 500 trials, and what a
  finished one freed is handed back to the OS (``malloc_trim``).

What still grows with the grid is the driver's own per-run data: the expanded RunSpecs, the
store reads and the results table (two records of 32 columns per run), and allocator
fragmentation of those.

Wall time is Tune's per-trial overhead (50 to 60 trials/s here on 2 cores with 2 slots; a stubbed
trial does nothing), so 20,160 trials finish in about 6 to 7 minutes.

    .venv/bin/python benchmarks/driver_memory.py [--sizes 420 5040 20160] [--slots 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

REPO = Path(__file__).resolve().parents[1]
SIZES = (420, 5040, 20160)
TINY_WORLD = {"llvip_train": 4, "llvip_test": 2, "flir_train": 2, "flir_val": 2, "flir_video": 2,
              "imagenet_classes": 2, "imagenet_train": 2, "imagenet_val": 1, "coco_train": 2, "coco_val": 1,
              "domainnet_classes": 2, "domainnet_train": 2, "domainnet_test": 1,
              "domainnet_domains": ["real", "sketch"]}
HEAVY = ("torch", "timm", "torchvision")


def write_spec(folder: Path, trials: int) -> Path:
    """A detection study of exactly ``trials`` runs (a multiple of 6)."""
    if trials % 6:
        raise SystemExit(f"--sizes: {trials} is not a multiple of 6 (2 rungs x 3 inits x seeds)")
    spec = {
        "study": "drivermem", "task": "detection", "classes": ["person"], "class_map": "person",
        "world": {"seed": 0, "config": TINY_WORLD},
        "datasets": {"llvip": {"format": "llvip", "root": "synthetic"},
                     "imagenet": {"format": "imagenet", "root": "synthetic"},
                     "coco": {"format": "coco", "root": "synthetic"}},
        "train_sets": [{"dataset": "llvip", "split": "train", "modality": "rgb", "eval": [
            {"dataset": "llvip", "split": "test", "modality": "rgb", "shift": "in_domain"},
            {"dataset": "llvip", "split": "test", "modality": "ir", "shift": "cross_modality"}]}],
        "rungs": {"efficientnet": ["B-7"], "mobilenetv3": ["S-6"]},
        "inits": {"scratch": {}, "imagenet": {"stages": ["imagenet"]},
                  "imagenet_coco": {"stages": ["imagenet", "coco"]}},
        "pretraining": {"imagenet": {"kind": "classification", "dataset": "imagenet",
                                     "recipe": {"steps": 2, "batch_size": 2, "resolution": 64}},
                        "coco": {"kind": "detection", "dataset": "coco",
                                 "recipe": {"steps": 2, "batch_size": 2, "resolution": 64}}},
        "seeds": list(range(trials // 6)),
        "recipe": {"steps": 2, "batch_size": 2, "resolution": 64, "warmup_steps": 1},
    }
    path = folder / "drivermem.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def stub_trial(config: dict[str, Any], stages: dict[str, dict[str, Any]] | None = None, runs: Any = None) -> None:
    """Stands in for :func:`capgate.grid.trial.run_trial`: the same config, run list and stage
    list in, ``ok`` records written once into the store, the same summary reported; nothing trained."""
    from ray import tune

    from capgate.store.location import location
    from capgate.store.study import Store
    from capgate.grid.trial import summary_metrics
    from capgate.schema import build_records
    from capgate.train.run import run_base

    spec = runs.spec(config["run"])
    assert spec.init_stage is None or spec.init_stage in (stages or {}), "the stage list did not arrive"
    scores = {e.name: {"map": 0.3, "ap50": 0.5, "ap75": 0.2} for e in spec.train_set.evals}
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    records = build_records(run_base(spec), [(e.name, e.shift) for e in spec.train_set.evals], status="ok",
                            scores=scores, started_at=now, ended_at=now, wall_seconds=0.0)
    Store(location(config["storage"]), spec.study).write(spec.run_id, spec.to_dict(), records)
    tune.report(summary_metrics(spec, records, 0.0, skipped=False))


def stub_stage(stage: dict[str, Any], *args: Any) -> dict[str, Any]:
    """Stands in for :func:`capgate.grid.trial.train_stage`: nothing trained."""
    return {"stage_id": stage.get("name", "?"), "trained": False, "seconds": 0.0}


class _WorldLine(logging.Handler):
    """Keeps the pid from the driver's 'synthetic world ready ... pid N' log line."""

    pid: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        m = re.search(r"synthetic world ready .* pid (\d+)", record.getMessage())
        if m:
            _WorldLine.pid = int(m.group(1))


def child(trials: int, slots: int, per_tuner: int | None = None) -> dict[str, Any]:
    """One size in this (fresh) interpreter: the grid, then the driver's figures. ``per_tuner``
    (tests only): runs per Tune experiment instead of capgate's default."""
    from capgate.grid import driver, run_grid, trial

    logging.getLogger("capgate.grid").addHandler(_WorldLine())
    logging.getLogger("capgate.grid").setLevel(logging.INFO)
    sizes = {"TRIALS_PER_TUNER": per_tuner, "TRIALS_PER_SLOT": 1} if per_tuner else {}
    with tempfile.TemporaryDirectory(prefix="cg-drivermem-") as tmp:
        spec = write_spec(Path(tmp), trials)
        t0 = time.monotonic()
        with mock.patch.object(trial, "run_trial", stub_trial), mock.patch.object(trial, "train_stage", stub_stage), \
                (mock.patch.multiple(driver, **sizes) if sizes else contextlib.nullcontext()):
            res = run_grid(spec, storage=Path(tmp) / "store", num_cpus=slots, max_concurrent=slots)
        wall = time.monotonic() - t0
        tuners = len(list((Path(tmp) / "store" / "drivermem" / "tune").iterdir()))
    return {"trials": trials, "wall_s": wall, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "counts": res.counts, "heavy": sorted(m for m in HEAVY if m in sys.modules),
            "driver_pid": os.getpid(), "world_pid": _WorldLine.pid, "tuners": tuners}


def measure(trials: int, slots: int, per_tuner: int | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Run one size in a fresh interpreter; returns :func:`child`'s figures."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--child", str(trials), "--slots", str(slots)]
    out = subprocess.run(cmd + (["--per-tuner", str(per_tuner)] if per_tuner else []), env=env,
                         capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(f"{trials} trials: exit {out.returncode}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict[str, Any]]) -> str:
    """The printed table: trials, wall s, peak RSS MB, KB per trial over the smallest size."""
    base = rows[0]
    lines = [f"{'trials':>7} {'wall s':>8} {'peak RSS MB':>12} {'KB/trial':>9}"]
    for r in rows:
        per = ((r["peak_rss_kb"] - base["peak_rss_kb"]) / (r["trials"] - base["trials"])
               if r["trials"] > base["trials"] else None)
        lines.append(f"{r['trials']:>7,} {r['wall_s']:8.1f} {r['peak_rss_kb'] / 1024:12.1f} "
                     + (f"{per:9.2f}" if per is not None else f"{'-':>9}"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--slots", type=int, default=2, help="Concurrent trials (Ray CPUs of the local cluster).")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--per-tuner", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.slots, args.per_tuner)))
        return 0
    rows = []
    for n in sorted(args.sizes):
        rows.append(measure(n, args.slots))
        r = rows[-1]
        print(f"  {n} trials: {r['wall_s']:.1f}s, peak RSS {r['peak_rss_kb'] / 1024:.1f} MB, {r['counts']}; "
              f"{r['tuners']} Tune experiments; driver imported {r['heavy'] or 'no torch/timm'}; world built by "
              f"pid {r['world_pid']} (driver {r['driver_pid']})", file=sys.stderr, flush=True)
    print(f"driver peak RSS on grids of stubbed trials ({args.slots} slots, one fresh interpreter per size)")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
