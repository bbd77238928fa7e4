"""The prior of the moderated variance: a scaled F distribution fitted to sample variances, as limma fits it.

:func:`fit_f_dist` is limma's ``fitFDist`` (method of moments on ``log s2``) and
:func:`fit_f_dist_robustly` limma's ``fitFDistRobustly`` (Phipson, Lee, Majewski, Alexander and Smyth
2016, "Robust hyperparameter estimation protects against hypervariable genes and improves power to
detect differential expression", Ann. Appl. Stat. 10(2)): the prior df from the variance of the
*Winsorized* log variances (tails 5 % low, 10 % high), matched to the Winsorized moments of
``log F(df1, df2)`` by 128-point Gauss quadrature, and a per-cell prior df ``df2_shrunk`` that shrinks
toward 0 for a cell more likely an outlier of the prior than its rank among the cells says (no cell is
removed: a hypervariable cell keeps most of its own variance, every other cell keeps the full prior df).

The one generalisation: ``strata`` (a label per cell) replace limma's loess trend on a covariate by one
location per stratum (a stratum mean, a trimmed mean in the robust fit, exactly as limma does without a
covariate); the spread and the tails are judged on the residuals pooled over the strata. With one
stratum both functions return limma 3.54's numbers (``tests/test_analysis_limma_golden.py``, R beside).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special, stats

__all__ = ["FFit", "fit_f_dist", "fit_f_dist_robustly", "trigamma_inverse", "stratum_centres", "WINSOR_TAIL_P"]

#: limma's default Winsorization tails (lower, upper) of the robust fit.
WINSOR_TAIL_P = (0.05, 0.1)
#: Below this many finite variances a stratum takes the location of its whole family.
MIN_STRATUM = 3


@dataclass(frozen=True)
class FFit:
    """``scale``: the prior location per cell; ``df2``: the prior df; ``df2_shrunk``: the prior df per cell
    (= ``df2`` for the non-robust fit); ``prob_outlier``: per cell, 0 for the non-robust fit."""

    scale: np.ndarray
    df2: float
    df2_shrunk: np.ndarray
    prob_outlier: np.ndarray


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


def stratum_centres(z: np.ndarray, strata: np.ndarray, trim: float = 0.0) -> tuple[np.ndarray, int]:
    """(centre of each value: the (trimmed) mean of its stratum, or of all values where the stratum has
    fewer than :data:`MIN_STRATUM`; the number of locations fitted). ``trim`` as R's ``mean(trim=)``."""
    def tmean(v: np.ndarray) -> float:
        return float(stats.trim_mean(v, trim)) if trim > 0 else float(v.mean())

    centre = np.full(len(z), tmean(z))
    n_used = 0
    for lab in np.unique(strata):
        m = strata == lab
        if m.sum() >= MIN_STRATUM:
            centre[m] = tmean(z[m])
            n_used += 1
    pooled = n_used == 0 or any((strata == lab).sum() < MIN_STRATUM for lab in np.unique(strata))
    return centre, n_used + int(pooled)


def fit_f_dist(x: np.ndarray, df1: np.ndarray, strata: np.ndarray) -> FFit:
    """limma's ``fitFDist`` on finite ``x > 0`` with ``df1 > 0`` (the caller selects them)."""
    n = len(x)
    m = float(np.median(x))
    x = np.maximum(x, 1e-5 * (m if m > 0 else 1.0))
    e = np.log(x) - special.digamma(df1 / 2) + np.log(df1 / 2)
    centre, n_fitted = stratum_centres(e, strata)
    evar = float(((e - centre) ** 2).sum() / max(n - n_fitted, 1)) - float(special.polygamma(1, df1 / 2).mean())
    if evar > 0:
        df2 = 2 * trigamma_inverse(evar)
        scale = np.exp(centre + special.digamma(df2 / 2) - np.log(df2 / 2))
    else:
        df2 = np.inf
        scale = _stratum_arith_means(x, strata) if n_fitted > 1 else np.full(n, float(x.mean()))
    return FFit(scale, float(df2), np.full(n, float(df2)), np.zeros(n))


