"""GPU smoke test: one tiny detection trial and one tiny classification trial on a device, then
trials per hour at 1, 2 and 4 concurrent trials per device.

Everything runs through capgate's own trial path, ``train_one_run(spec, storage, device=...)``
(the function every Ray Tune trial calls), on a tiny synthetic world generated in a temporary
folder, so the script needs no data and no Ray. It checks and prints:

* per trial (detection and classification under ``--amp``, then detection once more in the
  other precision, fp16 with a GradScaler on CUDA or bf16 on CPU, with channels_last): status
  ``ok`` (a non-finite loss would make it ``diverged``), the per-epoch losses of its metrics CSV
  all finite, mAP (detection) or top-1 (classification) computed (a number, not NaN), the
  record's ``device`` and ``precision``, and its ``cuda_peak_mem_bytes`` (an integer on CUDA;
  None on CPU, where no comparable counter exists);
* throughput: for each concurrency level k, k worker processes share the device the way k
  fractional-GPU trials (``resources: {gpu: 1/k}``) share one GPU on a Ray node: each process
  imports, warms up with one untimed trial, waits at a barrier, then trains ``--trials`` trials;
  trials per hour = k x trials / wall seconds from the barrier to the last worker's end.

On CPU the same code path runs with the same processes (each with cpu_count / k torch threads),
so the figures are CPU figures; they say nothing about a GPU.

    .venv/bin/python benchmarks/gpu_smoke.py                       # --device cuda when present
    .venv/bin/python benchmarks/gpu_smoke.py --device cpu --concurrency 1,2 --steps 4

Exit code 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORLD = {"datasets": ["llvip", "domainnet"], "llvip_train": 16, "llvip_test": 4, "domainnet_classes": 3,
         "domainnet_train": 8, "domainnet_test": 3, "domainnet_domains": ["real", "sketch"]}


def study(task: str, args: argparse.Namespace) -> dict[str, Any]:
    """A one-cell study of ``task`` on the tiny world (what a spec YAML would hold)."""
    recipe = {"steps": args.steps, "batch_size": args.batch_size, "resolution": args.resolution,
              "warmup_steps": 1, "amp": args.amp, "channels_last": args.channels_last}
    common = {"world": {"seed": 0, "config": WORLD}, "seeds": [0], "recipe": recipe,
              "resources": {"cpu": 1, "gpu": 0}}
    if task == "detection":
        return {"study": "gpu_smoke_det", "task": "detection", "classes": ["person"], "class_map": "person",
                "datasets": {"llvip": {"format": "llvip", "root": "synthetic"}},
                "train_sets": [{"dataset": "llvip", "split": "train", "modality": "rgb", "eval": [
                    {"dataset": "llvip", "split": "test", "modality": "rgb", "shift": "in_domain"}]}],
                "rungs": {"mobilenetv3": [args.rung]}, **common}
    return {"study": "gpu_smoke_cls", "task": "classification", "classes": ["bicycle", "car", "dog"],
            "datasets": {"domainnet": {"format": "domainnet", "root": "synthetic"}},
            "train_sets": [{"dataset": "domainnet", "split": "train", "domain": "real", "eval": [
                {"dataset": "domainnet", "split": "test", "domain": "real", "shift": "in_domain"},
                {"dataset": "domainnet", "split": "test", "domain": "sketch", "shift": "cross_domain"}]}],
            "rungs": {"mobilenetv3": [args.rung]}, **common}


def first_run(task: str, args: argparse.Namespace, seed: int = 0):  # noqa: ANN201
    from capgate.spec.model import expand
    from capgate.spec.load import study_from_dict

    _, runs = expand(study_from_dict(study(task, args)))
    return dataclasses.replace(runs[0], seed=seed)


def trial(task: str, args: argparse.Namespace, storage: Path, seed: int) -> dict[str, Any]:
    """One trial through ``train_one_run``; returns its first record plus its metrics-CSV losses."""
    import csv

    from capgate.train import run_dir, train_one_run

    run = first_run(task, args, seed)
    t0 = time.perf_counter()
    records = train_one_run(run, storage, device=args.device)
    seconds = time.perf_counter() - t0
    csv_path = run_dir(storage, run) / "metrics.csv"
    losses = [float(r["loss"]) for r in csv.DictReader(csv_path.open())] if csv_path.is_file() else []
    return {**records[0], "losses": losses, "trial_seconds": seconds,
            "evals": {r["eval_set"]: r.get("map", r.get("top1")) for r in records}}


def check_trial(task: str, rec: dict[str, Any], device: str) -> list[str]:
    """What is wrong with one smoke trial's record (empty: nothing)."""
    metric = "map" if task == "detection" else "top1"
    problems = []
    if rec["status"] != "ok":
        problems.append(f"{task}: status {rec['status']}: {(rec.get('error') or '').strip()[:400]}")
    if not rec["losses"] or not all(math.isfinite(v) for v in rec["losses"]):
        problems.append(f"{task}: losses not all finite: {rec['losses']}")
    if not isinstance(rec.get(metric), float) or math.isnan(rec[metric]):
        problems.append(f"{task}: {metric} was not computed ({rec.get(metric)!r})")
    peak = rec.get("cuda_peak_mem_bytes")
    if device.startswith("cuda") and not (isinstance(peak, int) and peak > 0):
        problems.append(f"{task}: cuda_peak_mem_bytes is {peak!r} on {device}; expected a positive integer")
    if not device.startswith("cuda") and peak is not None:
        problems.append(f"{task}: cuda_peak_mem_bytes is {peak!r} off CUDA; expected None")
    return problems


