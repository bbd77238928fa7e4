"""Training step time in NCHW against channels_last memory format, side by side, per rung (CPU by default).

For each rung: the 10-class classifier (batch 32, 64 px: the demo's classification recipe) and the FCOS
detector (batch 16, 80 px, one box per image: the demo's detection recipe), each with AdamW, one fresh copy
of the same initial weights per format. Rounds alternate the formats (NCHW, channels_last, NCHW, ...) so
machine noise hits both; the median ms per optimizer step is reported with the ratio channels_last / NCHW
(below 1: channels_last is faster). The demo's recipes set ``channels_last: true`` on this measurement.

    .venv/bin/python benchmarks/channels_last.py [--rungs B-5 B-7 S-2 S-6] [--rounds 5] [--steps 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def _classifier_step(model, opt, x, y) -> None:  # noqa: ANN001
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _detector_step(model, opt, x, targets) -> None:  # noqa: ANN001
    loss = sum(model(x, targets).values())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _ms_per_step(init: torch.nn.Module, step, x, extra, channels_last: bool, steps: int) -> float:  # noqa: ANN001
    model = copy.deepcopy(init)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step(model, opt, x, extra)  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step(model, opt, x, extra)
    return 1000 * (time.perf_counter() - t0) / steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rungs", nargs="+", default=["B-5", "B-7", "S-2", "S-6"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5, help="optimizer steps timed per round and format")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from capgate.models import build_classifier, build_detector, get_rung

    gen = torch.Generator().manual_seed(0)
    cases = []
    for name in args.rungs:
        torch.manual_seed(0)
        cases.append((name, "classifier 64 px, batch 32", build_classifier(get_rung(name), 10), _classifier_step,
                      torch.rand(32, 3, 64, 64, generator=gen), torch.randint(0, 10, (32,), generator=gen)))
        boxes = [{"boxes": torch.tensor([[10.0, 10.0, 40.0, 60.0]]), "labels": torch.tensor([0])} for _ in range(16)]
        cases.append((name, "FCOS detector 80 px, batch 16", build_detector(get_rung(name), 1, 80), _detector_step,
                      torch.rand(16, 3, 80, 80, generator=gen), boxes))
    print(f"training step, {args.threads} thread(s), CPU; median of {args.rounds} alternating rounds of "
          f"{args.steps} steps")
    print(f"{'rung':<5} {'model':<30} {'NCHW ms':>8} {'CL ms':>8} {'CL / NCHW':>9}")
    for name, what, init, step, x, extra in cases:
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for cl in (False, True):
                times[cl].append(_ms_per_step(init, step, x, extra, cl, args.steps))
        a, b = statistics.median(times[False]), statistics.median(times[True])
        print(f"{name:<5} {what:<30} {a:8.1f} {b:8.1f} {b / a:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