def _stratum_arith_means(x: np.ndarray, strata: np.ndarray) -> np.ndarray:
    out = np.full(len(x), float(x.mean()))
    for lab in np.unique(strata):
        m = strata == lab
        if m.sum() >= MIN_STRATUM:
            out[m] = x[m].mean()
    return out


def _f_log_sf(f: np.ndarray, df1: np.ndarray | float, df2: float) -> np.ndarray:
    if np.isinf(df2):
        return stats.chi2.logsf(f * df1, df1)
    return stats.f.logsf(f, df1, df2)


@lru_cache(maxsize=1)
def _nodes() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(128)  # statmod::gauss.quad.prob(128, "uniform")
    return (x + 1) / 2, w / 2


def _winsorized_moments(df1: float, df2: float, tail: tuple[float, float]) -> tuple[float, float]:
    """Mean and variance of log F(df1, df2) Winsorized at the quantiles ``tail[0]`` and ``1 - tail[1]``."""
    p = np.array([tail[0], 1 - tail[1]])
    if np.isinf(df2):
        fq = stats.chi2.ppf(p, df1) / df1
        dens = lambda v: stats.chi2.pdf(v * df1, df1) * df1  # noqa: E731
    else:
        fq = stats.f.ppf(p, df1, df2)
        dens = lambda v: stats.f.pdf(v, df1, df2)  # noqa: E731
    zq = np.log(fq)
    q = fq / (1 + fq)
    nodes, weights = _nodes()
    u = q[0] + (q[1] - q[0]) * nodes
    fnodes = u / (1 - u)
    znodes = np.log(fnodes)
    f = dens(fnodes) / (1 - u) ** 2
    q21 = q[1] - q[0]
    tails = np.array(tail)
    mean = q21 * np.sum(weights * f * znodes) + np.sum(zq * tails)
    var = q21 * np.sum(weights * f * (znodes - mean) ** 2) + np.sum((zq - mean) ** 2 * tails)
    return float(mean), float(var)


def _to_common_df1(x: np.ndarray, df1: np.ndarray, nonrobust: FFit) -> tuple[np.ndarray, float]:
    """Carry variances on fewer df to the largest df1 at the same tail probability under the non-robust fit."""
    top = float(df1.max())
    low = df1 < top - 1e-14
    if not low.any():
        return x, top
    x = x.copy()
    s = nonrobust.scale[low]
    f = x[low] / s
    d2 = nonrobust.df2
    lup, llo = _f_log_sf(f, df1[low], d2), _f_log_cdf(f, df1[low], d2)
    up = lup < llo
    out = np.empty(len(f))
    out[up] = _f_isf_log(lup[up], top, d2)
    out[~up] = _f_ppf_log(llo[~up], top, d2)
    x[low] = out * s
    return x, top


def _f_log_cdf(f: np.ndarray, df1: np.ndarray | float, df2: float) -> np.ndarray:
    if np.isinf(df2):
        return stats.chi2.logcdf(f * df1, df1)
    return stats.f.logcdf(f, df1, df2)


def _f_isf_log(logp: np.ndarray, df1: float, df2: float) -> np.ndarray:
    if np.isinf(df2):
        return stats.chi2.isf(np.exp(logp), df1) / df1
    return stats.f.isf(np.exp(logp), df1, df2)


def _f_ppf_log(logp: np.ndarray, df1: float, df2: float) -> np.ndarray:
    if np.isinf(df2):
        return stats.chi2.ppf(np.exp(logp), df1) / df1
    return stats.f.ppf(np.exp(logp), df1, df2)


