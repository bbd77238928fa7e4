"""capgate's trainer throughput relative to a minimal plain PyTorch loop, measured side by side.

Same model (a fresh copy of one initial state), same optimizer, same batches. Three loops:

* plain:   ``loss = sum(model(x, t).values()); zero_grad; backward; step`` over a list of batches
* capgate ``train_one_epoch`` on that same list (its LR scheduler step, deferred finiteness check)
* capgate ``fit`` end to end: its own batching and augmentation from the uint8 memory tensors

Rounds alternate the loops (A B C A B C ...) so machine noise hits all three; the median of the
per-round images/second is reported. Target: train_one_epoch / plain >= 0.95.

    .venv/bin/python benchmarks/trainer_throughput.py [--rung B-7] [--resolution 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rung", default="B-7")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from capgate.data import WorldConfig, ensure_world, open_detection
    from capgate.models import build_detector, get_rung
    from capgate.spec.model import Recipe
    from capgate.train.fit import fit
    from capgate.train.loop import detection_loss, train_one_epoch
    from capgate.train.recipe import make_optimizer, make_scheduler, pick_device
    from capgate.train.tensors import decode_detection, detection_batches

    device = pick_device()
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        cfg = WorldConfig(datasets=("llvip",), llvip_train=args.images, llvip_test=4)
        ensure_world(Path(tmp) / "w", config=cfg, seed=0)
        ds = open_detection("llvip", Path(tmp) / "w" / "llvip", "train", "rgb", class_map="person")
        data = decode_detection(ds, args.resolution)
    recipe = Recipe(optimizer="adamw", lr=1e-3, epochs=1, batch_size=args.batch_size, resolution=args.resolution,
                    warmup_steps=0, schedule="constant", grad_clip=None, hflip=0.5)
    batches = [(x.to(device), [{k: v.to(device) for k, v in t.items()} for t in ts], i)
               for x, ts, i in detection_batches(data, args.batch_size, torch.Generator().manual_seed(0),
                                                 hflip=0.5, drop_last=True)]
    n_images = sum(b[0].shape[0] for b in batches)
    torch.manual_seed(0)
    init = build_detector(get_rung(args.rung), 1, args.resolution).to(device)

    def fresh():  # noqa: ANN202
        m = copy.deepcopy(init)
        return m, make_optimizer(list(m.parameters()), recipe)

    def plain() -> float:
        model, opt = fresh()
        model.train()
        t0 = time.perf_counter()
        for x, targets, _ in batches:
            loss = sum(model(x, targets).values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        float(loss.detach())
        return n_images / (time.perf_counter() - t0)

    def capgate_epoch() -> float:
        model, opt = fresh()
        sched = make_scheduler(opt, recipe, len(batches))
        t0 = time.perf_counter()
        stats = train_one_epoch(model, batches, opt, sched, device, loss_fn=detection_loss)
        return stats.images / (time.perf_counter() - t0)

    def capgate_fit() -> float:
        model, _ = fresh()
        gen = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        hist = fit(model, lambda: detection_batches(data, args.batch_size, gen, 0.5, drop_last=True),
                   len(batches), recipe, device, detection_loss)
        return hist[0].images / (time.perf_counter() - t0)

    loops = {"plain PyTorch loop": plain, "capgate train_one_epoch": capgate_epoch, "capgate fit (own batching)": capgate_fit}
    for f in loops.values():  # warm-up
        f()
    rates: dict[str, list[float]] = {k: [] for k in loops}
    for _ in range(args.rounds):
        for name, f in loops.items():
            rates[name].append(f())
    base = statistics.median(rates["plain PyTorch loop"])
    print(f"{args.rung} detector at {args.resolution} px, batch {args.batch_size}, {n_images} images/epoch, "
          f"{args.threads} thread(s), {device.type}; median of {args.rounds} alternating rounds")
    print(f"{'loop':<28} {'images/s':>9} {'ratio':>6}")
    for name, r in rates.items():
        print(f"{name:<28} {statistics.median(r):9.1f} {statistics.median(r) / base:6.3f}")
    ratio = statistics.median(rates["capgate train_one_epoch"]) / base
    print(f"trainer throughput ratio (train_one_epoch / plain) {ratio:.3f}: target >= 0.95 "
          f"{'met' if ratio >= 0.95 else 'NOT met'}")
    return 0 if ratio >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
