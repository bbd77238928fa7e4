"""Gains of each pretrained initialization over the baseline, per cell: per-cell noise, paired seeds,
a fixed margin, the correction family of each (study, task), verdicts and seeds needed.

Per site (study, task, family, backbone, train_set, eval_set, shift) and init ``a`` vs baseline ``b``:

- **paired** (plan ``pairing: auto`` when the arms share at least two seeds, or ``paired``): the same
  seed fixes data order and augmentation for every init, so the unit is the seed's difference
  ``d_s = y_a,s - y_b,s``; a run without its partner drops only that pair (``n_dropped``), unless it
  joins as a partially overlapping sample (below).
  ``gain = mean(d)``, ``se = sqrt(s2_mod / n_pairs)`` with ``s2_mod`` the variance of the differences
  moderated across the paired contrasts of the (study, task) (:func:`capgate.analysis.noise.squeeze_var`,
  prior located per eval set and init, :func:`capgate.analysis.noise.noise_strata`), on
  ``df = d0 + n_pairs - 1`` (``d0`` the contrast's own prior df: limma's robust fit shrinks it toward 0
  for a contrast far noisier than its eval set and init, which then keeps most of its own variance);
  runs left without a partner join as partially overlapping samples where that estimate has the smaller
  variance (:func:`_partial_overlap`; ``n_dropped`` 0);
- **unpaired**: ``gain = mean_a - mean_b``, ``se = sqrt(sd_mod_a^2/n_a + sd_mod_b^2/n_b)`` with each arm's
  moderated variance, Welch-Satterthwaite df from the arms' moderated df;
- under the plan's ``outlier_runs: isolate``, every contrast of a site that still holds a run low among
  its siblings (:func:`capgate.analysis.cells.suspect_sites`: a collapse the isolation missed, or noise) is
  judged both with its suspect runs and without them, and claims only what both analyses claim
  (:func:`capgate.analysis.suspects.both_ways`, an intersection-union test: its level holds if either
  analysis is valid);
- the interval ``gain +- t(1 - alpha/2, df) se`` (marginal, per cell) and the two-sided p; the TOST
  p ``max(P(T >= (gain + m)/se), P(T <= (gain - m)/se))`` for margin ``m``;
- both p-values are adjusted (Holm by default) within the **correction family**: all contrasts of one
  (study, task), every pretrained init against the baseline in every cell. A study's verdicts never
  change because another study or task is in the same report.

Verdict rule (``verdicts.VERDICT_RULE``): ``helps`` when the adjusted p < alpha (the gain is significantly
different from 0 after correction) and the estimate exceeds ``+m``; ``hurts`` the mirror image;
``within_noise`` when the adjusted TOST p < alpha (the gain is shown to lie inside ``(-m, +m)``);
otherwise ``inconclusive``. The margin is fixed before looking at results (default 1 pp).

Seeds needed (inconclusive contrasts): ``seeds_needed`` follows the one planning rule of
:mod:`capgate.analysis.planning` (:data:`~capgate.analysis.planning.SEEDS_RULE`: the seeds at which the
contrast is decided with probability ``power``, its current estimate taken as the truth), the rule
``capgate next-seeds`` adds seeds by. The design figures ``seeds_needed_within`` (a true gain of 0 shown
``within_noise``) and ``seeds_needed_helps`` (twice the margin shown ``helps``) are in gains.csv too.

Group-sequential design (plan key ``sequential``: looks after rounds of new seeds, at most ``max_seeds``
per arm): the raw two-sided p and the two TOST one-sided p-values are replaced by Lan-DeMets repeated
p-values at the contrast's current look *before* the Holm adjustment, and the interval by the repeated
confidence interval (:func:`sequential_tests`); the verdict rule is unchanged. A contrast stops at its
first decisive look (:func:`gains_of_table`): the verdict, interval and p-values of the earliest look
at which it was decided stand, whatever later seeds of its groups (grown for a sibling contrast) or
the noise prior refitted on more data say. Without the key every number is the fixed-design one above.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from scipy import stats

from capgate.analysis.cells import (RUN_GROUP, SITE_COLUMNS, analysis_frame, cell_table, pooled_noise,
                                   suspect_sites, without_runs)
from capgate.analysis.noise import noise_strata, squeeze_var
from capgate.analysis.plan import Plan, Sequential, margin_rule, sequential_looks
from capgate.analysis.planning import own_prior_df, power_helps, power_within, seeds_needed, seeds_to_decide
from capgate.analysis.result import GAINS_COLUMNS
from capgate.analysis.sequential import boundaries, repeated_p_value, z_from_t
from capgate.analysis.stages import checkpoint_names, moderate_replicates, replicate_stats, replicate_unit, stage_columns
from capgate.analysis.suspects import at_sites, both_ways
from capgate.analysis.verdicts import adjust_by_family, decide

__all__ = ["compute_gains", "seeds_needed", "power_helps", "power_within", "sequential_tests", "gains_of_table"]



def _one_sided_repeated(z: np.ndarray, fractions: list[float], kind: str) -> np.ndarray:
    """Repeated one-sided p-values for H0 "the effect is <= 0" (large ``z`` rejects): half the two-sided
    repeated p-value on the side of ``z``, the usual one-sided use of a symmetric two-sided design at
    level 2 alpha (its chance of crossing the other boundary first is negligible)."""
    half = np.asarray(repeated_p_value(z, fractions, kind), dtype=float) / 2
    return np.where(np.asarray(z) > 0, half, 1 - half)


def sequential_tests(gain: np.ndarray, se: np.ndarray, df: np.ndarray, margin: np.ndarray, n_arm: np.ndarray,
                     valid: np.ndarray, seq: Sequential, alpha: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(p, p_tost, ci_low, ci_high) of a group-sequential design: repeated p-values and repeated
    confidence intervals at each contrast's current look.

    A contrast with ``n_arm`` seeds per arm has had the looks :func:`sequential_looks` gives (information
    fraction = seeds / the design's max_seeds). Each t statistic is carried to the z scale with its df
    (:func:`z_from_t`) and replaced by its repeated p-value (valid whatever look a study stops at, so Holm
    on them keeps the family-wise error rate); TOST uses the two one-sided repeated p-values; the interval
    is the repeated confidence interval ``gain +- t(1 - a_k / 2, df) se`` with ``a_k`` the nominal level of
    the current look's boundary at ``alpha`` (it covers the true gain at every look at once with
    probability >= 1 - alpha).
    """
    n = len(gain)
    p, p_tost = np.full(n, np.nan), np.full(n, np.nan)
    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    looks = [tuple(sequential_looks(float(k), seq)) if valid[i] else () for i, k in enumerate(n_arm)]
    for fr in set(looks):
        if not fr:
            continue
        idx = np.flatnonzero([lk == fr for lk in looks])
        g, s, d, mg = gain[idx], se[idx], df[idx], margin[idx]
        zf = z_from_t
        p[idx] = repeated_p_value(zf(g / s, d), list(fr), seq.spending)
        ok_m = np.isfinite(mg) & (mg > 0)
        lower = _one_sided_repeated(zf((g + mg) / s, d), list(fr), seq.spending)   # H0: gain <= -m
        upper = _one_sided_repeated(-zf((g - mg) / s, d), list(fr), seq.spending)  # H0: gain >= +m
        p_tost[idx] = np.where(ok_m, np.maximum(lower, upper), np.nan)
        c = boundaries(list(fr), alpha, seq.spending)[-1]
        a_k = 2 * stats.norm.sf(c)
        tc = stats.t.ppf(1 - a_k / 2, d) if a_k > 0 else np.inf
        lo[idx], hi[idx] = g - tc * s, g + tc * s
    return p, p_tost, lo, hi


