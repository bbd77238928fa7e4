"""Loading (parquet, CSV, study store) and validation errors that name the column, rows and fix."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import demo_truth, load_results, simulate_results, validate
from capgate.errors import ResultsError


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    fams = {"efficientnet": [("efficientnet_b0@w0.1d0.25 (B-7)", 41_874), ("efficientnet_b0@w0.5d0.5 (B-1)", 713_574)]}
    return simulate_results(demo_truth(seeds=2, families=fams, p_failed=0.2), seed=4)


def test_roundtrip_parquet_csv_and_store(table, tmp_path):
    table.to_parquet(tmp_path / "r.parquet")
    table.to_csv(tmp_path / "r.csv", index=False)
    runs = tmp_path / "study" / "runs"
    runs.mkdir(parents=True)
    for rid, g in table.groupby("run_id"):
        recs = json.loads(g.to_json(orient="records"))
        (runs / f"{rid}.json").write_text(json.dumps({"run_id": rid, "records": recs}))
    a = load_results(tmp_path / "r.parquet")
    b = load_results(tmp_path / "r.csv")
    c = load_results(tmp_path / "study")
    d = load_results(runs)
    key = ["run_id", "eval_set"]
    for other in (b, c, d):
        assert len(other) == len(table)
        x = a.sort_values(key).reset_index(drop=True)
        y = other.sort_values(key).reset_index(drop=True)
        assert (x["status"] == y["status"]).all()
        assert np.allclose(x["map"], y["map"], equal_nan=True)
        assert (x["params"] == y["params"]).all() and y["params"].dtype == np.int64
    assert (a["status"] == "failed").sum() > 0  # failed rows kept


def _err(t: pd.DataFrame) -> str:
    with pytest.raises(ResultsError) as exc:
        validate(t)
    return str(exc.value)


def test_missing_column(table):
    msg = _err(table.drop(columns=["shift"]))
    assert "missing required column(s) ['shift']" in msg


def test_wrong_type_names_rows(table):
    t = table.copy()
    t["seed"] = t["seed"].astype(object)
    t.loc[3, "seed"] = "three"
    msg = _err(t)
    assert "column 'seed' must be numeric (int)" in msg and "row 3 (run_id" in msg and "'three'" in msg


def test_fractional_int(table):
    t = table.copy()
    t["params"] = t["params"].astype(float)
    t.loc[5, "params"] = 1.5
    assert "column 'params' must hold integers; fractional values at row 5" in _err(t)


def test_duplicated_run_eval(table):
    t = pd.concat([table, table.iloc[[0]]], ignore_index=True)
    msg = _err(t)
    assert "duplicated (run_id, eval_set)" in msg and f"row 0 (run_id {table.run_id[0]})" in msg
    assert f"row {len(table)}" in msg


def test_metric_out_of_range(table):
    t = table.copy()
    ok = t.index[t["status"] == "ok"][0]
    t.loc[ok, "map"] = 31.5
    msg = _err(t)
    assert "metric 'map' out of [0, 1]" in msg and f"row {ok}" in msg and "divide percentages by 100" in msg


def test_unknown_status_and_shift(table):
    t = table.copy()
    t.loc[2, "status"] = "crashed"
    assert "unknown status ['crashed'] at row 2" in _err(t)
    t = table.copy()
    t.loc[7, "shift"] = "sideways"
    msg = _err(t)
    assert "unknown shift ['sideways'] at row 7" in msg and "cross_dataset" in msg


def test_ok_row_without_metric(table):
    t = table.copy()
    ok = t.index[t["status"] == "ok"][1]
    t.loc[ok, "map"] = np.nan
    assert f"status 'ok' rows without 'map' at row {ok}" in _err(t)


def test_run_records_must_agree(table):
    t = table.copy()
    rid = t.loc[0, "run_id"]
    second = t.index[(t["run_id"] == rid)][1]
    t.loc[second, "init"] = "imagenet_coco" if t.loc[0, "init"] != "imagenet_coco" else "scratch"
    msg = _err(t)
    assert rid in msg and "['init']" in msg


def test_unreadable_inputs(tmp_path):
    with pytest.raises(ResultsError, match="no such file"):
        load_results(tmp_path / "nope.parquet")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(ResultsError, match="unknown results format '.txt'"):
        load_results(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no run records found"):
        load_results(tmp_path / "empty")
    bad = tmp_path / "bad" / "runs"
    bad.mkdir(parents=True)
    (bad / "r1.json").write_text("{not json")
    with pytest.raises(ResultsError, match=r"r1.json: not a readable JSON run record"):
        load_results(tmp_path / "bad")
