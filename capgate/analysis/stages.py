"""Pretraining replicates: the unit of a pretrained arm's noise when its checkpoint is itself a random draw.

A pretraining stage chain trained once per stage seed (the results table's ``stage_seed``) gives each
pretrained cell ``k`` replicates; its fine-tuning seeds are spread over them and share their replicate's
effect. A fine-tuning seed's scratch partner does not share it, so the seeds are not independent
observations of the gain: the analysis unit is the replicate.

- **k >= 2 replicates** (replicate nested in cell): per replicate ``r`` the mean of its seed-paired
  differences ``dbar_r`` (paired: pairing with the scratch arm by fine-tuning seed is kept, the seed's
  shared effect still cancels) or the mean of its runs (unpaired). ``gain = mean_r dbar_r``,
  ``se = sqrt(s2 / k)`` with ``s2`` the variance of the replicate means, which holds both the
  between-stage variance and the fine-tuning variance ``/ m`` (``m`` seeds per replicate), on
  ``k - 1`` df (the df the replicates allow, not the seeds), moderated across the family's replicate
  contrasts like every other variance (:func:`capgate.analysis.noise.squeeze_var`). An unpaired contrast
  adds the scratch arm's ``sd_mod^2 / n`` (Welch-Satterthwaite df).
- **one replicate, or a fixed external checkpoint**: the analysis is the per-seed one, and every verdict
  is *conditional on that checkpoint* (``conditional_on``: its ``init_source``, a stage id or a
  checkpoint file with its sha256): it says what this checkpoint does, not what pretraining does.

Variance components per contrast (one-way random ANOVA of the unit values on replicates, balanced
approximation): ``within`` = pooled within-replicate variance (df ``n - k``), ``stage`` =
``max(0, var(replicate means) - within / m)``; ``stage_share = stage / (stage + within)``. Seeds needed:
a replicate contrast needs more *pretraining replicates* (``more_of = pretraining_replicates``) when its
between-stage part ``stage / k`` is at least its fine-tuning part ``within / (k m)``, else more
fine-tuning seeds; ``stages_needed`` is the power analysis of gains.py on the replicate unit
(replicates of ``m`` seeds each). With one seed per replicate (the demo's design) ``within`` has no df:
``stage_share`` is NaN (not identifiable; the report says so) and ``more_of`` is pretraining replicates,
since a new replicate with its own seed lowers both parts of the variance and a seed on an old one only
the fine-tuning part.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from capgate.analysis.cells import SITE_COLUMNS
from capgate.analysis.noise import noise_strata, squeeze_var

__all__ = ["replicate_stats", "checkpoint_names", "moderate_replicates", "replicate_unit", "stage_columns", "more_of",
           "MORE_OF", "stages_text", "rerun_se"]

#: What would decide an open contrast with replicates: more of which.
MORE_OF = ("fine_tuning_seeds", "pretraining_replicates")


def _per_seed(y: pd.DataFrame) -> pd.DataFrame:
    site = list(SITE_COLUMNS)
    return y.groupby([*site, "init", "seed"], sort=False).agg(y=("y", "mean"), stage_seed=("stage_seed", "first")
                                                               ).reset_index()


def replicate_stats(y: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per (site, init != baseline) with two or more stage replicates among its ok runs: ``n_stages``,
    the unit values' replicate means (``rep_mean``, ``rep_var``) and components, paired and unpaired.

    Columns: the site columns, init, n_stages, m_stage (mean runs per replicate), and for ``p`` in
    (``paired``, ``unpaired``): ``{p}_mean``, ``{p}_var`` (variance of the replicate means),
    ``{p}_within`` (pooled within-replicate variance), ``{p}_n`` (units used)."""
    site = list(SITE_COLUMNS)
    cols = [*site, "init", "n_stages", "m_stage"] + [f"{p}_{c}" for p in ("paired", "unpaired")
                                                     for c in ("mean", "var", "within", "n")]
    if "stage_seed" not in y.columns or not y["stage_seed"].notna().any():
        return pd.DataFrame(columns=cols)
    per = _per_seed(y)
    b = per[per["init"] == baseline].drop(columns=["init", "stage_seed"]).rename(columns={"y": "y_b"})
    a = per[(per["init"] != baseline) & per["stage_seed"].notna()]
    k = a.groupby([*site, "init"])["stage_seed"].nunique()
    a = a.join(k.rename("k"), on=[*site, "init"])
    a = a[a["k"] >= 2]
    if not len(a):
        return pd.DataFrame(columns=cols)
    paired = a.merge(b, on=[*site, "seed"], how="inner").assign(u=lambda f: f["y"] - f["y_b"])
    rows = []
    by_key = {key: g for key, g in paired.groupby([*site, "init"], sort=False)}
    for key, g in a.groupby([*site, "init"], sort=False):
        row = dict(zip([*site, "init"], key))
        row["n_stages"] = int(g["stage_seed"].nunique())
        row["m_stage"] = float(len(g) / row["n_stages"])
        pg = by_key.get(key, paired.iloc[0:0])
        for name, frame, col in (("paired", pg, "u"), ("unpaired", g, "y")):
            row.update(_components(frame, col, name))
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _components(frame: pd.DataFrame, col: str, name: str) -> dict[str, float]:
    rep = frame.groupby("stage_seed")[col]
    means, sizes = rep.mean(), rep.size()
    k, n = len(means), int(sizes.sum())
    dev = frame[col] - frame.groupby("stage_seed")[col].transform("mean")
    within = float((dev ** 2).sum() / (n - k)) if n > k else np.nan
    return {f"{name}_mean": float(means.mean()) if k else np.nan,
            f"{name}_var": float(means.var(ddof=1)) if k >= 2 else np.nan,
            f"{name}_within": within, f"{name}_n": float(n)}