def peak_rss() -> int | None:
    """This process's peak resident set (``VmHWM``; ``ru_maxrss`` is not reset by exec on Linux,
    so a child would report its parent's peak). None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def worker(args: argparse.Namespace) -> int:
    """One throughput worker: warm up, print ``ready``, wait for ``go`` on stdin, run trials."""
    import torch

    torch.set_num_threads(args.threads)
    storage = Path(args.storage)
    base = args.seed_base
    if args.warmup:
        trial("detection", args, storage, seed=base)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    t0 = time.perf_counter()
    done = [trial("detection", args, storage, seed=base + 1 + i) for i in range(args.trials)]
    print(json.dumps({"seconds": time.perf_counter() - t0, "statuses": [d["status"] for d in done],
                      "trial_seconds": [round(d["trial_seconds"], 3) for d in done],
                      "max_rss_bytes": peak_rss()}), flush=True)
    return 0


def throughput(k: int, args: argparse.Namespace, storage: Path) -> dict[str, Any]:
    """Trials per hour with ``k`` worker processes sharing the device (see the module doc)."""
    threads = max(1, (args.cpus or os.cpu_count() or 1) // k)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--storage", str(storage),
           "--device", args.device, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
           "--resolution", str(args.resolution), "--rung", args.rung, "--amp", args.amp,
           "--trials", str(args.trials), "--threads", str(threads), "--warmup", str(args.warmup)]
    if args.channels_last:
        cmd.append("--channels-last")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    procs = [subprocess.Popen(cmd + ["--seed-base", str(1000 * k + 100 * i)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for i in range(k)]
    try:
        for p in procs:
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"throughput worker exited before it was ready (got {line!r}); "
                                   f"rerun with --concurrency 1 to see its error")
        t0 = time.perf_counter()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = []
        for p in procs:
            line = p.stdout.readline()
            if not line.startswith("{"):
                raise RuntimeError(f"a throughput worker at concurrency {k} ended without its figures "
                                   f"(its error is above); rerun with --concurrency 1 to see it alone")
            outs.append(json.loads(line))
        wall = time.perf_counter() - t0
    finally:
        for p in procs:
            p.wait(timeout=600)
    n = sum(len(o["statuses"]) for o in outs)
    return {"concurrency": k, "threads_per_trial": threads, "trials": n, "wall_seconds": wall,
            "trials_per_hour": 3600.0 * n / wall, "ok": sum(s == "ok" for o in outs for s in o["statuses"]),
            "max_rss_bytes": max((o["max_rss_bytes"] for o in outs if o["max_rss_bytes"] is not None), default=None),
            "trial_seconds": [t for o in outs for t in o["trial_seconds"]]}


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cuda, cuda:N or cpu [default: cuda when present]")
    ap.add_argument("--concurrency", default="1,2,4", help="trials per device to time, comma-separated")
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per trial")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--rung", default="S-6", help="mobilenetv3 rung of both trials")
    ap.add_argument("--amp", default="auto", choices=("off", "auto", "bf16", "fp16"), help="recipe.amp of the trials")
    ap.add_argument("--channels-last", action="store_true", help="recipe.channels_last")
    ap.add_argument("--trials", type=int, default=2, help="timed trials per worker process")
    ap.add_argument("--warmup", type=int, default=1, choices=(0, 1), help="one untimed trial per worker first")
    ap.add_argument("--cpus", type=int, default=None, help="CPU cores to split between workers [default: all]")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--storage", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seed-base", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.worker:
        return worker(args)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"Error: --device {args.device} but torch sees no CUDA device; use --device cpu", file=sys.stderr)
        return 1
    torch.set_num_threads(args.cpus or os.cpu_count() or 1)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    from capgate.train.pretrain import ensure_world_once
    from capgate.train.recipe import device_name

    dev = torch.device(args.device)
    print(f"gpu_smoke on {device_name(dev)}: torch {torch.__version__}, rung {args.rung} at {args.resolution} px, "
          f"batch {args.batch_size}, {args.steps} steps, amp={args.amp}, channels_last={args.channels_last}")
    problems: list[str] = []
    out: dict[str, Any] = {"device": device_name(dev), "torch": torch.__version__, "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="cg-gpu-smoke-") as tmp:
        storage = Path(tmp)
        t0 = time.perf_counter()
        ensure_world_once(storage, study("detection", args)["world"])
        print(f"tiny synthetic world generated in {time.perf_counter() - t0:.1f}s")
        for task in ("detection", "classification"):
            rec = trial(task, args, storage, seed=0)
            problems += check_trial(task, rec, args.device)
            metric = "map" if task == "detection" else "top1"
            last = rec["losses"][-1] if rec["losses"] else math.nan
            print(f"{task:<15} status {rec['status']}, final loss {last:.4f}, "
                  f"{metric} " + ", ".join(f"{k} {v:.4f}" for k, v in rec["evals"].items())
                  + f"; precision {rec.get('precision')}, CUDA training peak {_mib(rec.get('cuda_peak_mem_bytes'))}, "
                  f"batch-1 step peak {_mib(rec.get('peak_mem_bytes'))}, {rec['trial_seconds']:.1f}s")
            out[task] = {k: rec.get(k) for k in ("status", metric, "precision", "device", "cuda_peak_mem_bytes",
                                                 "peak_mem_bytes", "trial_seconds", "losses", "evals")}
        # the other precision branch once more, with channels_last: fp16 + GradScaler on CUDA
        # (bf16 needs no scaler), CPU autocast in bf16 on CPU
        variant = argparse.Namespace(**{**vars(args), "amp": "fp16" if dev.type == "cuda" else "bf16",
                                        "channels_last": True})
        rec = trial("detection", variant, storage, seed=0)
        problems += check_trial("detection", rec, args.device)
        print(f"{'detection':<15} status {rec['status']} with amp={variant.amp}, channels_last=True: map "
              + ", ".join(f"{k} {v:.4f}" for k, v in rec["evals"].items())
              + f"; precision {rec.get('precision')}, CUDA training peak {_mib(rec.get('cuda_peak_mem_bytes'))}")
        out["detection_variant"] = {k: rec.get(k) for k in ("status", "map", "precision", "cuda_peak_mem_bytes",
                                                            "losses")}
        if levels:
            print(f"throughput: detection trials, {args.trials} timed per worker after "
                  f"{args.warmup} untimed warm-up")
            print(f"{'trials/device':>13} {'threads':>7} {'trials':>6} {'wall s':>7} {'trials/hour':>11} "
                  f"{'max RSS':>10}")
            out["throughput"] = []
            for k in levels:
                row = throughput(k, args, storage)
                if row["ok"] != row["trials"]:
                    problems.append(f"throughput at {k}: only {row['ok']} of {row['trials']} trials ok")
                print(f"{k:>13} {row['threads_per_trial']:>7} {row['trials']:>6} {row['wall_seconds']:>7.1f} "
                      f"{row['trials_per_hour']:>11.0f} {_mib(row['max_rss_bytes']):>10}")
                out["throughput"].append(row)
    out["problems"] = problems
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    for p in problems:
        print(f"FAILED: {p}")
    print("all checks passed" if not problems else f"{len(problems)} check(s) failed")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
