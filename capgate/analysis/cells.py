"""Cells of a results table: per-cell means, seed-to-seed SDs, completeness, and pooled noise.

A *cell* is (study, task, family, backbone, train_set, eval_set, shift, init): one arm of one
contrast. Its observations are the ``ok`` runs' metric values, one per seed (the unit is the run: a
trained model). Each cell's run-to-run variance is stabilised across the cells of its (study, task)
by the moderated variance of :mod:`capgate.analysis.noise` (``sd_mod``, ``df_mod``; ``se`` is
``sd_mod / sqrt(n_ok)``, the standard error ``capgate check`` builds its tolerance from). ``failed`` and ``diverged``
runs are counted per cell, never dropped silently; a cell with fewer ok seeds than expected is
flagged ``complete = False``. Expected: the plan's ``seeds``, else every seed seen in the (study, task);
under a plan's ``sequential`` design each run group's own look (a group grown to 5 seeds where verdicts
were open does not make its siblings, stopped at 3, incomplete).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from capgate.analysis.noise import noise_strata, squeeze_var
from capgate.analysis.plan import Plan, Sequential

__all__ = ["CELL_COLUMNS", "SITE_COLUMNS", "FAMILY", "RUN_GROUP", "metric_frame", "cell_table", "pooled_noise",
           "cell_key", "outlier_runs", "OUTLIER_RUN_SDS", "ISOLATE_RUN_SDS", "ISOLATE_RUN_MEAN_SDS", "ISOLATE_MIN_RUNS",
           "ISOLATE_PASSES", "SUSPECT_RUN_SDS", "SUSPECT_RUN_MEAN_SDS", "analysis_frame", "suspect_sites",
           "without_runs"]

CELL_COLUMNS = ("study", "task", "family", "backbone", "train_set", "eval_set", "shift", "init")
#: A contrast's site: a cell without its init (both arms of a contrast share it).
SITE_COLUMNS = tuple(c for c in CELL_COLUMNS if c != "init")
#: The correction family and the pool of the variance prior.
FAMILY = ("study", "task")
#: Runs of one (study, task, backbone, train_set, init) are the same trained models scored on each eval set.
RUN_GROUP = ("study", "task", "family", "backbone", "train_set", "init")


def cell_key(study: str, task: str, backbone: str, train_set: str, eval_set: str, init: str) -> str:
    """Stable cell key ``study|task|backbone|train_set|eval_set|init`` (``check`` matches cells by it)."""
    return f"{study}|{task}|{backbone}|{train_set}|{eval_set}|{init}"


def metric_frame(table: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The ok rows with a finite value of their task's plan metric, as column ``y`` (plus ``metric``)."""
    parts = []
    for task, sub in table.groupby("task", sort=True):
        metric = plan.metric[task]
        if metric not in sub.columns:
            continue
        ok = sub[(sub["status"] == "ok") & np.isfinite(sub[metric].astype(float))].copy()
        ok["y"] = ok[metric].astype(float)
        ok["metric"] = metric
        parts.append(ok)
    if not parts:
        return table.iloc[0:0].assign(y=pd.Series(dtype=float), metric=pd.Series(dtype=object))
    return pd.concat(parts, ignore_index=True)


