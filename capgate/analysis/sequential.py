"""Group-sequential boundaries: deciding after every round of seeds without inflating false claims.

A cell that is analysed after each round of new seeds is tested repeatedly; testing each look at
the fixed-sample level ``alpha`` would inflate the chance of a false claim well above ``alpha``.
capgate uses the Lan–DeMets alpha-spending approach (Lan & DeMets 1983, Biometrika 70:659): a
spending function ``a(t)`` says how much of the two-sided type-I error may be spent by the
information fraction ``t`` (here: seeds present / the pre-declared maximum seeds), and look ``k``'s
boundary ``c_k`` on the z scale solves

    P(|Z_1| < c_1, ..., |Z_{k-1}| < c_{k-1}, |Z_k| >= c_k) = a(t_k) - a(t_{k-1})

under the null, where ``Z_k = S_k / sqrt(t_k)`` and ``S`` is standard Brownian motion (the
canonical joint distribution of sequential z statistics, Jennison & Turnbull 2000, ch. 3). The
probabilities are computed by recursive numerical integration of the density of ``S`` on the
continuation region (Armitage, McPherson & Rowe 1969), exactly, not by simulation.

Spending functions:

- ``obrien_fleming``: ``a(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t))`` — spends almost nothing early;
  the last look's boundary is close to the fixed-sample one.
- ``pocock``: ``a(t) = alpha ln(1 + (e - 1) t)`` — roughly equal boundaries at every look.

Looks beyond the last planned fraction (``t > 1``) are capped at ``t = 1`` so the total spent never
exceeds ``alpha``. The nominal level of look ``k``, ``2 (1 - Phi(c_k))``, is what a per-look test
with estimated variance uses (its t quantile at that level, the usual small-sample adaptation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

__all__ = ["SPENDING", "spent", "boundaries", "nominal_levels"]

SPENDING = ("obrien_fleming", "pocock")

_GRID = 401  # points of the integration grid on the continuation region (boundaries within 3e-5 of 1601 points)


def spent(t: float | np.ndarray, alpha: float, kind: str = "obrien_fleming") -> np.ndarray:
    """Two-sided type-I error spent by information fraction ``t`` (clipped to [0, 1])."""
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == "obrien_fleming":
        z = stats.norm.ppf(1.0 - alpha / 2.0)
        with np.errstate(divide="ignore"):
            out = 2.0 - 2.0 * stats.norm.cdf(z / np.sqrt(t))
        return np.where(t > 0, out, 0.0)
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1.0) * t)
    raise ValueError(f"unknown spending function {kind!r}; valid: {', '.join(SPENDING)}")


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    t = np.minimum(np.asarray(fractions, dtype=float), 1.0)
    if t.ndim != 1 or len(t) == 0:
        raise ValueError("information fractions must be a non-empty 1-d sequence")
    if (t <= 0).any() or (np.diff(t) < 0).any():
        raise ValueError(f"information fractions must be positive and non-decreasing, got {list(fractions)}")
    return t


def boundaries(fractions: Sequence[float], alpha: float = 0.05, kind: str = "obrien_fleming") -> np.ndarray:
    """Two-sided z boundaries ``c_1..c_K`` for looks at the given information fractions.

    ``fractions`` are positive and non-decreasing (values above 1 count as 1). A look that adds no
    information (equal fraction to the previous one) spends nothing and gets an infinite boundary.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    t = _check_fractions(fractions)
    a = spent(t, alpha, kind)
    out = np.full(len(t), np.inf)
    # density of S_{k} on the continuation region, on grid s (values f)
    s = f = None
    prev_t = 0.0
    for k, (tk, ak) in enumerate(zip(t, a)):
        inc = ak - (a[k - 1] if k else 0.0)
        dt = tk - prev_t
        if dt <= 1e-12 or inc <= 1e-15:
            if s is not None and dt > 1e-12:  # information grows, nothing spent: just diffuse
                s_new = np.linspace(s[0] - 8 * math.sqrt(dt), s[-1] + 8 * math.sqrt(dt), _GRID)
                f = _diffuse(s, f, s_new, dt)
                s = s_new
            elif s is None:
                s = np.linspace(-8 * math.sqrt(tk), 8 * math.sqrt(tk), _GRID)
                f = stats.norm.pdf(s, scale=math.sqrt(tk))
            prev_t = tk
            continue
        if s is None:
            c = stats.norm.ppf(1.0 - inc / 2.0)
            out[k] = c
            lim = c * math.sqrt(tk)
            s = np.linspace(-lim, lim, _GRID)
            f = stats.norm.pdf(s, scale=math.sqrt(tk))
        else:
            sd = math.sqrt(dt)

            def crossing(c: float) -> float:
                lim = c * math.sqrt(tk)
                # P(|s + X| >= lim), X ~ N(0, dt), integrated against f
                p = stats.norm.sf((lim - s) / sd) + stats.norm.cdf((-lim - s) / sd)
                return float(np.trapezoid(f * p, s)) - inc

            lo, hi = 0.0, 12.0
            c = optimize.brentq(crossing, lo, hi, xtol=1e-10) if crossing(lo) > 0 > crossing(hi) else hi
            out[k] = c
            lim = c * math.sqrt(tk)
            s_new = np.linspace(-lim, lim, _GRID)
            f = _diffuse(s, f, s_new, dt)
            s = s_new
        prev_t = tk
    return out


