"""A sanity test of the tiny study data the report and check tests share (``tests/helpers.py``):
tables from ``capgate.analysis.simulate_results`` with a small known truth, and a hand-written
summary whose every tolerance is hand-checkable."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from helpers import detection_truth, hand_summary, variant, write_table


def test_fixtures_are_consistent(tmp_path: Path) -> None:
    s = hand_summary()
    assert [c["se"] for c in s["cells"]] == [0.01] * 4
    assert variant(s, cells__0__mean=0.5)["cells"][0]["mean"] == 0.5 and s["cells"][0]["mean"] == 0.30
    table = pd.read_parquet(write_table(tmp_path / "det.parquet", detection_truth()))
    assert len(table) == 4 * 2 * 2 * 3  # rungs x inits x eval sets x seeds
    assert set(table["shift"]) == {"in_domain", "cross_dataset"}
