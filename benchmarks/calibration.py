"""Calibration of capgate's verdicts over many simulated studies with a known truth.

Prints: the share of true-null studies with any false helps/hurts; interval coverage per noise class;
power (P(helps)) at true gains of 2 and 4 of the cell's own SDs per noise class and at 0, 1 and 2 x the
margin; the within_noise rate under a true null; false gates per null study; and seeds_needed accuracy
(the promised power vs the power of a rerun with the advised seeds).

The simulated grid is realistic in the ways that break naive statistics: eval sets differing 5x in noise
(quiet 0.5 pp, noisy 2.5 pp run-to-run SD), a seed component shared by all inits (matched-seed correlation
0.6), a run component shared across a run's eval sets, failed runs (5 %) and missing runs (5 %, so seeds
are unbalanced), one quiet cell 10x noisier (5 pp) in the "one noisy cell" scenario, and every scratch arm
3x noisier than the pretrained one in the last null scenario (the demo's scratch arms are about 4x).

    python benchmarks/calibration.py --studies 400 --seeds 4 --suite classic

The default suite (``--suite verdicts``, :mod:`calibration_verdicts`) checks the verdicts on capgate's
demo-like grid (demo_truth: 14 rungs x 6 cells, 84 contrasts in one Holm family) under the noise that
made them fail: 2-5 seeds, margin 0 and 1 pp, paired or not, t(3) run noise, outlier runs, a pretraining
component shared by a stage's fine-tuning runs (with replicates, and with one), and a Pocock design:

    python benchmarks/calibration.py --studies 200
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

from capgate.analysis import Truth, resolve_plan, simulate_results, true_gains
from capgate.analysis.analyze import analyze_contrasts

RUNGS = [(f"net@w{w}d0.5 (R-{i})", p) for i, (w, p) in
         enumerate([(0.5, 700_000), (0.4, 450_000), (0.3, 280_000), (0.2, 120_000), (0.1, 50_000)])]
SETS = {"a/rgb": [("a/rgb", "in_domain"), ("b/rgb", "cross_dataset")],
        "b/rgb": [("b/rgb", "in_domain"), ("a/rgb", "cross_dataset")]}
QUIET, NOISY = 0.005, 0.025            # run-to-run SD of one run, per eval set
SHARE = (0.6, 0.3, 0.1)                # variance shares: seed (shared across inits), run, residual
PLAN = resolve_plan({"n_boot": 0, "contrasts": ["imagenet"]})


def truth(seeds: int, gains: dict | float = 0.0, **kw) -> Truth:
    sd = {"seed_sd": np.sqrt(SHARE[0]), "run_sd": np.sqrt(SHARE[1]), "noise_sd": np.sqrt(SHARE[2])}
    g = gains if isinstance(gains, dict) else {"in_domain": gains, "cross_dataset": gains}
    base = Truth(study="cal", families={"net": RUNGS}, inits=("scratch", "imagenet"), sets=SETS, seeds=seeds,
                 gains={"imagenet": g}, rung_sd=0.01, eval_noise={"a/rgb": QUIET, "b/rgb": NOISY},
                 p_failed=0.05, p_missing=0.05, latency=False, base=0.5, slope_per_decade=0.05, **sd)
    return dataclasses.replace(base, **kw)


def cell_sd(row: pd.Series) -> float:
    return QUIET if row["eval_set"] == "a/rgb" else NOISY


def run(tr: Truth, n: int, seed0: int, plan: dict = PLAN) -> tuple[pd.DataFrame, pd.DataFrame]:
    tg = true_gains(tr).set_index(["backbone", "train_set", "eval_set", "init"])["true_gain"]
    gains, gates = [], []
    for i in range(n):
        t = simulate_results(tr, seed=seed0 + i)
        _, g, gt = analyze_contrasts(t, plan)
        g["sim"], gt["sim"] = i, i
        g["true_gain"] = [tg[k] for k in zip(g["backbone"], g["train_set"], g["eval_set"], g["init"])]
        gains.append(g)
        gates.append(gt)
    return pd.concat(gains, ignore_index=True), pd.concat(gates, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=None,
                    help="simulated studies per scenario (default: 400 classic, 60 verdicts)")
    ap.add_argument("--seeds", type=int, default=4, help="seeds per arm (classic suite)")
    ap.add_argument("--suite", choices=("verdicts", "classic", "residuals"), default="verdicts")
    ap.add_argument("--results", nargs="+", default=None,
                    help="residuals suite: results tables or study folders whose residuals the null studies resample")
    ap.add_argument("--plan", default=None, help="residuals suite: the analysis plan (e.g. analysis/demo.yaml)")
    ap.add_argument("--look", type=int, default=3, help="residuals suite: each run group's first N seeds")
    ap.add_argument("--only", default=None, help="verdicts suite: run the scenarios whose name contains one of these |-separated parts")
    args = ap.parse_args()
    if args.suite == "residuals":
        from calibration_residuals import run_residuals
        if not args.results:
            ap.error("--suite residuals needs --results")
        run_residuals(args.results, args.plan, args.studies or 100, args.look)
        return
    if args.suite == "verdicts":
        from calibration_verdicts import run_suite
        run_suite(args.studies or 60, args.only)
        return
    classic(args.studies or 400, args.seeds)


def classic(n: int, k: int) -> None:
    t0 = time.time()
    print(f"calibration: {n} studies per scenario, {k} seeds per arm, 5 rungs x 4 cells = 20 contrasts per study, "
          f"margin {PLAN.margin}, alpha {PLAN.alpha}, Holm per (study, task)")
    for name, tr in (("null, eval sets 5x apart", truth(k)),
                     ("null, one cell 10x noisier", truth(k, cell_noise={f"{RUNGS[2][0]}|a/rgb": 10.0})),
                     ("null, scratch arms 3x noisier", truth(k, init_noise={"scratch": 3.0}))):
        g, gt = run(tr, n, 1000)
        g["cls"] = np.where(g["eval_set"] == "a/rgb", "quiet", "noisy")
        false = g["verdict"].isin(["helps", "hurts"]).groupby(g["sim"]).any().mean()
        cover = ((g["ci_low"] <= g["true_gain"]) & (g["true_gain"] <= g["ci_high"])).groupby(g["cls"]).mean()
        wn = (g["verdict"] == "within_noise").groupby(g["cls"]).mean()
        fg = gt["status"].isin(["gate", "helps_everywhere"]).groupby(gt["sim"]).sum()
        print(f"\n[{name}]")
        print(f"  studies with any false helps/hurts: {false:.3f} (target <= 0.05)")
        print("  95% interval coverage: " + ", ".join(f"{c} {v:.3f}" for c, v in cover.items()) + " (target 0.95 +- 0.02)")
        print("  within_noise rate under the null: " + ", ".join(f"{c} {v:.3f}" for c, v in wn.items()))
        print(f"  false gates per null study: {fg.mean():.3f}; studies with any false gate: {(fg > 0).mean():.3f}")
        if name.startswith("null, eval"):
            target = (g["backbone"] == RUNGS[0][0]) & (g["eval_set"] == "b/rgb") & (g["shift"] == "in_domain")
            adv = g[target]["seeds_needed_helps"].dropna().astype(int)
            advised = int(adv.median()) if len(adv) else None
    for mult in (2, 4):
        tr = truth(k, gains={"in_domain": mult * QUIET, "cross_dataset": mult * NOISY})
        g, _ = run(tr, max(n // 2, min(n, 50)), 5000 + mult)
        g = g[g["shift"] == g["shift"]]
        g["cls"] = np.where(g["eval_set"] == "a/rgb", "quiet", "noisy")
        g = g[((g["cls"] == "quiet") & (g["shift"] == "in_domain")) | ((g["cls"] == "noisy") & (g["shift"] == "cross_dataset"))]
        ph = (g["verdict"] == "helps").groupby(g["cls"]).mean()
        print(f"\npower at a true gain of {mult} of the cell's own SDs: "
              + ", ".join(f"{c} cell {v:.3f}" for c, v in ph.items())
              + ("  (target quiet >= 0.90)" if mult == 4 else "  (the quiet cell's 2 SD = 1 pp = the margin: "
                 "'estimate beyond the margin' caps P(helps) near 0.5)"))
    m = PLAN.margin
    for mult in (0, 1, 2):
        tr = truth(k, gains={"in_domain": mult * m, "cross_dataset": 0.0})
        g, _ = run(tr, max(n // 2, min(n, 50)), 7000 + mult)
        q = g[(g["eval_set"] == "a/rgb") & (g["shift"] == "in_domain")]
        print(f"P(helps) of a quiet cell at true gain {mult} x margin ({mult * m:.3f}): {(q['verdict'] == 'helps').mean():.3f}")
    if advised:
        top = {"low": 0.0, "high": 2 * m, "gate": 600_000, "width": 0.005}  # only the largest rung gains
        tr = truth(advised, gains={"in_domain": top, "cross_dataset": 0.0}, p_failed=0.0, p_missing=0.0)
        g, _ = run(tr, n, 9000)
        q = g[(g["backbone"] == RUNGS[0][0]) & (g["eval_set"] == "b/rgb") & (g["shift"] == "in_domain")]
        print(f"\nseeds_needed: median advice for a noisy cell (helps at 2 x margin, power {PLAN.power}) from "
              f"{k}-seed null pilots: {advised} seeds; a rerun with {advised} seeds gives P(helps) = "
              f"{(q['verdict'] == 'helps').mean():.3f} (promised {PLAN.power} +- 0.10)")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