def _diffuse(s: np.ndarray, f: np.ndarray, s_new: np.ndarray, dt: float) -> np.ndarray:
    """Density at ``s_new`` of ``u + X`` with ``u ~ f`` on grid ``s`` and ``X ~ N(0, dt)``."""
    sd = math.sqrt(dt)
    w = np.gradient(s) if len(s) > 1 else np.ones(1)
    w = w.copy()
    w[0] /= 2.0
    w[-1] /= 2.0
    # chunked to bound memory: (len(s_new), len(s)) kernel
    out = np.empty(len(s_new))
    for i in range(0, len(s_new), 400):
        z = (s_new[i:i + 400, None] - s[None, :]) / sd
        out[i:i + 400] = (np.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))) @ (f * w)
    return out


def nominal_levels(fractions: Sequence[float], alpha: float = 0.05, kind: str = "obrien_fleming") -> np.ndarray:
    """Per-look nominal two-sided levels ``2 (1 - Phi(c_k))`` (0 where a look spends nothing)."""
    c = boundaries(fractions, alpha, kind)
    return np.where(np.isfinite(c), 2.0 * stats.norm.sf(c), 0.0)


# --- repeated p-values: a p-value that stays valid whatever the number of looks -----------------------
#
# The repeated p-value of look k (Jennison & Turnbull 2000, section 9.1) is the smallest level
# alpha' at which the alpha'-spending design with looks at ``fractions[:k+1]`` rejects at look k:
# ``p*_k = inf {alpha' : |Z_k| >= c_k(alpha')}``. Since p*_k <= alpha' exactly when that design
# rejects at look k, P(p*_k <= alpha' for some k) <= alpha' under the null: a test on the p-value
# of whatever look a study stopped at keeps its level, and Holm's procedure on such p-values keeps
# the family-wise error rate. Boundaries are monotone in alpha', so c_k(alpha') is tabulated once
# per look schedule on a log grid and inverted by interpolation.

_ALPHA_GRID = np.geomspace(1e-6, 0.999, 60)
_TABLES: dict[tuple, np.ndarray] = {}


def _last_boundary_table(fractions: tuple[float, ...], kind: str) -> np.ndarray:
    key = (fractions, kind)
    if key not in _TABLES:
        _TABLES[key] = np.array([boundaries(fractions, a, kind)[-1] for a in _ALPHA_GRID])
    return _TABLES[key]