def _paired_stats(y: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per (site, init != baseline): n_pairs, d_mean, d_var of the seed-matched differences."""
    site = list(SITE_COLUMNS)
    per_seed = y.groupby([*site, "init", "seed"], sort=False)["y"].mean().reset_index()
    b = per_seed[per_seed["init"] == baseline].drop(columns="init").rename(columns={"y": "y_b"})
    a = per_seed[per_seed["init"] != baseline]
    m = a.merge(b, on=[*site, "seed"], how="inner")
    m["d"] = m["y"] - m["y_b"]
    g = m.groupby([*site, "init"], sort=False)["d"]
    return g.agg(n_pairs="count", d_mean="mean", d_var="var").reset_index()


def compute_gains(y: pd.DataFrame, cells: pd.DataFrame, plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All contrasts of the plan. ``y``: ok rows from :func:`metric_frame`; ``cells``: :func:`cell_table`.

    Under ``outlier_runs: isolate`` the contrasts of a suspect site (:func:`~capgate.analysis.cells.suspect_sites`)
    are judged both ways, with its suspect runs in and with them out
    (:func:`capgate.analysis.suspects.both_ways`).

    Returns (gains with :data:`GAINS_COLUMNS` plus ``key``, noise table per (study, task): sd_pooled, df,
    margin, d0 of the paired-difference prior).
    """
    alpha, baseline, method = plan.alpha, plan.baseline, plan.correction
    noise = pooled_noise(y)
    noise["margin"] = [r.sd_pooled if margin_rule(plan, r.task) == "pooled_sd" else float(margin_rule(plan, r.task))
                       for r in noise.itertuples(index=False)]
    j = _judged(y, cells, plan, noise)
    m, est, paired, n_a, n_b, n_p = j["m"], j["est"], j["paired"], j["n_a"], j["n_b"], j["n_p"]
    valid, p, p_tost, ci_low, ci_high = j["valid"], j["p"], j["p_tost"], j["ci_low"], j["ci_high"]
    other = np.full(len(m), np.nan)  # the other analysis's gain, where a contrast was judged both ways
    if plan.outlier_runs == "isolate":
        sites = suspect_sites(y, cells)
        if len(sites):
            out = _judged(*without_runs(y, cells, set(sites["run_id"])), plan, noise)
            other = both_ways(j, out, at_sites(m, sites))
            valid, p, p_tost, ci_low, ci_high = j["valid"], j["p"], j["p_tost"], j["ci_low"], j["ci_high"]
    gain, se, df, sd_raw, sd_mod = est["gain"], est["se"], est["df"], est["sd_raw"], est["sd_mod"]
    fam = j["fam"]
    margin = m["margin"].to_numpy(dtype=float)
    n_dropped = np.where(paired & ~est["partial"], n_a + n_b - 2 * n_p, 0).astype(int)
    gains = pd.DataFrame({
        "key": m["key"] + f"|vs|{baseline}", "study": m["study"], "task": m["task"], "family": m["family"],
        "backbone": m["backbone"], "params": m["params"].astype(float), "train_set": m["train_set"],
        "eval_set": m["eval_set"], "shift": m["shift"], "init": m["init"], "baseline": baseline,
        "metric": m["metric"], "mean_init": np.where(n_a > 0, m["mean"], np.nan),
        "mean_baseline": m["mean_b"].astype(float), "gain": gain, "se": np.where(valid, se, np.nan),
        "df": np.where(valid, df, np.nan), "ci_low": ci_low, "ci_high": ci_high,
        "pairing": np.where(paired, "paired", "unpaired"), "n_pairs": np.where(paired, n_p, 0).astype(int),
        "n_dropped": n_dropped, "sd_raw": sd_raw, "sd_mod": sd_mod, "sd_pooled": m["sd_pooled"].astype(float),
        "margin": margin, "n_init": n_a.astype(int), "n_baseline": n_b.astype(int), "p_value": p,
    })
    gains["p_adj"] = adjust_by_family(p, fam, method)
    gains["p_tost"] = p_tost
    gains["p_tost_adj"] = adjust_by_family(p_tost, fam, method)
    gains["verdict"] = [decide(g, pa, pt, mg, alpha) for g, pa, pt, mg in
                        zip(gains["gain"], gains["p_adj"], gains["p_tost_adj"], gains["margin"])]
    for i in np.flatnonzero(np.isfinite(other)):  # judged both ways: a verdict both analyses give
        r = gains.iloc[i]
        if decide(other[i], r["p_adj"], r["p_tost_adj"], r["margin"], alpha) != r["verdict"]:
            gains.iat[i, gains.columns.get_loc("verdict")] = "inconclusive"
    st = stage_columns(len(m), j["reps"], checkpoint_names(y, baseline), m)
    for c in st.columns:
        gains[c] = st[c].to_numpy()
    _add_seeds_needed(gains, fam, p, j["plan_d0"], plan)
    gains = gains.sort_values(["study", "task", "family", "params", "backbone", "train_set", "eval_set", "init"],
                              kind="mergesort").reset_index(drop=True)
    d0_of = j["d0_of"]
    noise["d0_paired"] = [d0_of.get(f"{r.study}|{r.task}") for r in noise.itertuples(index=False)]
    noise["n_contrasts"] = [int(np.isfinite(p[fam == f"{r.study}|{r.task}"]).sum()) for r in noise.itertuples(index=False)]
    return gains[["key", *GAINS_COLUMNS]], noise


def _judged(y: pd.DataFrame, cells: pd.DataFrame, plan: Plan, noise: pd.DataFrame) -> dict:
    """Every contrast's estimate and tests before the family's adjustment: ``m`` (:func:`_contrast_frame`),
    ``est`` (gain, se, df, sd_raw, sd_mod, partial), the arms' and pairs' counts, ``paired``, ``fam``,
    ``valid``, ``p``, ``p_tost``, ``ci_low``, ``ci_high``, the replicate table and the priors' df."""
    m = _contrast_frame(y, cells, plan, noise)
    n_a = m["n_ok"].to_numpy(dtype=float, copy=True)
    n_b = m["n_ok_b"].fillna(0).to_numpy(dtype=float, copy=True)
    n_p = m["n_pairs"].to_numpy(dtype=float, copy=True)
    pairing = plan.pairing
    paired = (n_p >= 2) if pairing == "auto" else (n_p >= 1) if pairing == "paired" else np.zeros(len(m), bool)
    fam = (m["study"] + "|" + m["task"]).to_numpy()
    # pretraining replicates (capgate.analysis.stages): the replicate is the unit of those contrasts, whose
    # per-seed differences share their replicate's effect and stay out of the per-seed prior
    reps = moderate_replicates(replicate_stats(y, plan.baseline), m, paired)
    per_seed = paired.copy()
    per_seed[reps["index"].to_numpy(dtype=int)] = False
    d_s2, d_df, d0_of, plan_d0 = _moderate_differences(m, fam, per_seed, n_p)
    est = _estimates(m, reps, paired, n_a, n_b, n_p, d_s2, d_df)
    valid, p, p_tost, ci_low, ci_high = _tests(est["gain"], est["se"], est["df"], m["margin"].to_numpy(dtype=float),
                                               np.where(paired, n_p, np.minimum(n_a, n_b)), plan)
    return {"m": m, "est": est, "paired": paired, "n_a": n_a, "n_b": n_b, "n_p": n_p, "fam": fam, "reps": reps,
            "d0_of": d0_of, "plan_d0": plan_d0, "valid": valid, "p": p, "p_tost": p_tost, "ci_low": ci_low,
            "ci_high": ci_high}


def _contrast_frame(y: pd.DataFrame, cells: pd.DataFrame, plan: Plan, noise: pd.DataFrame) -> pd.DataFrame:
    """One row per contrast (site, init != baseline): the init's cell, the baseline's (suffix ``_b``),
    the paired seed statistics (``n_pairs`` 0 when none) and the family's pooled SD and margin."""
    baseline = plan.baseline
    site = list(SITE_COLUMNS)
    arm = cells[cells["init"] != baseline]
    if plan.contrasts != "all":
        arm = arm[arm["init"].isin(plan.contrasts)]
    base = cells[cells["init"] == baseline][[*site, "mean", "sd", "sd_mod", "df_mod", "n_ok", "outlier"]]
    m = arm.merge(base, on=site, how="left", suffixes=("", "_b"))
    m = m.merge(_paired_stats(y, baseline), on=[*site, "init"], how="left")
    m = m.merge(noise[["study", "task", "sd_pooled", "margin"]], on=["study", "task"], how="left")
    m["n_pairs"] = m["n_pairs"].fillna(0).astype(int)
    return m


def _moderate_differences(m: pd.DataFrame, fam: np.ndarray, per_seed: np.ndarray, n_p: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, dict[str, float], dict[str, tuple[float, float]]]:
    """Moderated variance and df of the paired differences of the ``per_seed`` contrasts, per family,
    prior located per (eval set, init); returns (s2, df, d0 per family, (d0 fit, n_locate) per family
    for the planning rule)."""
    d_s2 = np.full(len(m), np.nan)
    d_df = np.full(len(m), np.nan)
    d0_of: dict[str, float] = {}
    plan_d0: dict[str, tuple[float, float]] = {}
    for lab in pd.unique(fam):
        sel = np.flatnonzero((fam == lab) & per_seed)
        if not len(sel):
            continue
        v, k = m["d_var"].to_numpy(dtype=float)[sel], (n_p[sel] - 1).clip(min=0)
        mod = squeeze_var(v, k, noise_strata(m["eval_set"].to_numpy()[sel], m["init"].to_numpy()[sel], v, k))
        d_s2[sel], d_df[sel], d0_of[lab] = mod.s2_post, mod.df_post, mod.d0
        plan_d0[lab] = (mod.d0_fit if np.isfinite(mod.d0_fit) else 1e6, max(mod.n_locate, 1.0))
    return d_s2, d_df, d0_of, plan_d0


def _estimates(m: pd.DataFrame, reps: pd.DataFrame, paired: np.ndarray, n_a: np.ndarray, n_b: np.ndarray,
               n_p: np.ndarray, d_s2: np.ndarray, d_df: np.ndarray) -> dict[str, np.ndarray]:
    """gain, se, df, sd_raw, sd_mod of each contrast: paired from the moderated differences, unpaired from
    both arms' moderated variances (Welch df), replicate-unit contrasts from their replicates."""
    with np.errstate(divide="ignore", invalid="ignore"):
        va = m["sd_mod"].to_numpy(dtype=float) ** 2 / n_a
        vb = m["sd_mod_b"].to_numpy(dtype=float) ** 2 / n_b
        welch_df = (va + vb) ** 2 / (va ** 2 / m["df_mod"].to_numpy(dtype=float)
                                     + vb ** 2 / m["df_mod_b"].to_numpy(dtype=float))
        both = (n_a > 0) & (n_b > 0)
        gain = np.where(paired, m["d_mean"].to_numpy(dtype=float),
                        np.where(both, m["mean"].to_numpy(dtype=float) - m["mean_b"].to_numpy(dtype=float), np.nan))
        se = np.where(paired, np.sqrt(d_s2 / n_p), np.where(both, np.sqrt(va + vb), np.nan))
        df = np.where(paired, d_df, np.where(both, welch_df, np.nan))
        sd_raw = np.where(paired, np.sqrt(m["d_var"].to_numpy(dtype=float)),
                          np.sqrt((m["sd"].to_numpy(dtype=float) ** 2 + m["sd_b"].to_numpy(dtype=float) ** 2) / 2))
        sd_mod = np.where(paired, np.sqrt(d_s2),
                          np.sqrt((m["sd_mod"].to_numpy(dtype=float) ** 2 + m["sd_mod_b"].to_numpy(dtype=float) ** 2) / 2))
        est = {"gain": gain, "se": se, "df": df, "sd_raw": sd_raw, "sd_mod": sd_mod}
        _partial_overlap(m, paired, n_a, n_b, n_p, d_s2, d_df, est)
        replicate_unit(reps, m["mean_b"].to_numpy(dtype=float), vb, m["df_mod_b"].to_numpy(dtype=float), est)
    return est


def _partial_overlap(m: pd.DataFrame, paired: np.ndarray, n_a: np.ndarray, n_b: np.ndarray, n_p: np.ndarray,
                     d_s2: np.ndarray, d_df: np.ndarray, est: dict[str, np.ndarray]) -> None:
    """In place: a paired contrast holding runs without a partner (a partner isolated, failed or missing)
    uses them too, as partially overlapping samples (Derrick et al. 2017), when that has the smaller variance.

    ``gain = mean_a - mean_b`` over all ok runs of each arm, with
    ``var = c_a s_a^2 + c_b s_b^2 + c_d s_d^2``, ``c_a = 1/n_a - n_p/(n_a n_b)``, ``c_b = 1/n_b - n_p/(n_a n_b)``,
    ``c_d = n_p/(n_a n_b)`` (the arms' moderated variances and the differences' moderated variance: the
    covariance of a pair is ``(s_a^2 + s_b^2 - s_d^2) / 2``), on Satterthwaite's df over the three terms. It is
    the paired estimate when every run has its partner and Welch's when none has. Without a shared seed
    component (matched-seed correlation near 0) the unmatched run is worth keeping; with a strong one the paired
    estimate stays (smaller variance). ``est["partial"]`` marks the contrasts that use it."""
    sa2, sb2 = m["sd_mod"].to_numpy(dtype=float) ** 2, m["sd_mod_b"].to_numpy(dtype=float) ** 2
    dfa, dfb = m["df_mod"].to_numpy(dtype=float), m["df_mod_b"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cd = n_p / (n_a * n_b)
        ca, cb = 1 / n_a - cd, 1 / n_b - cd
        var = ca * sa2 + cb * sb2 + cd * d_s2
        sdf = var ** 2 / ((ca * sa2) ** 2 / dfa + (cb * sb2) ** 2 / dfb + (cd * d_s2) ** 2 / d_df)
        use = (paired & ((n_a > n_p) | (n_b > n_p)) & np.isfinite(var) & np.isfinite(sdf) & (sdf > 0)
               & (var < est["se"] ** 2))
    est["gain"][use] = (m["mean"].to_numpy(dtype=float) - m["mean_b"].to_numpy(dtype=float))[use]
    est["se"][use] = np.sqrt(var[use])
    est["df"][use] = sdf[use]
    est["partial"] = use


def _tests(gain: np.ndarray, se: np.ndarray, df: np.ndarray, margin: np.ndarray, n_arm: np.ndarray, plan: Plan
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(valid, p, p_tost, ci_low, ci_high): the fixed-design t tests, TOST and interval, or under the plan's
    ``sequential`` design the repeated ones (:func:`sequential_tests`) at ``n_arm`` seeds per arm."""
    alpha = plan.alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = np.isfinite(gain) & np.isfinite(se) & (se > 0) & np.isfinite(df) & (df > 0)
        dfv = np.where(valid, np.minimum(df, 1e6), 1.0)
        sev = np.where(valid, se, 1.0)
        tc = stats.t.ppf(1 - alpha / 2, dfv)
        ci_low = np.where(valid, gain - tc * sev, np.nan)
        ci_high = np.where(valid, gain + tc * sev, np.nan)
        p = np.where(valid, 2 * stats.t.sf(np.abs(gain) / sev, dfv), np.nan)
        p_tost = np.where(valid & np.isfinite(margin) & (margin > 0),
                          np.maximum(stats.t.sf((gain + margin) / sev, dfv), stats.t.cdf((gain - margin) / sev, dfv)),
                          np.nan)
        if plan.sequential:
            p, p_tost, ci_low, ci_high = sequential_tests(gain, sev, dfv, margin, n_arm, valid, plan.sequential,
                                                          alpha)
    return valid, p, p_tost, ci_low, ci_high


def _add_seeds_needed(gains: pd.DataFrame, fam: np.ndarray, p: np.ndarray,
                      plan_d0: dict[str, tuple[float, float]], plan: Plan) -> None:
    """Add ``seeds_needed_within``, ``seeds_needed_helps`` and ``seeds_needed`` (the one planning rule) to
    ``gains`` (rows in contrast order, before sorting); None where the verdict is decided or the SD unknown."""
    alpha = plan.alpha
    m_family = pd.Series(np.isfinite(p)).groupby(fam).transform("sum").to_numpy()
    need_eq, need_det, need = [], [], []
    for i, r in enumerate(gains.itertuples(index=False)):
        if r.verdict != "inconclusive" or not np.isfinite(r.sd_mod):
            need_eq.append(None)
            need_det.append(None)
            need.append(None)
            continue
        paired = r.pairing == "paired"
        d0 = plan_d0.get(fam[i], 0.0) if paired else 0.0
        a_adj = alpha / max(int(m_family[i]), 1)
        ne, nd = seeds_needed(r.sd_mod, r.margin, alpha=a_adj, d0=d0, paired=paired,
                              power=plan.power, cap=plan.max_seeds)
        if r.n_stages >= 2 and ne is not None:  # counted in replicates of the current seeds per replicate: as seeds per arm
            per = max(int(round(r.n_init / r.n_stages)), 1)
            ne, nd = min(ne * per, plan.max_seeds), min(nd * per, plan.max_seeds)
        need_eq.append(ne)
        need_det.append(nd)
        n_now = int(r.n_pairs) if paired else int(min(r.n_init, r.n_baseline))
        need.append(seeds_to_decide(r.gain, r.sd_mod, r.margin, n_now, alpha=a_adj, d0=own_prior_df(r.df, n_now, paired),
                                    paired=paired, power=plan.power, cap=plan.max_seeds))
    gains["seeds_needed_within"] = pd.array(need_eq, dtype="Int64")
    gains["seeds_needed_helps"] = pd.array(need_det, dtype="Int64")
    gains["seeds_needed"] = pd.array(need, dtype="Int64")  # THE rule (planning.SEEDS_RULE), next-seeds' too


def gains_of_table(table: pd.DataFrame, plan: Plan, y: pd.DataFrame | None = None,
                   cells: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`compute_gains` of a validated results table, with a sequential design's stopping rule.

    Under the plan's ``sequential`` design each schedule point below the most seeds any run group has
    is an earlier look: the table as it stood then (each group's first ``p`` seeds, in seed order, the
    order the adaptive loop adds them) is analysed at that look, and a contrast decided there keeps
    that look's row (first crossing, which the alpha spending pays for). ``y``/``cells``: the current
    :func:`analysis_frame`'s rows and cells when the caller has them (outlier runs kept out)."""
    if y is None:
        y, cells, _ = analysis_frame(table, plan)
    cells = cell_table(table, plan, y) if cells is None else cells
    gains, noise = compute_gains(y, cells, plan)
    seq = plan.sequential
    if not seq or not len(table):
        return gains, noise
    rank = table.groupby(list(RUN_GROUP))["seed"].rank(method="dense")
    n_max = int(rank.max())
    stopped: dict[str, pd.Series] = {}
    for look in (p for p in seq.schedule if p < n_max):
        sub = table[rank <= look]
        sub.attrs["capgate_validated"] = True
        y_at, cells_at, _ = analysis_frame(sub, plan)
        at, _ = compute_gains(y_at, cells_at, plan)
        for row in at[at["verdict"] != "inconclusive"].itertuples(index=False):
            stopped.setdefault(row.key, pd.Series(row._asdict()))
    if not stopped:
        return gains, noise
    earlier = pd.DataFrame(list(stopped.values()))
    keep = gains[~gains["key"].isin(stopped)]
    out = pd.concat([keep, earlier[gains.columns]], ignore_index=True)
    out = out.sort_values(["study", "task", "family", "params", "backbone", "train_set", "eval_set", "init"],
                          kind="mergesort").reset_index(drop=True)
    return out.astype(gains.dtypes.to_dict()), noise
