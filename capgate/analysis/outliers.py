"""Runs far below their siblings: the seeds of one cell that look collapsed.

A cell is one (study, task, family, backbone, train_set, eval_set, shift, init); its runs differ
only in the seed. A run whose metric lies far *below* the other seeds of its cell is flagged,
never dropped: the report lists it (with its ``run_id``) in the completeness section, so a
collapsed run cannot silently inflate a cell's noise or drag its mean.

The rule (a robust modified z-score, Iglewicz & Hoaglin 1993, one-sided)
-------------------------------------------------------------------------
For a cell with ``n >= min_seeds`` ok runs and metric values ``y``:

* ``med = median(y)``, ``mad = median(|y - med|)``
* ``scale = max(1.4826 * mad, abs_floor, rel_floor * |med|)``
* a run is flagged when ``(med - y_i) / scale > threshold``

``1.4826 * mad`` estimates the SD of normal noise; the floors keep a cell whose other seeds
agree exactly (``mad = 0``, e.g. two seeds at 0.375 and one at 0.047) from flagging a run over a
trivial difference. Defaults: ``threshold = 3.5`` (Iglewicz & Hoaglin's cut-off), ``abs_floor =
0.02`` metric units (2 pp of mAP or top-1; the demo's target run-to-run SD), ``rel_floor = 0.1``
(10% of the cell median), ``min_seeds = 3`` (with two seeds there is no majority to say which
one is off). Worked example: ``y = (0.42, 0.00, 0.44)`` -> ``med = 0.42``, ``mad = 0.02``,
``scale = max(0.0297, 0.02, 0.042) = 0.042``, ``z(0.00) = 0.42 / 0.042 = 10 > 3.5``: flagged;
``z(0.44) < 0``: not flagged (only runs below their siblings count).

Only rows with ``status == "ok"`` and a finite metric take part (diverged and failed runs are
reported as such elsewhere). Pure pandas: frame in, frame out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capgate.analysis.cells import CELL_COLUMNS
from capgate.schema import PRIMARY_METRIC

__all__ = ["flag_outliers", "OUTLIER_COLUMNS", "DEFAULT_THRESHOLD", "DEFAULT_ABS_FLOOR", "DEFAULT_REL_FLOOR",
           "DEFAULT_MIN_SEEDS"]

DEFAULT_THRESHOLD = 3.5
DEFAULT_ABS_FLOOR = 0.02
DEFAULT_REL_FLOOR = 0.1
DEFAULT_MIN_SEEDS = 3

#: Columns of :func:`flag_outliers`' result, one row per flagged run and eval set.
OUTLIER_COLUMNS = ("run_id", "cell", "seed", "metric", "value", "cell_median", "z", "reason")


def _cell_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in ("study", *CELL_COLUMNS) if c in table.columns]


def _label(key: tuple, cols: list[str]) -> str:
    d = dict(zip(cols, key))
    parts = [str(d[c]) for c in ("study", "family", "backbone", "init") if c in d]
    where = f"{d.get('train_set', '?')} -> {d.get('eval_set', '?')}"
    return " / ".join(parts + [where])


def flag_outliers(table: pd.DataFrame, *, threshold: float = DEFAULT_THRESHOLD,
                  abs_floor: float = DEFAULT_ABS_FLOOR, rel_floor: float = DEFAULT_REL_FLOOR,
                  min_seeds: int = DEFAULT_MIN_SEEDS) -> pd.DataFrame:
    """The ok runs whose primary metric lies far below the other seeds of their cell.

    ``table`` is a results table (one row per run x eval set; the columns of
    :data:`capgate.analysis.cells.CELL_COLUMNS`, ``run_id``, ``seed``, ``status`` and the task's
    primary metric). Returns a frame with :data:`OUTLIER_COLUMNS` (``cell`` is a readable label of
    the cell; ``z`` the one-sided robust z-score of the module docstring; ``reason`` says why in
    words), sorted by cell then value; empty (same columns) when nothing is flagged.
    """
    if threshold <= 0 or abs_floor < 0 or rel_floor < 0 or min_seeds < 2:
        raise ValueError(f"flag_outliers: threshold={threshold}, abs_floor={abs_floor}, rel_floor={rel_floor}, "
                         f"min_seeds={min_seeds}; need threshold > 0, floors >= 0, min_seeds >= 2")
    rows: list[dict] = []
    if table.empty:
        return pd.DataFrame(columns=list(OUTLIER_COLUMNS))
    ok = table[table["status"] == "ok"] if "status" in table.columns else table
    cols = _cell_columns(ok)
    for task, sub in ok.groupby("task", sort=True):
        metric = PRIMARY_METRIC[str(task)]
        if metric not in sub.columns:
            continue
        sub = sub[np.isfinite(pd.to_numeric(sub[metric], errors="coerce"))]
        for key, cell in sub.groupby(cols, sort=True, dropna=False):
            y = cell[metric].to_numpy(dtype=float)
            if len(y) < min_seeds:
                continue
            med = float(np.median(y))
            mad = float(np.median(np.abs(y - med)))
            scale = max(1.4826 * mad, abs_floor, rel_floor * abs(med))
            if scale <= 0:  # all floors 0 and the seeds agree exactly: nothing is far below
                continue
            for (_, r), v in zip(cell.iterrows(), y):
                z = (med - v) / scale
                if z > threshold:
                    rows.append({
                        "run_id": r["run_id"], "cell": _label(key if isinstance(key, tuple) else (key,), cols),
                        "seed": r.get("seed"), "metric": metric, "value": float(v), "cell_median": med,
                        "z": float(z),
                        "reason": (f"{metric} {v:.3f} is {med - v:.3f} below the median {med:.3f} of its "
                                   f"cell's {len(y)} seeds ({z:.1f} robust SDs > {threshold:g})"),
                    })
    out = pd.DataFrame(rows, columns=list(OUTLIER_COLUMNS))
    if not out.empty:
        out = out.sort_values(["cell", "value"], kind="mergesort").reset_index(drop=True)
    return out