def repeated_p_value(z: float | np.ndarray, fractions: Sequence[float], kind: str = "obrien_fleming") -> float | np.ndarray:
    """The repeated two-sided p-value of z statistic(s) ``z`` at the last of the looks ``fractions``.

    With a single look at full information (``fractions == [1]``) this is the ordinary two-sided
    p-value ``2 (1 - Phi(|z|))``; an early look (fraction < 1) has spent only part of the level.
    ``z`` may be an array (one p-value per element, NaN stays NaN).
    """
    t = tuple(float(x) for x in _check_fractions(fractions))
    az = np.abs(np.asarray(z, dtype=float))
    if t == (1.0,):
        out = 2.0 * stats.norm.sf(az)
    else:
        c = _last_boundary_table(t, kind)  # non-increasing in alpha
        finite = np.isfinite(c)
        if not finite.any():
            out = np.where(np.isnan(az), np.nan, 1.0)
        else:
            cc, la = c[finite][::-1], np.log(_ALPHA_GRID[finite])[::-1]  # increasing boundary
            out = np.exp(np.interp(az, cc, la, left=0.0, right=la[-1]))
            out = np.where(az < cc[0], 1.0, out)
            out = np.where(az >= cc[-1], _ALPHA_GRID[0], out)
            out = np.where(np.isnan(az), np.nan, np.minimum(out, 1.0))
    return float(out) if np.ndim(out) == 0 else out


def z_from_t(t_stat: float, df: float) -> float:
    """The z value with the same two-sided p-value as a t statistic on ``df`` degrees of freedom
    (how a small-sample t test enters a design built on the normal scale)."""
    if not np.isfinite(t_stat):
        return t_stat
    p = 2.0 * stats.t.sf(abs(t_stat), df)
    return float(np.copysign(stats.norm.isf(p / 2.0), t_stat)) if p > 0 else float(np.copysign(np.inf, t_stat))


__all__ += ["repeated_p_value", "z_from_t", "sequential_tests"]


def _one_sided_repeated(z: np.ndarray, fractions: list[float], kind: str) -> np.ndarray:
    """Repeated one-sided p-values for H0 "the effect is <= 0" (large ``z`` rejects): half the two-sided
    repeated p-value on the side of ``z``, the usual one-sided use of a symmetric two-sided design at
    level 2 alpha (its chance of crossing the other boundary first is negligible)."""
    half = np.asarray(repeated_p_value(z, fractions, kind), dtype=float) / 2
    return np.where(np.asarray(z) > 0, half, 1 - half)


def sequential_tests(gain: np.ndarray, se: np.ndarray, df: np.ndarray, margin: np.ndarray,
                     looks: list[tuple[float, ...]], seq: dict[str, Any], alpha: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(p, p_tost, ci_low, ci_high) of a group-sequential design: repeated p-values and repeated
    confidence intervals at each contrast's current look.

    ``looks``: per contrast, the information fractions of the looks it has had
    (:func:`capgate.analysis.plan.sequential_looks`: seeds / the design's max_seeds; empty: not tested).
    Each t statistic is carried to the z scale with its df (:func:`z_from_t`) and replaced by its repeated p-value (valid whatever look a study stops at, so Holm
    on them keeps the family-wise error rate); TOST uses the two one-sided repeated p-values; the interval
    is the repeated confidence interval ``gain +- t(1 - a_k / 2, df) se`` with ``a_k`` the nominal level of
    the current look's boundary at ``alpha`` (it covers the true gain at every look at once with
    probability >= 1 - alpha).
    """
    n = len(gain)
    p, p_tost = np.full(n, np.nan), np.full(n, np.nan)
    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    for fr in set(looks):
        if not fr:
            continue
        idx = np.flatnonzero([lk == fr for lk in looks])
        g, s, d, mg = gain[idx], se[idx], df[idx], margin[idx]
        zf = np.vectorize(z_from_t)
        p[idx] = repeated_p_value(zf(g / s, d), list(fr), seq["spending"])
        ok_m = np.isfinite(mg) & (mg > 0)
        lower = _one_sided_repeated(zf((g + mg) / s, d), list(fr), seq["spending"])   # H0: gain <= -m
        upper = _one_sided_repeated(-zf((g - mg) / s, d), list(fr), seq["spending"])  # H0: gain >= +m
        p_tost[idx] = np.where(ok_m, np.maximum(lower, upper), np.nan)
        c = boundaries(list(fr), alpha, seq["spending"])[-1]
        a_k = 2 * stats.norm.sf(c)
        tc = stats.t.ppf(1 - a_k / 2, d) if a_k > 0 else np.inf
        lo[idx], hi[idx] = g - tc * s, g + tc * s
    return p, p_tost, lo, hi
