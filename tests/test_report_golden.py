"""The report's numbers and verdicts do not move under a refactoring: the report of a fixed simulated
table under a fixed plan is compared with a golden written by the code before it.

Verdicts, statuses and texts must match exactly; numbers to relative 1e-4 (the golden stores six
significant digits; the stabilised variances come from an optimiser). An intended statistical change
(e.g. a new noise model) changes the golden: regenerate it with
``PYTHONPATH=. python tests/golden/make_report_golden.py`` and say why in the commit.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import pytest
from helpers import GOLDEN, golden_report

REGENERATE = "PYTHONPATH=. python tests/golden/make_report_golden.py"


def _same(a: Any, b: Any, where: str) -> list[str]:
    """The differences between two JSON values: numbers at rel 1e-4, everything else exactly."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(set(a) ^ set(b))} differ"]
        return [d for k in sorted(a) for d in _same(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items, golden {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _same(x, y, f"{where}[{i}]")]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        ok = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9)
        return [] if ok else [f"{where}: {a!r}, golden {b!r}"]
    return [] if a == b else [f"{where}: {a!r}, golden {b!r}"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], pd.DataFrame]:
    return golden_report(tmp_path_factory.mktemp("golden"))


def test_summary_matches_the_golden(report: tuple[dict[str, Any], pd.DataFrame]) -> None:
    golden = json.loads((GOLDEN / "summary.json").read_text())
    now = report[0]
    assert [v["verdict"] for v in now["verdicts"]] == [v["verdict"] for v in golden["verdicts"]]
    assert {v["verdict"] for v in golden["verdicts"]} == {"helps", "within_noise", "inconclusive"}
    diffs = _same(now, golden, "summary")
    assert not diffs, f"{len(diffs)} differences from the golden (if intended: {REGENERATE}): {diffs[:10]}"


def test_gains_match_the_golden(report: tuple[dict[str, Any], pd.DataFrame]) -> None:
    golden = pd.read_csv(GOLDEN / "gains.csv")
    now = report[1]
    assert list(now.columns) == list(golden.columns)
    assert list(now["key"]) == list(golden["key"])
    assert list(now["verdict"]) == list(golden["verdict"])
    diffs = _same(json.loads(now.to_json(orient="records")), json.loads(golden.to_json(orient="records")), "gains")
    assert not diffs, f"{len(diffs)} differences from the golden (if intended: {REGENERATE}): {diffs[:10]}"