def checkpoint_names(table: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per (site, init != baseline): ``n_stages`` (distinct stage seeds among its ok runs; 0 for an
    external checkpoint or a table without the column) and ``checkpoint``: its ``init_source`` values (a
    stage id, or a checkpoint file with its sha256), what a verdict on one replicate is conditional on."""
    site = list(SITE_COLUMNS)
    t = table[(table["status"] == "ok") & (table["init"] != baseline)]
    src = t["init_source"] if "init_source" in t.columns else pd.Series(np.nan, index=t.index)
    t = t.assign(_src=src.where(src.notna() & (src.astype(str) != "none"), None))
    stage = t["stage_seed"] if "stage_seed" in t.columns else pd.Series(np.nan, index=t.index)
    t = t.assign(_stage=stage)
    out = t.groupby([*site, "init"], sort=False)["_stage"].nunique().rename("n_stages").to_frame()
    srcs: dict[tuple, set[str]] = {}
    for row in t[[*site, "init", "_src"]].dropna(subset=["_src"]).drop_duplicates().itertuples(index=False):
        srcs.setdefault(tuple(row[:-1]), set()).add(str(row[-1]))
    out["checkpoint"] = [", ".join(sorted(srcs[k])) if k in srcs else None for k in out.index]
    return out.reset_index()


def moderate_replicates(rep: pd.DataFrame, m: pd.DataFrame, paired: np.ndarray) -> pd.DataFrame:
    """The replicate contrasts among the rows of ``m`` (one row per contrast): ``rep``'s columns plus
    ``index`` (the row of ``m``), ``k`` (replicates), ``unit_mean`` (mean of the replicate means, paired or
    unpaired as the contrast is), ``unit_var`` (their variance), and ``s2_mod``/``df_rep``: that variance
    moderated across the replicate contrasts of each (study, task) on ``k - 1`` df."""
    site = list(SITE_COLUMNS)
    j = m[[*site, "init"]].reset_index().merge(rep, on=[*site, "init"], how="inner")
    p = paired[j["index"].to_numpy()] if len(j) else np.zeros(0, bool)
    j["paired_unit"] = p
    j["k"] = j["n_stages"].astype(float)
    j["unit_mean"] = np.where(p, j["paired_mean"], j["unpaired_mean"]).astype(float)
    j["unit_var"] = np.where(p, j["paired_var"], j["unpaired_var"]).astype(float)
    j["s2_mod"], j["df_rep"] = np.nan, np.nan
    fam = (j["study"] + "|" + j["task"]).to_numpy()
    for lab in pd.unique(fam):
        sel = np.flatnonzero(fam == lab)
        var, df = j["unit_var"].to_numpy()[sel], j["k"].to_numpy()[sel] - 1
        mod = squeeze_var(var, df, noise_strata(j["eval_set"].to_numpy()[sel], j["init"].to_numpy()[sel], var, df))
        j.loc[sel, "s2_mod"], j.loc[sel, "df_rep"] = mod.s2_post, mod.df_post
    return j


def replicate_unit(j: pd.DataFrame, mean_b: np.ndarray, vb: np.ndarray, df_b: np.ndarray,
                   arrays: dict[str, np.ndarray]) -> None:
    """Overwrite ``arrays`` (gain, se, df, sd_raw, sd_mod: one entry per contrast) at the replicate contrasts
    ``j`` (:func:`moderate_replicates`): the replicate is the unit; an unpaired contrast adds the baseline
    arm's variance of its mean ``vb`` (Welch-Satterthwaite df with the baseline's ``df_b``)."""
    if not len(j):
        return
    i, p = j["index"].to_numpy(), j["paired_unit"].to_numpy(dtype=bool)
    va = j["s2_mod"].to_numpy(dtype=float) / j["k"].to_numpy(dtype=float)
    df_a = j["df_rep"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        welch = (va + vb[i]) ** 2 / (va ** 2 / df_a + vb[i] ** 2 / df_b[i])
    arrays["gain"][i] = np.where(p, j["unit_mean"], j["unit_mean"] - mean_b[i])
    arrays["se"][i] = np.sqrt(np.where(p, va, va + vb[i]))
    arrays["df"][i] = np.where(p, df_a, welch)
    arrays["sd_raw"][i] = np.sqrt(j["unit_var"].to_numpy(dtype=float))
    arrays["sd_mod"][i] = np.sqrt(j["s2_mod"].to_numpy(dtype=float))


def stage_columns(n: int, j: pd.DataFrame, names: pd.DataFrame, m: pd.DataFrame) -> pd.DataFrame:
    """Per contrast (``n`` rows of ``m``): n_stages, stage_share, more_of (replicate contrasts), conditional_on
    (the checkpoint a contrast on fewer than two replicates is conditional on; None otherwise)."""
    site = list(SITE_COLUMNS)
    nm = m[[*site, "init"]].merge(names, on=[*site, "init"], how="left")
    out = pd.DataFrame({"n_stages": nm["n_stages"].fillna(0).astype(int).to_numpy(), "stage_share": np.nan,
                        "more_of": None, "conditional_on": None}, index=range(n))
    cond = out["n_stages"] < 2
    label = nm["checkpoint"].where(nm["checkpoint"].notna(), "the " + nm["init"].astype(str)
                                   + " checkpoint (source not recorded)")
    out.loc[cond, "conditional_on"] = label[cond].to_numpy()
    for r in j.itertuples(index=False):
        share, more = more_of(r, bool(r.paired_unit))
        out.loc[r.index, ["stage_share", "more_of"]] = [share, more]
        out.loc[r.index, "n_stages"] = int(r.n_stages)
    return out


def rerun_se(cells: pd.DataFrame, y: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """``cells`` with ``n_stages`` (pretraining replicates among a pretrained cell's ok runs; null for the
    baseline init) and ``se_rerun``: the SE of the cell's mean under a rerun that draws its pretraining
    stages again (what ``capgate check`` allows for a pretrained cell).

    With ``k >= 2`` replicates the mean of the cell is the mean of its ``k`` replicate means (balanced),
    whose variance holds the between-stage variance and the fine-tuning variance over the replicate's
    seeds: ``se_rerun = sqrt(s2 / k)`` with ``s2`` the variance of the replicate means on ``k - 1`` df,
    moderated across the pretrained cells of each (study, task) like every other variance, and never below
    the cell's own ``se``. With one replicate (or a fixed checkpoint) it is null: the check then assumes one
    redraw (:mod:`capgate.check.noise`)."""
    out = cells.copy()
    out["n_stages"], out["se_rerun"] = np.nan, np.nan
    rep = replicate_stats(y, baseline)
    names = checkpoint_names(y, baseline) if len(y) else None
    site = list(SITE_COLUMNS)
    idx = out.reset_index()[["index", *site, "init"]]
    if names is not None and len(names):
        j = idx.merge(names[[*site, "init", "n_stages"]], on=[*site, "init"], how="inner")
        out.loc[j["index"].to_numpy(), "n_stages"] = j["n_stages"].to_numpy(dtype=float)
    if not len(rep):
        return out
    j = idx.merge(rep[[*site, "init", "n_stages", "unpaired_var"]], on=[*site, "init"], how="inner")
    j = j[np.isfinite(j["unpaired_var"].to_numpy(dtype=float))]
    fam = (j["study"].astype(str) + "|" + j["task"].astype(str)).to_numpy()
    for lab in pd.unique(fam):
        sel = j[fam == lab]
        var, df = sel["unpaired_var"].to_numpy(dtype=float), sel["n_stages"].to_numpy(dtype=float) - 1
        mod = squeeze_var(var, df, noise_strata(sel["eval_set"].to_numpy(), sel["init"].to_numpy(), var, df))
        rows = sel["index"].to_numpy()
        se = out.loc[rows, "se"].to_numpy(dtype=float)
        rerun = np.sqrt(mod.s2_post / sel["n_stages"].to_numpy(dtype=float))
        out.loc[rows, "se_rerun"] = np.where(np.isfinite(se), np.fmax(rerun, se), rerun)
    return out


def more_of(row: Any, paired: bool) -> tuple[float, str]:
    """(stage_share, what more of would decide it) of one replicate row of :func:`replicate_stats`."""
    p = "paired" if paired else "unpaired"
    var, within, k = getattr(row, f"{p}_var"), getattr(row, f"{p}_within"), row.n_stages
    m = max(getattr(row, f"{p}_n") / k, 1.0)
    if not (np.isfinite(var) and np.isfinite(within)):
        return np.nan, MORE_OF[1]
    stage = max(0.0, var - within / m)
    share = stage / (stage + within) if stage + within > 0 else np.nan
    return share, MORE_OF[1] if stage >= within / m else MORE_OF[0]


def stages_text(gains: pd.DataFrame) -> str:
    """The methods sentence on pretraining replicates: which contrasts had them (the replicate the unit) and
    which verdicts are conditional on one checkpoint (named)."""
    rep = gains[gains["n_stages"] >= 2]
    one = sorted({str(c) for c in gains["conditional_on"].dropna()})
    parts = []
    if len(rep):
        parts.append(f"{len(rep)} contrasts have {int(rep['n_stages'].min())}-{int(rep['n_stages'].max())} pretraining "
                     "replicates (stage seeds): the replicate is the unit (mean of its seed-paired differences), so "
                     "a contrast's noise includes the variance between pretraining runs, on replicates - 1 df "
                     "(moderated), and stage_share in gains.csv is that variance's share of one seed's")
    if one:
        shown = ", ".join(one[:4]) + (f" and {len(one) - 4} more" if len(one) > 4 else "")
        parts.append(f"{int(gains['conditional_on'].notna().sum())} verdicts rest on one pretraining run (or a fixed "
                     f"checkpoint) and are conditional on that checkpoint ({shown}): they say what this checkpoint "
                     "does, not what pretraining does; its variance between pretraining runs is not sampled")
    return "; ".join(parts)
