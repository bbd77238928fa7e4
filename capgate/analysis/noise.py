"""Run-to-run noise per cell, stabilised across cells: the moderated variance of Smyth (2004).

Each cell (or paired contrast) has a sample variance ``s2`` on ``df`` degrees of freedom from its own
runs (one value per trained model; the records of one run on several eval sets are never counted
as separate observations). With three to five seeds ``s2`` is itself very noisy, so it is shrunk
toward a prior fitted across the cells of one family (a study and task), limma's ``squeezeVar``:

- ``z = log s2`` has mean ``log s0^2 + digamma(df/2) - log(df/2)`` and variance
  ``trigamma(df/2) + trigamma(d0/2)`` when ``sigma^2 ~ s0^2 d0 / chi2(d0)``;
- the prior location ``s0^2`` is fitted per *stratum* (:func:`noise_strata`: the eval set and the init,
  since eval sets differ several-fold in noise and so do inits, a scratch arm often several times
  noisier than a pretrained one; limma's "trend" with a factor covariate), the prior df ``d0`` once
  from the residual spread of ``z`` around the stratum means, by the method of moments (``trigamma(d0/2) = var(z) - mean trigamma(df/2)``);
  ``d0`` is capped at the stratum's total df (a prior never carries more information than the data);
- posterior ``s2_post = (d0 s0^2 + df s2) / (d0 + df)`` on ``d0 + df`` degrees of freedom;
- an *outlier guard* (in the spirit of limma's ``robust=TRUE``): a cell whose ``s2 / s0^2`` lies in the
  upper ``OUTLIER_P`` tail of ``F(df, d0)`` is not from the prior; it keeps its own ``s2`` and ``df``, so
  one noisy cell among quiet ones is never made to look quiet; the prior is then refitted without the
  flagged cells (so an outlier neither inflates the prior's spread, which would stop all shrinkage, nor
  shifts its location) and every cell is judged again against that prior.

Golden values (hand-checkable) are in ``tests/test_analysis_noise.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = ["Moderated", "squeeze_var", "noise_strata", "trigamma_inverse", "OUTLIER_P", "MIN_STRATUM"]

#: Upper-tail probability under the prior below which a cell's variance is treated as an outlier.
OUTLIER_P = 0.05
#: A stratum with fewer finite variances than this takes the prior location of the whole family.
MIN_STRATUM = 3


@dataclass(frozen=True)
class Moderated:
    """Moderated variances of one family: arrays aligned with the input, plus the prior.

    ``s2_post``/``df_post``: per cell (NaN where the cell had no variance and no prior);
    ``s0_sq``: the prior location used by each cell; ``d0``: the prior df (``inf`` = complete pooling,
    0 = no shrinkage); ``outlier``: cells that kept their own variance; ``d0_fit``: the prior df before
    the cap at the data's df (what a larger study of the same noise would use).
    """

    s2_post: np.ndarray
    df_post: np.ndarray
    s0_sq: np.ndarray
    d0: float
    outlier: np.ndarray
    d0_fit: float = 0.0


def noise_strata(eval_set: np.ndarray, init: np.ndarray, s2: np.ndarray, df: np.ndarray) -> np.ndarray:
    """The prior stratum of each cell (or paired contrast): ``"<eval set>|<init>"`` where that pair has
    at least :data:`MIN_STRATUM` finite variances, else the eval set alone.

    Noise differs by init as it does by eval set (in the demo a scratch arm's seed-to-seed SD in-domain
    is about 4x a pretrained arm's; cross-domain the pretrained arm is the noisier one). One prior per
    eval set would call every cell of the noisier init an outlier, and shrink the quieter init's cells
    towards a noise they do not have."""
    ev = np.asarray(eval_set).astype(str)
    pair = np.char.add(np.char.add(ev, "|"), np.asarray(init).astype(str))
    s2, df = np.asarray(s2, dtype=float), np.asarray(df, dtype=float)
    finite = (df > 0) & np.isfinite(s2) & (s2 > 0)
    labels, inverse = np.unique(pair, return_inverse=True)
    counts = np.bincount(inverse, weights=finite.astype(float), minlength=len(labels))
    return np.where(counts[inverse] >= MIN_STRATUM, pair, ev)


def trigamma_inverse(x: float) -> float:
    """y with trigamma(y) = x (Newton's method of Smyth 2004, limma's ``trigammaInverse``)."""
    if x > 1e7:
        return 1.0 / np.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = special.polygamma(1, y)
        dif = tri * (1 - tri / x) / special.polygamma(2, y)
        y += dif
        if -dif / y < 1e-8:
            break
    return float(y)


def squeeze_var(s2: np.ndarray, df: np.ndarray, strata: np.ndarray | None = None, *,
                offset: np.ndarray | None = None, outlier_p: float = OUTLIER_P) -> Moderated:
    """Moderated variances (see the module docstring) of the cells of one family.

    Robust in two passes: cells flagged as outliers by the first fit are left out of the second fit of
    the prior (so one very noisy cell neither inflates the prior's spread nor shifts its location), then
    every cell is judged against the second prior.
    """
    first = _squeeze_once(s2, df, strata, offset=offset, outlier_p=outlier_p)
    if outlier_p <= 0 or not first.outlier.any():
        return first
    fit_on = np.asarray(df, dtype=float).copy()
    fit_on[first.outlier] = 0.0  # out of the prior's fit
    second = _squeeze_once(s2, fit_on, strata, offset=offset, outlier_p=outlier_p, judge_df=np.asarray(df, float))
    return second


def _squeeze_once(s2: np.ndarray, df: np.ndarray, strata: np.ndarray | None = None, *,
                  offset: np.ndarray | None = None, outlier_p: float = OUTLIER_P,
                  judge_df: np.ndarray | None = None) -> Moderated:
    """One fit of the prior on cells with ``df > 0``; posteriors for every cell on ``judge_df``
    (default ``df``).

    ``s2``: sample variances (NaN where ``df`` is 0); ``df``: their degrees of freedom (n_runs - 1);
    ``strata``: a label per cell (e.g. the eval set) for the prior location, None for one stratum;
    ``offset``: a known log-scale shift of each cell's prior location (a covariate: the prior is
    ``s0^2 * exp(offset)``), e.g. the log of a paired contrast's arm variances.
    """
    off = np.zeros(len(s2)) if offset is None else np.asarray(offset, dtype=float)
    s2 = np.asarray(s2, dtype=float) / np.exp(off)
    df = np.asarray(df, dtype=float)
    n = len(s2)
    strata = np.zeros(n, dtype=int) if strata is None else np.asarray(strata)
    ok = (df > 0) & np.isfinite(s2) & (s2 > 0)
    s0_sq = np.full(n, np.nan)
    d0 = d0_fit = 0.0
    own_df = df if judge_df is None else judge_df
    if ok.sum() >= 2:
        z = np.log(s2[ok])
        e = z - special.digamma(df[ok] / 2) + np.log(df[ok] / 2)
        st = strata[ok]
        emean_all = float(e.mean())
        centre = np.full(len(e), emean_all)
        n_used = 0
        for lab in np.unique(st):
            m = st == lab
            if m.sum() >= MIN_STRATUM:
                centre[m] = e[m].mean()
                n_used += 1
        n_fitted = n_used + (1 if (centre == emean_all).any() or n_used == 0 else 0)
        resid_df = max(len(e) - n_fitted, 1)
        evar = float(((e - centre) ** 2).sum() / resid_df - special.polygamma(1, df[ok] / 2).mean())
        d0 = 2 * trigamma_inverse(evar) if evar > 0 else np.inf
        loc = np.full(n, emean_all)
        for lab in np.unique(strata):
            m_all = strata == lab
            m = st == lab
            if m.sum() >= MIN_STRATUM:
                loc[m_all] = e[m].mean()
        d0_fit = d0
        d0 = min(d0, float(df[ok].sum()))
        s0_sq = np.exp(loc + special.digamma(d0 / 2) - np.log(d0 / 2))
    elif ok.sum() == 1:
        s0_sq = np.full(n, float(s2[ok][0]))
    df = own_df
    s2_post = np.full(n, np.nan)
    df_post = np.full(n, np.nan)
    outlier = np.zeros(n, dtype=bool)
    has = df > 0
    if d0 > 0 and np.isfinite(s0_sq).any():
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(has & np.isfinite(s2), s2 / s0_sq, np.nan)
            p_up = np.where(np.isfinite(ratio), stats.f.sf(ratio, np.maximum(df, 1), d0), np.nan)
        outlier = has & np.isfinite(p_up) & (p_up < outlier_p)
        shrink = ~outlier & np.isfinite(s0_sq)
        s2_safe = np.where(has & np.isfinite(s2), s2, 0.0)
        s2_post = np.where(shrink, (d0 * s0_sq + df * s2_safe) / (d0 + df), s2_post)
        df_post = np.where(shrink, d0 + df, df_post)
    keep_own = has & ~np.isfinite(s2_post) & np.isfinite(s2)
    s2_post = np.where(keep_own, s2, s2_post)
    df_post = np.where(keep_own, df, df_post)
    scale = np.exp(off)
    return Moderated(s2_post=s2_post * scale, df_post=df_post, s0_sq=s0_sq * scale, d0=float(d0), outlier=outlier,
                     d0_fit=float(d0_fit))
