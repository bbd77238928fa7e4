"""The noise ``capgate check`` allows: pretraining-stage variance, minimum detectable shifts, and the
systematic shift test over all cells of an init.

**Stage variance.** Every fine-tuning seed of a pretrained cell starts from one of its pretraining
stages, so a rerun that retrains the stages (another machine, other stage seeds) moves all its seeds
together. A cell's mean then has variance ``se**2 + stage_var``. A summary whose cell carries ``se_rerun``
(the SE of its mean under a redraw of its ``n_stages >= 2`` pretraining replicates, estimated from the
replicate means and moderated: :func:`capgate.analysis.stages.rerun_se`) gives ``stage_var = se_rerun**2 -
se**2`` (at least 0). A cell with a ``stage_sd`` (and ``n_stages``, default 1) gives ``stage_var =
stage_sd**2 / k`` (``stage_sd`` null: no stage component). Otherwise a cell of a pretrained init
(any init but the plan's ``baseline``) gets the conservative rule: ONE replicate whose between-stage SD
equals the cell's seed-to-seed SD (``sd_mod``, else ``sd``), i.e. ``stage_var = sd**2``, so its
tolerance admits a redraw of its stage on each side. Cells of the baseline init have none.

**Minimum detectable shift** of a comparison with tolerance ``tol`` and combined standard error ``s``:
``tol + z_0.8 * s`` (:data:`Z_POWER` = 0.84), the shift the check catches with 80 % power at its alpha.

**Systematic test** (one per (study, task, init) with at least two cells in both summaries): the mean of
the cells' differences ``d = mean(now - base)`` against ``max(z * SE, abs_tol)``. Cells that share runs
or stages are not independent, so cells are grouped into units that share randomness: (study, task,
backbone, init), which holds the eval sets of one run and the train sets of one stage, split further by
train set where no cell has a stage component. Within a unit the SD of the mean difference is at most
the mean of its cells' SDs (perfect correlation, Cauchy-Schwarz); units are independent:
``SE = sqrt(sum_u (m_u / m)**2 * sd_u**2)`` over units ``u`` of ``m_u`` cells (``m`` in all), an upper
bound on the true SE, so the test keeps its alpha whatever the correlation. ``z`` is Bonferroni over the
systematic tests at the check's family alpha. A shift of every cell of an init by ``delta`` moves ``d`` by
``delta`` while its SE shrinks with the number of independent units: such a shift fails here before any
single cell does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from capgate.analysis.summary import _num

__all__ = ["Z_POWER", "POWER", "pretrained_inits", "stage_var", "cell_sd", "mds", "Shift", "systematic_shifts"]

POWER = 0.8
#: One-sided normal quantile of :data:`POWER`.
Z_POWER = NormalDist().inv_cdf(POWER)


def pretrained_inits(summary: dict[str, Any]) -> set[str]:
    """Inits of the summary's cells other than the plan's baseline (default ``scratch``)."""
    base = str((summary.get("plan") or {}).get("baseline") or "scratch")
    return {str(c.get("init")) for c in summary["cells"] if str(c.get("init")) != base}


def stage_var(cell: dict[str, Any], pretrained: set[str]) -> tuple[float, str]:
    """``(variance of the cell's mean from its pretraining stages, how it was found)``: ``replicates`` (its
    ``se_rerun``), ``summary`` (its ``stage_sd``), ``assumed`` (the conservative one-replicate rule) or
    ``none``."""
    rerun, se = _num(cell.get("se_rerun")), _num(cell.get("se"))
    if rerun is not None:
        return max(rerun * rerun - (se or 0.0) ** 2, 0.0), "replicates"
    if "stage_sd" in cell:
        sd = _num(cell.get("stage_sd")) or 0.0
        k = max(_num(cell.get("n_stages")) or 1.0, 1.0)
        return sd * sd / k, "summary"
    if str(cell.get("init")) in pretrained:
        sd = _num(cell.get("sd_mod"))
        sd = _num(cell.get("sd")) if sd is None else sd
        return (sd or 0.0) ** 2, "assumed"
    return 0.0, "none"


def cell_sd(se: float | None, stage: float) -> float:
    """The SD of one side's cell mean: its seed SE (None counts as 0) and its stage variance."""
    return math.sqrt((se or 0.0) ** 2 + stage)


def mds(tol: float, se: float) -> float:
    """Minimum detectable shift at 80 % power for a two-sided test with tolerance ``tol`` and SE ``se``."""
    return tol + Z_POWER * se


@dataclass(frozen=True)
class Shift:
    """One systematic test: the mean difference of ``n_cells`` cells in ``n_units`` independent units."""

    key: str
    n_cells: int
    n_units: int
    base_mean: float
    cur_mean: float
    diff: float
    se: float
    tol: float
    mds: float

    @property
    def passed(self) -> bool:
        return abs(self.diff) <= self.tol + 1e-12


def systematic_shifts(pairs: list[tuple[dict, dict, float, float, bool]], z: float | None, abs_tol: float,
                      z_of: Any) -> list[Shift]:
    """The systematic tests over ``pairs`` of (baseline cell, current cell, sd_base, sd_current, whether
    the cell has a stage component), each cell with both means known; ``z`` None: ``z_of(number of
    tests)`` (Bonferroni)."""
    groups: dict[tuple, list[tuple[dict, dict, float, float, bool]]] = {}
    for p in pairs:
        b = p[0]
        groups.setdefault((b.get("study"), b.get("task"), b.get("init")), []).append(p)
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    zz = z_of(len(groups)) if z is None else z
    out = []
    for (study, task, init), cells in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        staged = any(p[4] for p in cells)
        units: dict[tuple, list[tuple[float, float]]] = {}
        for b, c, sd_b, sd_c, _ in cells:
            unit = (b.get("backbone"),) if staged else (b.get("backbone"), b.get("train_set"))
            units.setdefault(unit, []).append((float(c["mean"]) - float(b["mean"]), math.hypot(sd_b, sd_c)))
        m = len(cells)
        diff = sum(d for u in units.values() for d, _ in u) / m
        se = math.sqrt(sum((len(u) / m) ** 2 * (sum(s for _, s in u) / len(u)) ** 2 for u in units.values()))
        tol = max(zz * se, abs_tol)
        key = "|".join(str(x) for x in (study, task, init) if x is not None) + f" ({m} cells)"
        out.append(Shift(key, m, len(units), sum(float(b["mean"]) for b, *_ in cells) / m,
                         sum(float(c["mean"]) for _, c, *_ in cells) / m, diff, se, tol, mds(tol, se)))
    return out
