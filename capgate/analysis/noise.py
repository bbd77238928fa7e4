"""Run-to-run noise per cell, stabilised across cells: the moderated variance of Smyth (2004), robust.

Each cell (or paired contrast) has a sample variance ``s2`` on ``df`` degrees of freedom from its own
runs (one value per trained model; the records of one run on several eval sets are never counted
as separate observations). With three to five seeds ``s2`` is itself very noisy, so it is shrunk
toward a prior ``sigma^2 ~ s0^2 d0 / chi2(d0)`` fitted across the cells of one family (a study and
task), limma's ``squeezeVar(robust = TRUE)``:

- the prior location ``s0^2`` is fitted per *stratum* (:func:`noise_strata`: the eval set and the init,
  since eval sets differ several-fold in noise and so do inits, a scratch arm often several times
  noisier than a pretrained one; limma's trend, with a factor covariate);
- the prior df is fitted by limma's ``fitFDistRobustly`` (:mod:`capgate.analysis._fdist`): from the
  Winsorized spread of ``log s2`` around the stratum locations, and *per cell*: a cell whose variance is
  more extreme than its rank among the cells explains (a hypervariable cell: an outlier seed, a diverging
  run) gets a prior df shrunk toward 0, so it keeps most of its own variance, while every other cell keeps
  the full prior df. Nothing is refitted without the extreme cells (a refit without the upper tail
  biases the prior low when all cells share one noise: 0.163 of null studies with a false claim, 3 seeds);
- the prior df of a cell is capped at the information of its stratum's location,
  ``d_loc = 2 trigamma^-1(mean(trigamma(df/2)) / N)`` for the ``N`` cells that locate it (the df of a
  pooled variance with the same log-scale precision): a posterior never claims more df than the
  prior's own estimate carries;
- posterior ``s2_post = (d0 s0^2 + df s2) / (d0 + df)`` on ``d0 + df`` degrees of freedom.

Golden values: hand-checkable in ``tests/test_analysis_noise.py``, against limma in
``tests/test_analysis_limma_golden.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from capgate.analysis._fdist import (MIN_STRATUM, WINSOR_TAIL_P, fit_f_dist, fit_f_dist_robustly, stratum_centres,
                                     trigamma_inverse)

__all__ = ["Moderated", "squeeze_var", "noise_strata", "trigamma_inverse", "location_df", "OUTLIER_P",
           "MIN_STRATUM", "WINSOR_TAIL_P"]

#: A cell whose probability of being an outlier of the prior exceeds this is flagged ``outlier``.
OUTLIER_P = 0.5


@dataclass(frozen=True)
class Moderated:
    """Moderated variances of one family: arrays aligned with the input, plus the prior.

    ``s2_post``/``df_post``: per cell (NaN where the cell had no variance and no prior);
    ``s0_sq``: the prior location used by each cell; ``d0_cell``: each cell's prior df (robust, capped);
    ``d0``: their median (``inf`` = complete pooling, 0 = no shrinkage); ``outlier``: cells more likely
    outliers of the prior than not (their prior df shrunk); ``d0_fit``: the fitted prior df before any
    cap (what a larger study of the same noise would use); ``n_locate``: the median number of cells that
    locate a stratum's prior.
    """

    s2_post: np.ndarray
    df_post: np.ndarray
    s0_sq: np.ndarray
    d0: float
    outlier: np.ndarray
    d0_fit: float = 0.0
    d0_cell: np.ndarray | None = None
    n_locate: float = 0.0


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




def location_df(df: np.ndarray) -> float:
    """The df of a pooled variance as precise (on the log scale) as the mean of ``log s2`` over cells
    with these ``df``: ``2 trigamma^-1(mean(trigamma(df/2)) / N)`` (``sum(df)`` for large df)."""
    df = np.asarray(df, dtype=float)
    return 2 * trigamma_inverse(float(special.polygamma(1, df / 2).mean()) / len(df))


def _locating_sets(strata: np.ndarray) -> np.ndarray:
    """Per cell, the label of the set of cells that locates its prior (its stratum, or '' = all)."""
    out = np.full(len(strata), "", dtype=object)
    for lab in np.unique(strata):
        m = strata == lab
        if m.sum() >= MIN_STRATUM:
            out[m] = str(lab)
    return out


def squeeze_var(s2: np.ndarray, df: np.ndarray, strata: np.ndarray | None = None, *,
                offset: np.ndarray | None = None, robust: bool = True, cap: bool = True) -> Moderated:
    """Moderated variances (see the module docstring) of the cells of one family.

    ``s2``: sample variances (NaN where ``df`` is 0); ``df``: their degrees of freedom; ``strata``: a label
    per cell for the prior location (None: one); ``offset``: a known log-scale shift of each cell's prior
    location (the prior is ``s0^2 exp(offset)``); ``robust``: limma's ``robust = TRUE`` (per-cell prior df);
    ``cap``: cap each cell's prior df at its location's df (:func:`location_df`). With ``cap=False`` and one
    stratum the posteriors are limma's ``squeezeVar(s2, df, robust = robust)``.
    """
    off = np.zeros(len(s2)) if offset is None else np.asarray(offset, dtype=float)
    x = np.asarray(s2, dtype=float) / np.exp(off)
    df = np.asarray(df, dtype=float)
    n = len(x)
    strata = np.zeros(n, dtype=int) if strata is None else np.asarray(strata)
    ok = (df > 0) & np.isfinite(x) & (x >= 0)
    s0 = np.full(n, np.nan)
    d0c = np.zeros(n)
    p_out = np.zeros(n)
    d0_fit, n_locate = 0.0, 0.0
    if ok.sum() >= 2:
        fit = (fit_f_dist_robustly if robust else fit_f_dist)(x[ok], df[ok], strata[ok])
        d0_fit = fit.df2
        sets = _locating_sets(strata[ok])
        loc_df = {lab: location_df(df[ok][sets == lab]) for lab in np.unique(sets)}
        s0[ok], d0c[ok], p_out[ok] = fit.scale, fit.df2_shrunk, fit.prob_outlier
        # a cell without a variance takes its stratum's prior, or the family's, at the fitted df
        pooled = sets == ""
        fam = float(fit.scale[pooled][0]) if pooled.any() else float(np.exp(np.mean(np.log(fit.scale))))
        for i in range(n):
            own = sets == str(strata[i])
            lab = str(strata[i]) if own.any() else ""
            if not ok[i]:
                s0[i] = float(fit.scale[own][0]) if own.any() else fam
                d0c[i] = fit.df2
            if cap:
                d0c[i] = min(d0c[i], loc_df[lab] if lab in loc_df else location_df(df[ok]))
        n_locate = float(np.median([(sets == lab).sum() for lab in np.unique(sets)]))
    elif ok.sum() == 1:
        s0[:] = x[ok][0]
    has = df > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        x_safe = np.where(has & np.isfinite(x), x, 0.0)
        post = np.where(np.isinf(d0c), s0, (d0c * s0 + df * x_safe) / (d0c + df))
    fin = np.isfinite(s0) & ((d0c > 0) | has & np.isfinite(x))
    s2_post = np.where(fin, post, np.nan)
    df_post = np.where(fin, d0c + df, np.nan)
    d0 = float(np.median(d0c[ok])) if ok.any() else 0.0
    scale = np.exp(off)
    return Moderated(s2_post=s2_post * scale, df_post=df_post, s0_sq=s0 * scale, d0=d0, outlier=p_out > OUTLIER_P,
                     d0_fit=float(d0_fit), d0_cell=d0c, n_locate=n_locate)
