"""Cells of a results table: per-cell means, seed-to-seed SDs, completeness, and pooled noise.

A *cell* is (task, family, backbone, train_set, eval_set, shift, init): one arm of one contrast.
Its observations are the ``ok`` runs' metric values, one per seed. ``failed`` and ``diverged``
runs are counted per cell, never dropped silently; a cell with fewer ok seeds than expected is
flagged ``complete = False``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CELL_COLUMNS", "metric_frame", "cell_table", "pooled_noise", "cell_key"]

CELL_COLUMNS = ("task", "family", "backbone", "train_set", "eval_set", "shift", "init")
#: Runs of one (task, backbone, train_set, init) are the same trained models scored on each eval set.
RUN_GROUP = ("task", "family", "backbone", "train_set", "init")


def cell_key(task: str, backbone: str, train_set: str, eval_set: str, init: str) -> str:
    """Stable cell key ``task|backbone|train_set|eval_set|init`` (``check`` matches cells by it)."""
    return f"{task}|{backbone}|{train_set}|{eval_set}|{init}"


def metric_frame(table: pd.DataFrame, plan: dict[str, Any]) -> pd.DataFrame:
    """The ok rows with a finite value of their task's plan metric, as column ``y`` (plus ``metric``)."""
    parts = []
    for task, sub in table.groupby("task", sort=True):
        metric = plan["metric"][task]
        if metric not in sub.columns:
            continue
        ok = sub[(sub["status"] == "ok") & np.isfinite(sub[metric].astype(float))].copy()
        ok["y"] = ok[metric].astype(float)
        ok["metric"] = metric
        parts.append(ok)
    if not parts:
        return table.iloc[0:0].assign(y=pd.Series(dtype=float), metric=pd.Series(dtype=object))
    return pd.concat(parts, ignore_index=True)


def _expected_seeds(table: pd.DataFrame, plan: dict[str, Any]) -> pd.Series:
    """Seeds expected per (study, task): the plan's ``seeds`` or every seed seen in that study/task."""
    if plan.get("seeds") is not None:
        return table.groupby(["study", "task"])["seed"].nunique() * 0 + int(plan["seeds"])
    return table.groupby(["study", "task"])["seed"].nunique()


def cell_table(table: pd.DataFrame, plan: dict[str, Any]) -> pd.DataFrame:
    """One row per cell: key, study, params, macs, metric, mean, sd, se, n_ok, n_failed, n_diverged,
    n_missing, n_expected, complete. ``sd``/``se`` are NaN with fewer than two ok seeds."""
    cols = list(CELL_COLUMNS)
    y = metric_frame(table, plan)
    stats = y.groupby(cols, sort=True)["y"].agg(["mean", "std", "count"]).rename(
        columns={"std": "sd", "count": "n_ok"})
    status = table.groupby(cols + ["status"], sort=True).size().unstack("status", fill_value=0)
    for s in ("failed", "diverged"):
        if s not in status.columns:
            status[s] = 0
    g = table.groupby(cols, sort=True)
    meta = g[["params", "macs"]].median()
    meta["seeds_seen"] = g["seed"].nunique()
    if table["study"].nunique() == 1:
        meta["study"] = table["study"].iloc[0]
    else:
        meta["study"] = g["study"].agg(lambda v: "+".join(sorted(set(v))))
    expected = _expected_seeds(table, plan)
    exp_cell = (
        table[cols + ["study"]].drop_duplicates()
        .join(expected.rename("n_expected"), on=["study", "task"])
        .groupby(cols)["n_expected"].max()
    )
    out = meta.join(stats, how="left").join(status[["failed", "diverged"]], how="left")
    out["n_expected"] = exp_cell
    out = out.rename(columns={"failed": "n_failed", "diverged": "n_diverged"}).reset_index()
    out["n_ok"] = out["n_ok"].fillna(0).astype(int)
    out["n_failed"] = out["n_failed"].fillna(0).astype(int)
    out["n_diverged"] = out["n_diverged"].fillna(0).astype(int)
    out["n_expected"] = out["n_expected"].astype(int)
    out["n_missing"] = (out["n_expected"] - out["seeds_seen"]).clip(lower=0).astype(int)
    out["se"] = out["sd"] / np.sqrt(out["n_ok"].where(out["n_ok"] > 0))
    out["complete"] = out["n_ok"] >= out["n_expected"]
    out["metric"] = out["task"].map(plan["metric"])
    out["params"] = out["params"].round().astype("int64")
    out["macs"] = out["macs"].round().astype("int64")
    out["key"] = (out["task"] + "|" + out["backbone"] + "|" + out["train_set"] + "|" + out["eval_set"] + "|"
                  + out["init"])
    order = ["key", "study", *cols, "params", "macs", "metric", "mean", "se", "sd",
             "n_ok", "n_failed", "n_diverged", "n_missing", "n_expected", "complete"]
    return out[order]


def pooled_noise(y: pd.DataFrame) -> pd.DataFrame:
    """Pooled run-to-run (seed-to-seed) SD per task, from the ok rows ``y`` of :func:`metric_frame`.

    The variance is pooled over every cell of the task: sum of squared deviations from each cell mean
    over the sum of (n - 1). Records of one run on several eval sets are not independent, so the
    degrees of freedom are counted once per run group (task, backbone, train_set, init):
    ``df = sum(n_runs - 1)``. That is the conservative end (it ignores the extra information from
    the other eval sets) and keeps t intervals honest. Returns columns task, sd_pooled, df, n_cells.
    """
    rows = []
    for task, sub in y.groupby("task", sort=True):
        g = sub.groupby(list(CELL_COLUMNS))["y"]
        dev = sub["y"] - g.transform("mean")
        n = g.transform("count")
        ss = float((dev[n >= 2] ** 2).sum())
        df_records = float(((g.count() - 1).clip(lower=0)).sum())
        runs = sub.groupby(list(RUN_GROUP))["run_id"].nunique()
        df = int((runs - 1).clip(lower=0).sum())
        sd = float(np.sqrt(ss / df_records)) if df_records > 0 else float("nan")
        rows.append({"task": task, "sd_pooled": sd, "df": df, "n_cells": int(g.ngroups)})
    return pd.DataFrame(rows, columns=["task", "sd_pooled", "df", "n_cells"])
