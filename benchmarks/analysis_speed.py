"""Time of analyze + write_outputs (and the HTML report, when capgate.report is importable) on a
~20,000-row simulated results table: detection (LLVIP<->FLIR RGB, RGB->IR) and DomainNet
classification, two families x seven rungs, three inits, many seeds. Target: under 60 s.

    .venv/bin/python benchmarks/analysis_speed.py [--rows 20000] [--out /tmp/capgate-bench]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd

from capgate.analysis import analyze, demo_truth, simulate_results, write_outputs

log = logging.getLogger("analysis_speed")


def build_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """Half detection (3 eval sets per run), half classification (4 per run), seeds chosen to hit ``rows``."""
    det_per_seed = 14 * 2 * 3 * 3  # rungs x train sets x inits x eval sets
    cls_per_seed = 14 * 2 * 3 * 4
    det = simulate_results(demo_truth(seeds=max(2, rows // 2 // det_per_seed), p_failed=0.02, p_diverged=0.01),
                           seed=seed)
    cls = simulate_results(demo_truth("classification", seeds=max(2, rows // 2 // cls_per_seed), p_failed=0.02),
                           seed=seed + 1)
    return pd.concat([det, cls], ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    table = build_table(args.rows)
    out = args.out or Path(tempfile.mkdtemp(prefix="capgate-bench-"))
    t0 = time.perf_counter()
    analysis = analyze(table, rng=0)
    t1 = time.perf_counter()
    write_outputs(analysis, out)
    t2 = time.perf_counter()
    print(f"rows: {len(table)}  runs: {table['run_id'].nunique()}  contrasts: {len(analysis.gains)}")
    for m in analysis.models:
        print(f"model {m['name']}: n={m['n_obs']} status={m['status']} random effects={m.get('random_effects')} "
              f"warnings={len(m['warnings'])}")
    print(f"analyze:       {t1 - t0:7.2f} s")
    print(f"write_outputs: {t2 - t1:7.2f} s")
    total = t2 - t0
    try:
        from capgate.report import render_html
    except ImportError:
        render_html = None
    if render_html is not None:
        t3 = time.perf_counter()
        (out / "index.html").write_text(render_html(analysis))
        print(f"report:        {time.perf_counter() - t3:7.2f} s")
        total += time.perf_counter() - t3
    print(f"total:         {total:7.2f} s  (target < 60 s)  outputs in {out}")


if __name__ == "__main__":
    main()
