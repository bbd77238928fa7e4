"""The summary.json contract: it round-trips, a report renders from required columns only, a table
without a successful run says so, and check's per-cell tolerance catches a 5 pp shift of one cell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import SUMMARY_SCHEMA, analyze, build_summary, read_summary, simulate_results, validate_summary
from capgate.check import compare
from capgate.cli import main
from capgate.errors import CapgateError, InputError
from capgate.report import render_report
from capgate.schema import REQUIRED_COLUMNS
from helpers import detection_truth


def _table(**kw) -> pd.DataFrame:
    return simulate_results(detection_truth(seeds=4, run_sd=0.004, noise_sd=0.002, seed_sd=0.004, **kw), seed=5)


def test_summary_round_trips(tmp_path: Path):
    s = build_summary(analyze(_table(), {"n_boot": 20}))
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(s, allow_nan=False))
    back = read_summary(path)
    assert back == s and back["schema"] == SUMMARY_SCHEMA == "capgate-summary/2"
    assert validate_summary(back, "x") is back
    assert {c["study"] for c in back["cells"]} == {"det"} and all("sd_mod" in c for c in back["cells"])
    assert back["families"][0]["margin"] == 0.01 and back["families"][0]["n_contrasts"] == 8


def test_an_older_schema_is_refused_with_the_fix():
    with pytest.raises(InputError, match=r"summary schema is 'capgate-summary/1', this capgate reads 'capgate-summary/2'"):
        validate_summary({"schema": "capgate-summary/1", "cells": [], "verdicts": [], "gates": []}, "old.json")


def test_a_report_renders_from_the_required_columns_only(tmp_path: Path):
    t = _table()
    slim = t[list(REQUIRED_COLUMNS) + ["map"]]
    assert "macs" not in slim.columns and "wall_seconds" not in slim.columns
    index = render_report(slim, tmp_path / "r", plan={"n_boot": 10})
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert index.exists() and len(s["verdicts"]) == 8
    cells = analyze(slim, {"n_boot": 0}).cells
    assert cells["macs"].isna().all()  # unknown, shown as unknown: never invented


def test_no_successful_run_renders_a_headline_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    t = _table()
    t["status"] = "failed"
    t["map"] = np.nan
    with pytest.raises(CapgateError, match="no successful run"):
        render_report(t, tmp_path / "r", plan={"n_boot": 0})
    page = (tmp_path / "r" / "index.html").read_text()
    assert "No successful run in the results" in page
    path = tmp_path / "failed.csv"
    t.to_csv(path, index=False)
    with pytest.raises(SystemExit) as exc:
        main(["report", str(path), "-o", str(tmp_path / "r2")])
    assert exc.value.code == 1 and "no successful run" in capsys.readouterr().err


def test_check_fails_a_5pp_shift_of_one_in_domain_cell():
    t = _table()
    base = build_summary(analyze(t, {"n_boot": 0}))
    key = next(c["key"] for c in base["cells"] if c["shift"] == "in_domain" and c["init"] == "scratch")
    moved = json.loads(json.dumps(base))
    cell = next(c for c in moved["cells"] if c["key"] == key)
    cell["mean"] += 0.05
    r = compare(base, moved)
    # the cell, and the systematic test of its init (one cell moved the init's mean shift beyond its pooled SE)
    assert [(f.check, f.key.split(" (")[0]) for f in r.failures] == [("cell", key), ("systematic", "det|detection|scratch")]
    # the tolerance is the cell's own stabilised SE, not a pooled one
    row = next(x for x in r.rows if x.key == key)
    assert float(row.tolerance.strip("±pp ")) < 5.0
    # fresh seeds of the same study pass
    fresh = build_summary(analyze(simulate_results(detection_truth(seeds=4, run_sd=0.004, noise_sd=0.002,
                                                                   seed_sd=0.004), seed=6), {"n_boot": 0}))
    assert not [f for f in compare(base, fresh).failures if f.check == "cell"]


def test_a_collapsed_run_is_listed_with_its_run_id(tmp_path: Path):
    t = _table()
    ok = (t["backbone"] == "efficientnet_b0@w1.0") & (t["init"] == "imagenet") & (t["seed"] == 2)
    run_id = t.loc[ok, "run_id"].iloc[0]
    t.loc[ok, "map"] = 0.01  # a collapsed run marked ok
    a = analyze(t, {"n_boot": 0})
    assert set(a.outlier_runs["run_id"]) == {run_id} and len(a.outlier_runs) == 2  # both eval sets
    assert any(run_id in w for w in a.warnings)
    render_report(t, tmp_path / "r", plan={"n_boot": 0})
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Outlier runs" in page and run_id in page
