"""The report reads the one column name its producer writes and fails loudly on another."""

from __future__ import annotations

import pandas as pd
import pytest

from capgate.analysis.pareto import pareto_table
from capgate.errors import CapgateError
from capgate.report.compare import PARETO_COLUMNS, pareto_groups, ranking_groups


def _pareto() -> pd.DataFrame:
    y = pd.DataFrame({"task": ["detection"] * 2, "backbone": ["a", "b"], "params": [100_000, 400_000]})
    ranks = pd.DataFrame({"task": ["detection"] * 2, "eval_set": ["flir/rgb"] * 2, "init": ["scratch"] * 2,
                          "backbone": ["a", "b"], "mean": [0.30, 0.25]})
    return pareto_table(y, ranks)


def test_the_producer_writes_what_the_report_reads():
    table = _pareto()
    assert tuple(table.columns) == PARETO_COLUMNS
    assert list(table["on_front"]) == [True, False]  # b costs more and scores less: dominated
    (group,) = pareto_groups(table, {"metric": {"detection": "map"}})
    assert group["heading"] == "Detection · evaluated on flir/rgb"
    assert [f["title"] for f in group["figures"]] == ["Pareto front: mAP vs parameters (detection · evaluated on flir/rgb)"]


def test_a_renamed_column_fails_loudly():
    with pytest.raises(CapgateError, match=r"no column\(s\) \['metric'\]"):
        pareto_groups(_pareto().rename(columns={"metric": "value"}), {"metric": {}})
    pairs = pd.DataFrame({"task": ["detection"], "eval_set": ["x"], "init": ["scratch"], "upper": ["a"],
                          "lower": ["b"], "gap_pp": [0.01], "p_keep": [0.9]})
    with pytest.raises(CapgateError, match=r"\['gap'\]"):
        ranking_groups({"rankings": []}, {"pairs": pairs})
