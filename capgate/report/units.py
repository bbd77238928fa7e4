"""Numbers with their units, as the report prints them.

Metrics are stored on a 0..1 scale; the report shows them in percent (``31.2 %``) and gains,
intervals and margins in percentage points (``+5.0 pp``). Parameter counts read ``812k`` /
``1.25M``. Missing values (None or NaN) print as an em dash, never as ``nan``.
"""

from __future__ import annotations

import math
from typing import Any

from capgate.schema import format_params as fmt_params  # the one formatter of parameter counts

__all__ = [
    "MISSING",
    "is_missing",
    "fmt_metric",
    "fmt_pp",
    "fmt_params",
    "fmt_count",
    "fmt_p",
    "fmt_float",
    "fmt_interval_pp",
    "metric_label",
]

MISSING = "—"

_METRIC_LABELS = {"map": "mAP", "ap50": "AP50", "ap75": "AP75", "top1": "top-1", "top5": "top-5", "macro_f1": "macro-F1"}


def is_missing(v: Any) -> bool:
    """True for None, NaN and non-numbers."""
    if v is None:
        return True
    try:
        return not math.isfinite(float(v))
    except (TypeError, ValueError):
        return True


def metric_label(metric: str) -> str:
    """Readable metric name: ``map`` -> ``mAP``, ``top1`` -> ``top-1``."""
    return _METRIC_LABELS.get(str(metric), str(metric))


def fmt_metric(v: Any, digits: int = 1) -> str:
    """A 0..1 metric in percent: ``0.3124`` -> ``31.2 %``."""
    return MISSING if is_missing(v) else f"{100 * float(v):.{digits}f} %"


def fmt_pp(v: Any, digits: int = 1, sign: bool = True) -> str:
    """A metric difference in percentage points: ``0.05`` -> ``+5.0 pp``."""
    if is_missing(v):
        return MISSING
    x = 100 * float(v)
    if abs(x) < 0.5 * 10**-digits:
        x = 0.0
    return f"{x:+.{digits}f} pp" if sign else f"{x:.{digits}f} pp"


def fmt_interval_pp(lo: Any, hi: Any, digits: int = 1) -> str:
    """A confidence interval in percentage points: ``[+1.0, +9.0] pp``."""
    if is_missing(lo) or is_missing(hi):
        return MISSING
    return f"[{100 * float(lo):+.{digits}f}, {100 * float(hi):+.{digits}f}] pp"


def fmt_count(v: Any, unit: str) -> str:
    """An integer count with its unit, singular when one: ``3, "seed"`` -> ``3 seeds``."""
    if is_missing(v):
        return MISSING
    n = int(round(float(v)))
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def fmt_p(v: Any) -> str:
    """A p-value: three decimals, ``< 0.001`` below that."""
    if is_missing(v):
        return MISSING
    x = float(v)
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def fmt_float(v: Any, digits: int = 3) -> str:
    """A plain number (Kendall's tau, a variance) with ``digits`` significant digits."""
    return MISSING if is_missing(v) else f"{float(v):.{digits}g}"
