"""The verdicts suite of ``benchmarks/calibration.py``: capgate's own demo-like grid under hostile noise.

Every scenario simulates ``n`` studies of demo_truth's detection grid (two families x seven rungs, two
train sets x three eval sets: 84 scratch-vs-imagenet contrasts in one Holm family; run SD 1 pp, record
SD 0.6 pp) and prints, for true-null scenarios: the share of studies with any false helps/hurts (target
<= 0.05), the raw-p tail at Holm's first step (share of contrasts with p < alpha/m, over alpha/m; target
<= 1.5) and 95% interval coverage (target 0.95 +- 0.02); for power scenarios P(helps) at a true gain of
2 x the margin. Scenarios with a pretraining component give each pretrained rung ``stage_seeds``
replicates whose effect (SD ``stage_sd`` x the fine-tuning SD) all fine-tuning runs from that
replicate share; with one replicate the verdict is scored against that checkpoint's own gain (what the
report's "conditional on the checkpoint" wording claims) and, for contrast, against pretraining's. A
scenario named ``... (oracle)`` analyses the studies of the scenario without that suffix with exactly the
runs the simulator collapsed left out (as diverged): the best any outlier rule could do.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from typing import Any

import numpy as np
import pandas as pd

from capgate.analysis import resolve_plan, simulate_results
from capgate.analysis.cells import analysis_frame
from capgate.analysis.gains import gains_of_table
from capgate.analysis.load import validate
from capgate.analysis.simulate import Truth, conditional_gains, demo_truth

CLAIMS = ("helps", "hurts")
FT_SD = float(np.hypot(0.010, 0.006))  # demo_truth's SD of one record from one run: run and residual


def base(**kw: Any) -> Truth:
    return dataclasses.replace(demo_truth(), inits=("scratch", "imagenet"), **{"gains": {}, **kw})


def plan_of(**kw: Any) -> dict[str, Any]:
    return resolve_plan({"n_boot": 0, "contrasts": ["imagenet"], **kw})


def gains_one(tr: Truth, seed: int, plan: dict[str, Any], oracle: bool = False) -> pd.DataFrame:
    t = simulate_results(tr, seed=seed)
    eff = t.attrs.get("stage_effects", {})
    if oracle:  # leave out exactly the runs the simulator collapsed, as if they had diverged
        hit = t["run_id"].isin(set(t.attrs["outlier_runs"])) & (t["status"] == "ok")
        t.loc[hit, "status"] = "diverged"
        t.loc[hit, "error"] = "collapsed (oracle)"
    t = validate(t)
    y, cells, _ = analysis_frame(t, plan)
    g, _ = gains_of_table(t, plan, y, cells)
    t.attrs["stage_effects"] = eff
    truth = conditional_gains(tr, t).set_index(["backbone", "train_set", "eval_set", "init"])
    key = list(zip(g["backbone"], g["train_set"], g["eval_set"], g["init"]))
    g["true_gain"] = truth.loc[key, "true_gain"].to_numpy()
    g["cond_gain"] = truth.loc[key, "conditional_gain"].to_numpy()
    g["sim"] = seed
    return g


def run(tr: Truth, plan: dict[str, Any], n: int, seed0: int, oracle: bool = False) -> pd.DataFrame:
    return pd.concat([gains_one(tr, seed0 + i, plan, oracle) for i in range(n)], ignore_index=True)


def null_figures(g: pd.DataFrame, alpha: float, truth_col: str = "true_gain") -> dict[str, float]:
    """False-claim share of studies (against ``truth_col``), Holm first-step tail ratio, coverage."""
    wrong = ((g["verdict"] == "helps") & (g[truth_col] <= 0)) | ((g["verdict"] == "hurts") & (g[truth_col] >= 0))
    m = g.groupby("sim")["p_value"].transform(lambda p: p.notna().sum())
    tail = float((g["p_value"] < alpha / m).mean() / (alpha / m).mean())
    cover = float(((g["ci_low"] <= g[truth_col]) & (g[truth_col] <= g["ci_high"])).mean())
    return {"false": float(wrong.groupby(g["sim"]).any().mean()), "tail": tail, "cover": cover,
            "df": float(g["df"].median())}


SCENARIOS: list[tuple[str, Truth, dict[str, Any], str]] = [
    ("null, 3 seeds, margin 0", base(seeds=3), {"margin": 0.0}, "null"),
    ("null, 2 seeds, margin 0", base(seeds=2), {"margin": 0.0}, "null"),
    ("null, 5 seeds, margin 0", base(seeds=5), {"margin": 0.0}, "null"),
    ("null, 3 seeds, margin 1 pp", base(seeds=3), {"margin": 0.01}, "null"),
    ("null, 3 seeds, unpaired, margin 0", base(seeds=3), {"margin": 0.0, "pairing": "unpaired"}, "null"),
    ("null, demo-like noise (scratch 2x, eval sets ~3x apart, shared seed), 3 seeds",
     base(seeds=3, init_noise={"scratch": 2.0}, eval_noise={"flir/ir": 1.7, "llvip/ir": 1.7, "flir/rgb": 0.6},
          seed_sd=0.008), {"margin": 0.0}, "null"),
    ("null, t(3) run noise, 3 seeds", base(seeds=3, tail_df=3.0), {"margin": 0.0}, "null"),
    ("null, one run in 20 drops 5 SD, 3 seeds", base(seeds=3, p_outlier=0.05), {"margin": 0.0}, "null"),
    ("null, one run in 20 drops 5 SD, 5 seeds", base(seeds=5, p_outlier=0.05), {"margin": 0.0}, "null"),
    ("null, one run in 20 drops 5 SD, 5 seeds, outlier_runs: isolate", base(seeds=5, p_outlier=0.05),
     {"margin": 0.0, "outlier_runs": "isolate"}, "null"),
    ("null, one run in 20 drops 5 SD, 5 seeds, outlier_runs: isolate (oracle)", base(seeds=5, p_outlier=0.05),
     {"margin": 0.0, "outlier_runs": "isolate"}, "null"),
    ("null, 5 seeds, margin 0, outlier_runs: isolate", base(seeds=5), {"margin": 0.0, "outlier_runs": "isolate"},
     "null"),
    ("null, t(3) run noise, 5 seeds, outlier_runs: isolate", base(seeds=5, tail_df=3.0),
     {"margin": 0.0, "outlier_runs": "isolate"}, "null"),
    ("null, Pocock looks at 3 and 5 seeds, margin 0", base(seeds=5),
     {"margin": 0.0, "sequential": {"max_seeds": 5, "schedule": [3, 5], "spending": "pocock"}}, "null"),
    ("null, pretraining SD 3x, 3 replicates x 2 seeds", base(seeds=6, stage_seeds=3, stage_sd=3 * FT_SD),
     {"margin": 0.0}, "null"),
    ("null, pretraining SD 10x, 3 replicates x 1 seed", base(seeds=3, stage_seeds=3, stage_sd=10 * FT_SD),
     {"margin": 0.0}, "null"),
    ("null, pretraining SD 3x, one replicate, 3 seeds", base(seeds=3, stage_seeds=1, stage_sd=3 * FT_SD),
     {"margin": 0.0}, "conditional"),
    ("power, clean, 5 seeds, gain 3 pp (margin 1 pp)", base(seeds=5, gains={"imagenet": 0.03}), {"margin": 0.01},
     "power"),
    ("power, one run in 20 drops 5 SD, 5 seeds, gain 3 pp (margin 1 pp)",
     base(seeds=5, gains={"imagenet": 0.03}, p_outlier=0.05), {"margin": 0.01}, "power"),
    ("power, one run in 20 drops 5 SD, 5 seeds, gain 3 pp (margin 1 pp), outlier_runs: isolate",
     base(seeds=5, gains={"imagenet": 0.03}, p_outlier=0.05), {"margin": 0.01, "outlier_runs": "isolate"}, "power"),
    ("power, clean, 5 seeds, gain 3 pp (margin 1 pp), outlier_runs: isolate", base(seeds=5, gains={"imagenet": 0.03}),
     {"margin": 0.01, "outlier_runs": "isolate"}, "power"),
    ("power, one run in 20 drops 5 SD, 5 seeds, gain 3 pp (margin 1 pp) (oracle)",
     base(seeds=5, gains={"imagenet": 0.03}, p_outlier=0.05), {"margin": 0.01}, "power"),
]


def run_suite(n: int, only: str | None = None) -> None:
    print(f"calibration (verdicts): {n} studies per scenario; demo_truth grid, 84 contrasts per study, alpha 0.05, "
          "Holm per (study, task)")
    t0 = time.time()
    for name, tr, plan_kw, kind in SCENARIOS:
        if only and not any(part in name for part in only.split("|")):
            continue
        plan = plan_of(**plan_kw)
        t1 = time.time()
        oracle = name.endswith("(oracle)")  # the same studies as the scenario without the suffix
        seed0 = 10_000 * (zlib.crc32(name.removesuffix(" (oracle)").encode()) % 1000 + 1)  # fixed per scenario name
        g = run(tr, plan, n, seed0, oracle)
        if kind == "power":
            ph = float((g["verdict"] == "helps").mean())
            print(f"[{name}] P(helps) {ph:.3f}; median df {g['df'].median():.1f}  ({time.time() - t1:.0f} s)")
            continue
        f = null_figures(g, plan.alpha)
        line = (f"[{name}] false-claim share {f['false']:.3f} (SE {np.sqrt(f['false'] * (1 - f['false']) / n):.3f}); "
                f"Holm first-step tail {f['tail']:.2f}x; coverage {f['cover']:.3f}; median df {f['df']:.1f}")
        if kind == "conditional":
            c = null_figures(g, plan.alpha, "cond_gain")
            named = float(g["conditional_on"].notna().mean())
            line += (f"  | against the checkpoint's own gain: false-claim share {c['false']:.3f}, coverage "
                     f"{c['cover']:.3f}; verdicts named conditional: {named:.3f}")
        print(line + f"  ({time.time() - t1:.0f} s)")
    print(f"({time.time() - t0:.0f} s)")
