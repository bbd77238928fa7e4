"""Seed planning: the power of a contrast's verdict at n seeds per arm, and THE seeds-needed rule.

One rule, used by the report (gains.csv ``seeds_needed``, the verdict maps, the methods section) and
by ``capgate next-seeds`` (the seeds it adds under a fixed plan), so the two never disagree:

:data:`SEEDS_RULE`: the seeds per arm an inconclusive contrast needs are the smallest ``n`` above its
current seeds at which it is decided (``helps``/``hurts`` or ``within_noise``) with probability at least
the plan's ``power``, taking its current estimate as the true gain and its stabilised SD as the true
noise, at the strictest adjusted level ``alpha / (contrasts in the family)``, with its pairing and its
own prior df (its moderated df less the residual df of its seeds). Searched up to a cap; the cap means
"that many or more".

The design figures (:func:`seeds_needed`: a true gain of 0 shown within_noise, a true gain of twice the
margin shown helps) do not look at the estimate; gains.csv keeps them as ``seeds_needed_within`` and
``seeds_needed_helps`` for planning a new study.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats

from capgate.analysis.noise import location_df

__all__ = ["power_helps", "power_within", "seeds_needed", "p_decided", "seeds_to_decide", "own_prior_df",
           "SEEDS_RULE"]

SEEDS_RULE = (
    "seeds needed (inconclusive contrasts): the smallest seeds per arm above the current ones at which the "
    "contrast is decided (helps, hurts or within_noise) with probability at least the plan's power, taking its "
    "current estimate as the true gain and its stabilised SD as the true noise, at the strictest adjusted level "
    "alpha / (contrasts in the family), with its pairing and its own prior df; 'capgate next-seeds' adds "
    "exactly these seeds under a fixed plan (up to --max-seeds)"
)
_QUANTILES = (np.arange(256) + 0.5) / 256


@lru_cache(maxsize=512)
def _scale_draws(k: float, d0: float) -> np.ndarray:
    """Quantiles of s2_mod / sigma^2 = (d0 + chi2_k) / (d0 + k) (the planning sigma is the prior's)."""
    chi = stats.chi2.ppf(_QUANTILES, max(k, 1e-9))
    if not np.isfinite(d0):
        return np.ones_like(chi)
    return (d0 + chi) / (d0 + k)


@lru_cache(maxsize=4096)
def _location_cap(m: int, k: float) -> float:
    return location_df(np.full(max(m, 1), max(k, 1e-9)))


def _prior_df(d0: float | tuple[float, float], k: np.ndarray) -> np.ndarray:
    """The prior df a study with ``k`` residual df per contrast would have: a number as given, or
    ``(d0_fit, m)``: the fitted prior df capped at the df of a location fitted on ``m`` contrasts with
    ``k`` df each (:func:`capgate.analysis.noise.location_df`)."""
    k = np.asarray(k, dtype=float)
    if isinstance(d0, tuple):
        cap = np.array([_location_cap(int(round(d0[1])), round(float(x), 6)) for x in np.atleast_1d(k)])
        return np.minimum(float(d0[0]), cap).reshape(np.shape(k))
    return np.full(np.shape(k), float(d0))


def _unit(n: np.ndarray, paired: bool, d0: float | tuple[float, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                                 np.ndarray]:
    """(se multiplier of sigma, residual df of the new data, prior df, total df) for n seeds per arm."""
    n = np.asarray(n, dtype=float)
    k = n - 1 if paired else 2 * (n - 1)
    mult = 1 / np.sqrt(n) if paired else np.sqrt(2 / n)
    d = _prior_df(d0, k)
    return mult, k, d, d + k


def _draws(k: np.ndarray, d0: np.ndarray) -> np.ndarray:
    return np.vstack([_scale_draws(float(x), round(float(d), 3)) for x, d in zip(np.atleast_1d(k), np.atleast_1d(d0))])


def power_helps(delta: float, sigma: float, margin: float, n: int | np.ndarray, *, alpha: float, d0: float,
                paired: bool) -> np.ndarray:
    """P(helps) with n seeds per arm at a true gain ``delta`` > 0: two-sided test at ``alpha`` and the
    estimate beyond the margin (``sigma``: SD of a paired difference, or of one arm when unpaired)."""
    mult, k, d, df = _unit(np.atleast_1d(n), paired, d0)
    s = (sigma * mult)[:, None]
    tc = stats.t.ppf(1 - alpha / 2, np.minimum(df, 1e6))[:, None]
    thr = np.maximum(margin, tc * s * np.sqrt(_draws(k, d)))
    out = np.mean(stats.norm.sf((thr - delta) / s), axis=1)
    return out if np.ndim(n) else float(out[0])


def power_within(delta: float, sigma: float, margin: float, n: int | np.ndarray, *, alpha: float, d0: float,
                 paired: bool) -> np.ndarray:
    """P(within_noise) with n seeds per arm at a true gain ``delta`` (TOST at ``alpha``)."""
    mult, k, d, df = _unit(np.atleast_1d(n), paired, d0)
    s = (sigma * mult)[:, None]
    t1 = stats.t.ppf(1 - alpha, np.minimum(df, 1e6))[:, None]
    half = margin - t1 * s * np.sqrt(_draws(k, d))
    p = stats.norm.cdf((half - delta) / s) - stats.norm.cdf((-half - delta) / s)
    out = np.mean(np.where(half > 0, p, 0.0), axis=1)
    return out if np.ndim(n) else float(out[0])


def seeds_needed(sigma: float, margin: float, *, alpha: float, d0: float | tuple[float, int], paired: bool,
                 power: float = 0.8, cap: int = 100) -> tuple[int | None, int | None]:
    """(seeds for within_noise at true gain 0, seeds for helps at true gain 2 x margin) per arm, each
    the smallest n in 2..cap reaching ``power`` (``cap`` means "cap or more"); None when sigma is unknown.

    ``d0``: the prior df, or ``(d0_fit, m)`` for a family of ``m`` contrasts (the prior df then grows
    with the seeds, up to the fitted one)."""
    if not (np.isfinite(sigma) and sigma > 0 and margin > 0):
        return None, None
    if not isinstance(d0, tuple):
        d0 = float(d0) if np.isfinite(d0) else np.inf
    n = np.arange(2, cap + 1)
    out = []
    for fn, delta in ((power_within, 0.0), (power_helps, 2 * margin)):
        ok = np.flatnonzero(fn(delta, sigma, margin, n, alpha=alpha, d0=d0, paired=paired) >= power)
        out.append(int(n[ok[0]]) if len(ok) else cap)
    return out[0], out[1]


def own_prior_df(df: float, n: int, paired: bool) -> float:
    """A contrast's own prior df: its moderated df less the residual df of its ``n`` seeds per arm
    (0 for a cell whose variance the robust prior set apart)."""
    residual = n - 1 if paired else 2 * (n - 1)
    return max(0.0, float(df) - residual) if np.isfinite(df) else 0.0


def p_decided(gain: float, sigma: float, margin: float, n: int | np.ndarray, *, alpha: float, d0: float,
              paired: bool) -> np.ndarray:
    """P(a verdict other than inconclusive) at ``n`` seeds per arm when the true gain is ``gain``:
    P(helps or hurts) + P(within_noise) (the two events are disjoint while the margin exceeds 0)."""
    g = abs(gain) if np.isfinite(gain) else 0.0
    sig = power_helps(g, sigma, margin, n, alpha=alpha, d0=d0, paired=paired) if g > 0 else 0.0 * np.asarray(n)
    return np.minimum(1.0, sig + power_within(g, sigma, margin, n, alpha=alpha, d0=d0, paired=paired))


def seeds_to_decide(gain: float, sigma: float, margin: float, n_now: int, *, alpha: float, d0: float, paired: bool,
                    power: float = 0.8, cap: int = 100) -> int | None:
    """The seeds per arm of :data:`SEEDS_RULE`: the smallest n in ``max(2, n_now + 1)..cap`` with
    :func:`p_decided` >= ``power``; ``cap`` when none (that many or more); None when the SD or the margin
    is unknown."""
    if not (np.isfinite(sigma) and sigma > 0 and np.isfinite(margin) and margin > 0):
        return None
    lo = max(2, int(n_now) + 1)
    if lo >= cap:
        return int(cap)
    n = np.arange(lo, cap + 1)
    ok = np.flatnonzero(p_decided(gain, sigma, margin, n, alpha=alpha, d0=d0, paired=paired) >= power)
    return int(n[ok[0]]) if len(ok) else int(cap)
