"""A tiny classification study end to end through the CLI: run-grid -> report -> check."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import tiny_classification_spec

from capgate.cli import cli

@pytest.mark.slow
def test_classification_grid_report_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    spec = tiny_classification_spec(tmp_path)
    storage = tmp_path / "store"

    dry = runner.invoke(cli, ["run-grid", str(spec), "--dry-run"])
    assert dry.exit_code == 0, dry.output

    ran = runner.invoke(cli, ["run-grid", str(spec), "--storage", str(storage), "--max-concurrent", "2"])
    assert ran.exit_code == 0, ran.output
    table = pd.read_parquet(storage / "tinycls" / "results.parquet")
    assert len(table) == 2 * 2 * 2 * 2  # rungs x inits x seeds x eval domains
    assert set(table["status"]) == {"ok"} and set(table["task"]) == {"classification"}
    assert set(table["shift"]) == {"in_domain", "cross_domain"}
    for col in ("top1", "top5", "macro_f1"):
        assert table[col].between(0, 1).all(), col
    assert (table["top5"] >= table["top1"]).all()  # 3 classes: top-5 covers all of them
    assert (table["top5"] == 1.0).all()
    assert (table["size_bytes"] > 0).all() and (table["peak_mem_bytes"] > 0).all()

    out = tmp_path / "report"
    rep = runner.invoke(cli, ["report", str(storage / "tinycls" / "results.parquet"), "-o", str(out)])
    assert rep.exit_code == 0, rep.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"] == ["classification"] and summary["metric"]["classification"] == "top1"
    gains = pd.read_csv(out / "gains.csv")
    assert len(gains) == 2 * 2 and set(gains["init"]) == {"imagenet"}  # rungs x eval domains
    assert "<svg" in (out / "index.html").read_text()

    baseline = tmp_path / "baseline.json"
    results = str(storage / "tinycls" / "results.parquet")
    upd = runner.invoke(cli, ["check", results, "--baseline", str(baseline), "--update-baseline"])
    assert baseline.is_file(), upd.output
    again = runner.invoke(cli, ["check", results, "--baseline", str(baseline), "--junit", str(tmp_path / "j.xml")])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "j.xml").read_text().startswith("<?xml")
