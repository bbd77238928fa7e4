"""Null studies resampled from a real grid's own residuals: ``benchmarks/calibration.py --suite residuals``.

The simulated suites fix the noise's shape; this one takes it from a results table (the demo's, or any
study's): heteroscedastic eval sets, the seed component shared across inits, the run component shared
across eval sets, heavy tails and collapsed runs, as they came out of real training. Each null study:

- the rows of the table's first look (each run group's first ``--look`` seeds; the demo's 3);
- per (study, task, train set), the *seed blocks*: one seed's residuals from its cells' means, on every
  init and eval set of one rung (so the shared seed and run components travel together), scaled by
  ``sqrt(n / (n - 1))`` for the centring (``n`` the cell's ok runs), clipped to the metric's [0, 1];
- every rung's seed slots filled by seed blocks drawn from that pool, distinct within the rung (drawn
  with replacement only when the pool is smaller than the rung's slots: a block drawn twice into one cell
  would give two identical seeds, a variance of zero between them, and anti-conservative tests: with 3
  seeds from a pool of 12, a quarter of the cells), added to the rung's scratch means on every init:
  every true gain is 0. Each slot keeps its own ``stage_seed``; a drawn block
  brings its pretraining replicate's effect as noise, so the between-stage clustering is not reproduced
  (the replicate analysis sees it as independent noise);
- analysed with the plan: a decided ``helps`` or ``hurts`` is a false claim.

Prints per (study, task): the share of null studies with any false helps/hurts (target <= 0.05), the
Holm first-step tail and the median df::

    python benchmarks/calibration.py --suite residuals --results .capgate/demo .capgate/demo_classification \\
        --plan analysis/demo.yaml --studies 100
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from capgate.analysis import as_plan
from capgate.analysis.cells import RUN_GROUP, analysis_frame, metric_frame
from capgate.analysis.gains import gains_of_table
from capgate.analysis.load import load_results, validate

POOL = ("study", "task", "train_set")


def first_look(table: pd.DataFrame, look: int) -> pd.DataFrame:
    """Each run group's first ``look`` seeds (in seed order), any status."""
    rank = table.groupby(list(RUN_GROUP))["seed"].rank(method="dense")
    return table[rank <= look].reset_index(drop=True)


def seed_blocks(table: pd.DataFrame, plan: Any) -> pd.DataFrame:
    """The ok rows of ``table`` with ``e``: the scaled residual from its cell mean, and ``block``: an id
    per (rung, train set, seed) within its pool."""
    y = metric_frame(table, plan)
    cell = ["study", "task", "family", "backbone", "train_set", "eval_set", "init"]
    g = y.groupby(cell)["y"]
    n = g.transform("count")
    y = y[n >= 2].copy()
    n = n[n >= 2]
    y["e"] = (y["y"] - y.groupby(cell)["y"].transform("mean")) * np.sqrt(n / (n - 1))
    y["block"] = y.groupby(["family", "backbone", "seed"]).ngroup()
    return y


def null_study(table: pd.DataFrame, blocks: pd.DataFrame, plan: Any, rng: np.random.Generator) -> pd.DataFrame:
    """One null study on ``table``'s design (its ok rows): every metric value replaced by the rung's
    scratch mean on that eval set plus the residual of a seed block drawn for its (rung, seed) slot."""
    metric_of = plan.metric
    ok = table[table["status"] == "ok"].copy()
    scratch = blocks[blocks["init"] == plan.baseline].groupby(
        ["study", "task", "family", "backbone", "train_set", "eval_set"])["y"].mean().rename("base")
    res = blocks.set_index([*POOL, "block", "init", "eval_set"])["e"]
    res = res[~res.index.duplicated()]
    pools = blocks.groupby(list(POOL))["block"].unique()
    slots = ok[[*POOL, "family", "backbone", "seed"]].drop_duplicates().reset_index(drop=True)
    drawn = np.empty(len(slots), dtype=np.int64)
    for key, rows in slots.groupby([*POOL, "family", "backbone"], sort=False).groups.items():
        pool = pools[tuple(key[:len(POOL)])]  # one rung's seeds: distinct blocks while the pool has enough
        drawn[np.asarray(rows)] = rng.choice(pool, size=len(rows), replace=len(pool) < len(rows))
    slots = slots.assign(donor=drawn)
    ok = ok.merge(slots, on=[*POOL, "family", "backbone", "seed"], how="left")
    ok = ok.join(scratch, on=["study", "task", "family", "backbone", "train_set", "eval_set"])
    idx = pd.MultiIndex.from_arrays([ok["study"], ok["task"], ok["train_set"], ok["donor"], ok["init"],
                                     ok["eval_set"]])
    e = res.reindex(idx).to_numpy()
    ok = ok[np.isfinite(e) & ok["base"].notna()].copy()
    e = e[np.isfinite(e)]
    for task, metric in metric_of.items():
        hit = (ok["task"] == task).to_numpy()
        if metric in ok.columns:
            ok.loc[hit, metric] = np.clip(ok.loc[hit, "base"].to_numpy() + e[hit], 0.0, 1.0)  # a metric's range
    return validate(ok.drop(columns=["donor", "base"]))


def run_residuals(paths: list[str], plan_path: str | None, n: int, look: int, seed: int = 0) -> None:
    plan = as_plan(plan_path)
    table = first_look(validate(pd.concat([load_results(p) for p in paths], ignore_index=True)), look)
    blocks = seed_blocks(table, plan)
    rng = np.random.default_rng(seed)
    t0 = time.time()
    print(f"calibration (residuals): {n} null studies resampled from {', '.join(paths)} (first {look} seeds, "
          f"{len(blocks)} residuals), plan {plan.name}: margin {plan.margin}, alpha {plan.alpha}, "
          f"{plan.correction}{', sequential' if plan.sequential else ''}")
    parts = []
    for i in range(n):
        t = null_study(table, blocks, plan, rng)
        y, cells, _ = analysis_frame(t, plan)
        g, _ = gains_of_table(t, plan, y, cells)
        parts.append(g.assign(sim=i))
    g = pd.concat(parts, ignore_index=True)
    for (study, task), sub in g.groupby(["study", "task"]):
        false = sub["verdict"].isin(["helps", "hurts"]).groupby(sub["sim"]).any().mean()
        m = sub.groupby("sim")["p_value"].transform(lambda p: p.notna().sum())
        tail = float((sub["p_value"] < plan.alpha / m).mean() / (plan.alpha / m).mean())
        print(f"[{study}/{task}: {int(len(sub) / n)} contrasts] false-claim share {false:.3f} "
              f"(SE {np.sqrt(false * (1 - false) / n):.3f}); Holm first-step tail {tail:.2f}x; "
              f"median df {sub['df'].median():.1f}")
    print(f"({time.time() - t0:.0f} s)")