def analysis_frame(table: pd.DataFrame, plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(y, cells, outliers)``: the rows the verdicts rest on, their :func:`cell_table`, and the runs
    :func:`outlier_runs` flags among the ok rows of :func:`metric_frame` (listed by the report), and under
    ``isolate`` every record of a run it kept out.

    Under the plan's ``outlier_runs: keep`` (the default) every ok row counts. Under ``isolate`` a run
    more than :data:`ISOLATE_RUN_SDS` eval-set SDs below the median of its siblings on any eval set, or
    more than :data:`ISOLATE_RUN_MEAN_SDS` on average over its eval sets (a collapse moves every eval set
    of its run), in cells of :data:`ISOLATE_MIN_RUNS` or more ok runs (so the siblings' median survives a
    second collapsed run), and in excess of the runs as far above their siblings (:func:`_isolated`),
    is kept out of ``y`` and ``cells`` on every eval set, like a diverged run (its
    cell's ``n_ok`` counts it out); the cells are then rebuilt and judged again, up to
    :data:`ISOLATE_PASSES` times. The trade-off is measured by ``benchmarks/calibration.py`` (README)."""
    y = metric_frame(table, plan)
    cells = cell_table(table, plan, y)
    listed = [outlier_runs(y, cells)]
    for _ in range(ISOLATE_PASSES if plan.outlier_runs == "isolate" else 0):
        judged = _isolated(y, cells)
        if not len(judged):
            break
        listed.append(judged)
        y = y[~y["run_id"].isin(set(judged["run_id"]))].reset_index(drop=True)
        cells = cell_table(table, plan, y)
    if len(listed) == 1:
        return y, cells, listed[0]
    odd = pd.concat(listed, ignore_index=True).drop_duplicates(["key", "run_id"])
    return y, cells, odd.sort_values("key", kind="stable").reset_index(drop=True)


def _expected_seeds(table: pd.DataFrame, plan: Plan) -> pd.Series:
    """Seeds expected per (study, task): the plan's ``seeds`` or every seed seen in that study/task."""
    if plan.seeds is not None:
        return table.groupby(["study", "task"])["seed"].nunique() * 0 + int(plan.seeds)
    return table.groupby(["study", "task"])["seed"].nunique()


def _expected_by_look(table: pd.DataFrame, seq: Sequential) -> pd.Series:
    """Seeds expected per run group under a group-sequential design: the first look of the schedule at
    or above the seeds seen in the group (any status; at least the first look, which every group starts
    with), or those seeds past the last look. A group that stopped at a look is complete there; one seen
    between two looks (a round cut short, or a run lost) expects the next look's seeds."""
    seen = table.groupby(list(RUN_GROUP), sort=True)["seed"].nunique()
    looks = sorted(int(k) for k in seq.schedule)
    return seen.map(lambda k: next((p for p in looks if p >= max(k, looks[0])), int(k))).rename("n_expected")


def _moderate(out: pd.DataFrame) -> pd.DataFrame:
    """Add sd_mod, df_mod, outlier: each cell's variance moderated within its (study, task), the prior
    located per (eval set, init) (:func:`capgate.analysis.noise.noise_strata`)."""
    out["sd_mod"] = np.nan
    out["df_mod"] = np.nan
    out["outlier"] = False
    for _, idx in out.groupby(list(FAMILY), sort=True).groups.items():
        sub = out.loc[idx]
        df = (sub["n_ok"] - 1).clip(lower=0).to_numpy(dtype=float)
        s2 = (sub["sd"] ** 2).to_numpy(dtype=float)
        mod = squeeze_var(s2, df, noise_strata(sub["eval_set"].to_numpy(), sub["init"].to_numpy(), s2, df))
        out.loc[idx, "sd_mod"] = np.sqrt(mod.s2_post)
        out.loc[idx, "df_mod"] = mod.df_post
        out.loc[idx, "outlier"] = mod.outlier
    return out


def cell_table(table: pd.DataFrame, plan: Plan, y: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cell: key, the cell columns, params, macs, metric, mean, se, sd, sd_mod, df_mod,
    outlier, n_ok, n_failed, n_diverged, n_missing, n_expected, complete.

    ``sd`` is the cell's own seed-to-seed SD (NaN with fewer than two ok seeds); ``sd_mod`` the
    moderated SD on ``df_mod`` degrees of freedom; ``se = sd_mod / sqrt(n_ok)``. ``macs`` is NaN
    where the table does not record it (shown as unknown). ``y``: ``metric_frame(table, plan)`` when the
    caller already has it (built here otherwise).
    """
    cols = list(CELL_COLUMNS)
    y = metric_frame(table, plan) if y is None else y
    # one value per run: a run scored once per eval set, so a cell holds one record per run
    stats = _run_stats(y)
    status = table.groupby(cols + ["status"], sort=True).size().unstack("status", fill_value=0)
    for s in ("failed", "diverged"):
        if s not in status.columns:
            status[s] = 0
    g = table.groupby(cols, sort=True)
    meta = g[["params"]].median()
    meta["macs"] = g["macs"].median() if "macs" in table.columns else np.nan
    meta["seeds_seen"] = g["seed"].nunique()
    seq = plan.sequential
    if seq and plan.seeds is None:  # runs grown where verdicts were open: each group its own look
        exp_cell = (table[cols].drop_duplicates().join(_expected_by_look(table, seq), on=list(RUN_GROUP))
                    .groupby(cols)["n_expected"].max())
    else:
        exp_cell = (
            table[cols].drop_duplicates()
            .join(_expected_seeds(table, plan).rename("n_expected"), on=["study", "task"])
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
    out = _stabilised(out)
    out["metric"] = out["task"].map(plan.metric)
    out["params"] = out["params"].round()  # float: a failed-only cell may have no params
    out["macs"] = pd.to_numeric(out["macs"], errors="coerce").round()
    out["key"] = [cell_key(*k) for k in zip(out["study"], out["task"], out["backbone"], out["train_set"],
                                            out["eval_set"], out["init"])]
    order = ["key", *cols, "params", "macs", "metric", "mean", "se", "sd", "sd_mod", "df_mod", "outlier",
             "n_ok", "n_failed", "n_diverged", "n_missing", "n_expected", "complete"]
    return out[order]


def without_runs(y: pd.DataFrame, cells: pd.DataFrame, run_ids: set) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(y, cells)`` with the runs ``run_ids`` left out of ``y`` and every cell's mean, SD and ok count
    recounted (the moderated variances refitted), as :func:`cell_table` would build them on the rows
    left; the failed, diverged, missing and expected counts stay."""
    y = y[~y["run_id"].isin(run_ids)].reset_index(drop=True)
    out = cells.drop(columns=["mean", "sd", "n_ok"]).join(_run_stats(y), on=list(CELL_COLUMNS))
    out["n_ok"] = out["n_ok"].fillna(0).astype(int)
    return y, _stabilised(out)[list(cells.columns)]


def _run_stats(y: pd.DataFrame) -> pd.DataFrame:
    """Per cell of the ok rows ``y``: mean, sd (seed to seed) and n_ok (one value per run)."""
    return y.groupby(list(CELL_COLUMNS), sort=True)["y"].agg(["mean", "std", "count"]).rename(
        columns={"std": "sd", "count": "n_ok"})


def _stabilised(out: pd.DataFrame) -> pd.DataFrame:
    """``out`` with the moderated variances (:func:`_moderate`), ``se`` and ``complete`` from its counts."""
    out = _moderate(out)
    out["se"] = out["sd_mod"] / np.sqrt(out["n_ok"].where(out["n_ok"] > 0))
    out["complete"] = out["n_ok"] >= out["n_expected"]
    return out


def pooled_noise(y: pd.DataFrame) -> pd.DataFrame:
    """Pooled run-to-run SD per (study, task), from the ok rows ``y`` of :func:`metric_frame`.

    The variance is pooled over every cell: sum of squared deviations from each cell mean over the
    sum of (n - 1). Only the ``pooled_sd`` margin rule uses it (the verdicts use per-cell noise).
    Returns columns study, task, sd_pooled, df, n_cells.
    """
    rows = []
    for (study, task), sub in y.groupby(list(FAMILY), sort=True):
        g = sub.groupby(list(CELL_COLUMNS))["y"]
        dev = sub["y"] - g.transform("mean")
        n = g.transform("count")
        ss = float((dev[n >= 2] ** 2).sum())
        df = float(((g.count() - 1).clip(lower=0)).sum())
        sd = float(np.sqrt(ss / df)) if df > 0 else float("nan")
        rows.append({"study": study, "task": task, "sd_pooled": sd, "df": df, "n_cells": int(g.ngroups)})
    return pd.DataFrame(rows, columns=["study", "task", "sd_pooled", "df", "n_cells"])


#: A run this many eval-set SDs below the median of its siblings is flagged as an outlier run.
OUTLIER_RUN_SDS = 6.0
#: Under ``outlier_runs: isolate``: a run this many eval-set SDs below its siblings' median, in a cell of
#: at least ISOLATE_MIN_RUNS ok runs, is kept out of the verdicts; judged again up to ISOLATE_PASSES times.
ISOLATE_RUN_SDS = 4.0
#: ... or this many on average over its eval sets (the run's mean standardized drop).
ISOLATE_RUN_MEAN_SDS = 3.0
ISOLATE_MIN_RUNS = 4
ISOLATE_PASSES = 3
#: Under ``isolate``: a run kept in but more than this many eval-set SDs below its siblings' median (on any eval
#: set) has every contrast of its site judged both with and without it (:func:`suspect_sites`).
SUSPECT_RUN_SDS = 2.5
#: ... or this many on average over its eval sets.
SUSPECT_RUN_MEAN_SDS = 2.0


def outlier_runs(y: pd.DataFrame, cells: pd.DataFrame, k: float = OUTLIER_RUN_SDS, min_runs: int = 3) -> pd.DataFrame:
    """Runs far below their siblings (a collapsed training run marked ok): ``y < median(other seeds) -
    k * scale`` where ``scale`` is the median stabilised SD of the cells of that (study, task, eval set),
    robust to the run itself. Only cells with ``min_runs`` or more ok runs are judged. They stay in the
    statistics unless the plan isolates them (:func:`analysis_frame`) and are listed by the report's
    completeness section.

    Returns key, run_id, seed, value, siblings_median, scale, drop (value - siblings median).
    """
    cols = ["key", "run_id", "seed", "value", "siblings_median", "scale", "drop"]
    if not len(y) or not len(cells):
        return pd.DataFrame(columns=cols)
    scale = cells.groupby(["study", "task", "eval_set"])["sd_mod"].median().rename("scale")
    keyed = y[[*CELL_COLUMNS, "run_id", "seed", "y"]].merge(cells[[*CELL_COLUMNS, "key"]], on=list(CELL_COLUMNS),
                                                          how="left")
    keyed = keyed.join(scale, on=["study", "task", "eval_set"])
    keyed = keyed[keyed["key"].notna()].reset_index(drop=True)
    # Leave-one-out median of every run's siblings, all cells at once: sort each cell's values, then the
    # median of the n - 1 others is read off the sorted values at the middle positions, skipping the run's own.
    code = pd.factorize(keyed["key"], sort=True)[0]
    vals = keyed["y"].to_numpy(dtype=float)
    order = np.lexsort((vals, code))
    sv, sc_code = vals[order], code[order]
    size = np.bincount(code)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    n = size[sc_code]
    j = np.arange(len(order)) - start[sc_code]  # the run's position within its sorted cell
    rest = n - 1
    r1 = np.where(rest % 2 == 1, rest // 2, rest // 2 - 1)
    r2 = rest // 2
    base = start[sc_code]
    lo = sv[np.clip(base + r1 + (r1 >= j), 0, len(sv) - 1)]
    hi = sv[np.clip(base + r2 + (r2 >= j), 0, len(sv) - 1)]
    med = np.empty(len(vals))
    med[order] = np.where(r1 == r2, lo, (lo + hi) / 2)
    sc = keyed["scale"].to_numpy(dtype=float)
    judged = (size[code] >= min_runs) & np.isfinite(sc) & (sc > 0)
    with np.errstate(invalid="ignore"):
        hit = judged & (vals < med - k * sc)
    if not hit.any():
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame({"key": keyed["key"].to_numpy()[hit], "run_id": keyed["run_id"].to_numpy()[hit],
                        "seed": keyed["seed"].to_numpy()[hit].astype(int), "value": vals[hit],
                        "siblings_median": med[hit], "scale": sc[hit], "drop": vals[hit] - med[hit]})
    # rows in the order of the per-cell loop this replaces: by key, then table order within a cell
    return out.sort_values("key", kind="stable").reset_index(drop=True)[cols]


def _drops(y: pd.DataFrame, cells: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Every record of the cells isolation judges (:data:`ISOLATE_MIN_RUNS`+ ok runs), as
    :func:`outlier_runs` lists them, and its drop below its siblings' median in eval-set SDs."""
    every = outlier_runs(y, cells, -np.inf, ISOLATE_MIN_RUNS)
    return every, every["drop"] / every["scale"]


def _isolated(y: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """The records by which :func:`analysis_frame` keeps runs out this pass (``outlier_runs`` columns): a
    run's records more than :data:`ISOLATE_RUN_SDS` scales below its siblings' median, and every record of
    a run whose mean standardized drop is more than :data:`ISOLATE_RUN_MEAN_SDS` below, in as many runs
    per (study, task) as such low runs outnumber their mirror image: runs as far *above* their siblings.

    A collapse only goes down; noise with heavy tails (t(3) run effects) goes both ways. The runs past the
    thresholds on the high side count the low ones that symmetric noise alone would put there, and only the
    excess is kept out, the deepest runs first: at every depth past the thresholds (a run's depth: its drop
    over the threshold it passes furthest), the low runs at least that deep against the high runs at least
    that high, and the largest such excess. A collapse far deeper than any run lies high is kept out even
    where noise puts as many runs just past the thresholds on either side. Trimming the low tail of
    symmetric noise biases every cell it touches and tightens the prior (README, Calibration). A low run the
    mirror keeps in is a suspect (:func:`suspect_sites`)."""
    every, z = _drops(y, cells)
    by_run = z.groupby(every["run_id"])
    mean, lo, hi = by_run.transform("mean"), by_run.transform("min"), by_run.transform("max")
    # how far past the thresholds a run lies, below and above (>= 1: past one of them)
    depth = np.maximum(-lo / ISOLATE_RUN_SDS, -mean / ISOLATE_RUN_MEAN_SDS)
    height = np.maximum(hi / ISOLATE_RUN_SDS, mean / ISOLATE_RUN_MEAN_SDS)
    runs = pd.DataFrame({"key": every["key"], "run_id": every["run_id"], "depth": depth,
                         "height": height}).drop_duplicates("run_id")
    runs = runs.merge(cells[["key", *FAMILY]], on="key", how="left")
    keep = set()
    for _, fam in runs.groupby(list(FAMILY), sort=False):
        low = np.sort(fam["depth"].to_numpy()[fam["depth"].to_numpy() >= 1])[::-1]
        high = np.sort(fam["height"].to_numpy()[fam["height"].to_numpy() >= 1])
        # at the depth of the k-th lowest run, k low runs against the high runs at least as far up
        excess = max((k + 1 - (len(high) - np.searchsorted(high, d)) for k, d in enumerate(low)), default=0)
        if excess > 0:
            keep |= set(fam.nlargest(excess, "depth")["run_id"])
    low_rec = (z < -ISOLATE_RUN_SDS) | (mean < -ISOLATE_RUN_MEAN_SDS)
    return every[low_rec & every["run_id"].isin(keep)].reset_index(drop=True)


def suspect_sites(y: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Under ``outlier_runs: isolate``, the sites (``SITE_COLUMNS`` less ``eval_set`` and ``shift``: one
    backbone and train set of a study) holding a run the isolation kept in but that lies more than
    :data:`SUSPECT_RUN_SDS` eval-set SDs below its siblings on some eval set, or more than
    :data:`SUSPECT_RUN_MEAN_SDS` on average over its eval sets (cells of :data:`ISOLATE_MIN_RUNS`+ runs):
    maybe a collapse just short of the isolation threshold, or one the high-side mirror of :func:`_isolated`
    kept in, maybe noise. Every contrast of such a site is judged both with and without those runs
    (:mod:`capgate.analysis.gains`): with them in, a missed collapse would make claims; with them out,
    trimmed noise would. A claim both analyses make keeps its level whichever the run was (without this,
    0.085 of null studies made a false claim when one run in 20 collapsed; README, Calibration).
    Columns: the site's, ``run_id`` (one suspect run per row)."""
    cols = ["study", "task", "family", "backbone", "train_set"]
    every, z = _drops(y, cells)
    by_run = z.groupby(every["run_id"])
    low = (by_run.min() < -SUSPECT_RUN_SDS) | (by_run.mean() < -SUSPECT_RUN_MEAN_SDS)
    if not low.any():
        return pd.DataFrame(columns=[*cols, "run_id"])
    hit = y[y["run_id"].isin(set(low[low].index))]
    return hit[[*cols, "run_id"]].drop_duplicates().reset_index(drop=True)