def fit_f_dist_robustly(x: np.ndarray, df1: np.ndarray, strata: np.ndarray,
                        tail: tuple[float, float] = WINSOR_TAIL_P) -> FFit:
    """limma's ``fitFDistRobustly`` on finite ``x > 0`` with ``df1 > 0`` (the caller selects them)."""
    n = len(x)
    if n <= 2:
        return fit_f_dist(x, df1, strata)
    m = float(np.median(x))
    x = np.maximum(x, m * 1e-12)
    nonrobust = fit_f_dist(x, df1, strata)
    if all(t < 1 / n for t in tail):
        return nonrobust
    x, d1 = _to_common_df1(x, df1, nonrobust)
    z = np.log(x)
    ztrend, _ = stratum_centres(z, strata, trim=tail[1])
    zresid = z - ztrend
    lo_q, hi_q = np.quantile(zresid, [tail[0], 1 - tail[1]])
    zw = np.clip(zresid, lo_q, hi_q)
    zwmean = float(zw.mean())
    zwvar = float(np.mean((zw - zwmean) ** 2) * n / (n - 1))
    link, linkinv = (lambda v: v / (1 + v)), (lambda v: v / (1 - v) if v < 1 else np.inf)

    def fun(u: float) -> float:
        return float(np.log(zwvar / _winsorized_moments(d1, linkinv(u), tail)[1]))

    mean_inf, var_inf = _winsorized_moments(d1, np.inf, tail)
    with np.errstate(divide="ignore"):  # zwvar 0 (every variance alike): log 0 = -inf, an infinite prior df
        fun_inf = float(np.log(zwvar / var_inf))
    rank = stats.rankdata(z - ztrend)
    if fun_inf <= 0:
        corrected = ztrend + zwmean - mean_inf
        fstat = np.exp(z - corrected)
        tail_p = stats.chi2.sf(fstat * d1, d1)
        not_out = np.minimum(tail_p / ((n - rank + 0.5) / n), 1.0)
        shrunk = np.full(n, np.inf)
        o_mask = not_out < 1
        if o_mask.any():
            shrunk[o_mask] = not_out[o_mask] * n * d1
            o = np.argsort(tail_p, kind="stable")
            shrunk[o] = np.maximum.accumulate(shrunk[o])
        return FFit(np.exp(corrected), np.inf, shrunk, 1 - not_out)
    if np.isinf(nonrobust.df2):
        return nonrobust
    rbx = link(nonrobust.df2)
    low = fun(rbx)
    if low >= 0:
        df2 = nonrobust.df2
    else:
        try:
            df2 = linkinv(optimize.brentq(fun, rbx, 1.0, xtol=1e-10))
        except ValueError:  # the Winsorised variance is not finite somewhere in the bracket (a degenerate
            return nonrobust  # family, e.g. a few near-identical variances): the moment fit, as without robustness
    corrected = ztrend + zwmean - _winsorized_moments(d1, df2, tail)[0]
    fstat = np.exp(z - corrected)
    log_tail = stats.f.logsf(fstat, d1, df2)
    log_not_out = np.minimum(log_tail - (np.log(n - rank + 0.5) - np.log(n)), 0.0)
    not_out = np.exp(log_not_out)
    p_out = -np.expm1(log_not_out)
    shrunk = np.full(n, float(df2))
    if (log_not_out < 0).any():
        min_log = float(log_tail.min())
        if min_log == -np.inf:
            shrunk = not_out * df2
        else:
            d_out = np.log(0.5) / min_log * df2
            d_out = np.log(0.5) / float(stats.f.logsf(fstat.max(), d1, d_out)) * d_out
            shrunk = not_out * df2 + p_out * d_out
        o = np.argsort(log_tail, kind="stable")
        ordered = shrunk[o]
        run_mean = np.cumsum(ordered) / np.arange(1, n + 1)
        imin = int(np.argmin(run_mean))
        ordered[: imin + 1] = run_mean[imin]
        shrunk[o] = np.maximum.accumulate(ordered)
    return FFit(np.exp(corrected), float(df2), shrunk, p_out)
