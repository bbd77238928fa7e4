"""Helpers shared by several test modules (test modules import from here, never from each other)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

GOLDEN = Path(__file__).resolve().parent / "golden" / "report"
#: Significant digits the report golden stores; the test compares numbers at relative 1e-4 (the
#: moderated variances come from an optimiser), strings and verdicts exactly.
GOLDEN_DIGITS = 6
#: The golden's table and plan: 10 seeds (so helps, within_noise and inconclusive all occur), a few
#: failed runs, one family; a fixed design (no sequential looks) with a 2 pp margin.
GOLDEN_SEED = 7
GOLDEN_PLAN = {"n_boot": 50, "margin": 0.02}


def golden_table() -> pd.DataFrame:
    from capgate.analysis import simulate_results
    from capgate.analysis.simulate import _DEFAULT_FAMILIES, Truth

    truth = Truth(seeds=10, p_failed=0.02, families={"efficientnet": _DEFAULT_FAMILIES["efficientnet"]})
    return simulate_results(truth, seed=GOLDEN_SEED)


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return v if not math.isfinite(v) or v == 0 else float(f"{v:.{GOLDEN_DIGITS}g}")
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_round(x) for x in v]
    return v


def golden_report(outdir: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Render the report of the golden table into ``outdir``; its summary and gains, rounded."""
    from capgate.report.render import render_report

    render_report(golden_table(), outdir, dict(GOLDEN_PLAN))
    summary = _round(json.loads((Path(outdir) / "summary.json").read_text()))
    gains = pd.read_csv(Path(outdir) / "gains.csv")
    for col in gains.select_dtypes("float").columns:
        gains[col] = [_round(float(x)) for x in gains[col]]
    return summary, gains
