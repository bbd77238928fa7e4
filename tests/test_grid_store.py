"""The study store (atomic, keyed by run_id, never duplicating) and the run-grid CLI's dry run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from capgate.schema import REQUIRED_COLUMNS
from capgate.cli import cli
from capgate.errors import ResultsError
from capgate.store.study import Store

REPO = Path(__file__).resolve().parents[1]


def row(run_id: str, eval_set: str, status: str = "ok", m: float = 0.5) -> dict:
    r = {c: "x" for c in REQUIRED_COLUMNS}
    r.update(run_id=run_id, eval_set=eval_set, status=status, map=m, ap50=m, ap75=m, seed=0, params=10,
             macs=20, width=0.1, depth=0.25, resolution=64, wall_seconds=1.0, task="detection",
             shift="in_domain")
    return r


def test_write_once_failed_replaced_final_kept(tmp_path: Path) -> None:
    store = Store(tmp_path, "s")
    assert store.write("r1", {"seed": 0}, [row("r1", "a", status="failed", m=math.nan),
                                           row("r1", "b", status="failed", m=math.nan)])
    assert store.write("r2", {"seed": 1}, [row("r2", "a", status="diverged", m=math.nan)])
    assert store.write("r1", {"seed": 0}, [row("r1", "a", m=0.7), row("r1", "b", m=0.7)])  # the retry
    # a second writer of a final record (a duplicated trial) never replaces it
    assert not store.write("r1", {"seed": 0}, [row("r1", "a", m=0.1), row("r1", "b", m=0.1)])
    assert not store.write("r2", {"seed": 1}, [row("r2", "a", m=0.9)])
    assert store.stored_ids() == ["r1", "r2"]
    assert not list((tmp_path / "s" / "runs").glob(".*"))  # no temp files left
    table = store.table()
    assert len(table) == 3 and table.loc[table.run_id == "r1", "map"].tolist() == [0.7, 0.7]
    assert list(table.columns[:len(REQUIRED_COLUMNS)]) == list(REQUIRED_COLUMNS)
    assert store.status("r2") == "diverged" and store.status("nope") is None


def test_half_written_or_failed_records_are_retrained(tmp_path: Path) -> None:
    store = Store(tmp_path, "s")
    store.write("ok1", {}, [row("ok1", "a")])
    store.write("bad", {}, [row("bad", "a", status="failed")])
    (tmp_path / "s" / "runs" / "torn.json").write_text('{"run_id": "torn", "records": [{"run')
    assert store.read("torn") is None
    assert store.done(["ok1", "bad", "torn", "missing"]) == {"ok1"}
    with pytest.raises(ResultsError, match="carries run_id"):
        store.write("r9", {}, [row("r8", "a")])


def test_collect_writes_parquet_and_csv_keeping_failed_rows(tmp_path: Path) -> None:
    store = Store(tmp_path, "s")
    with pytest.raises(ResultsError, match="no run records stored yet"):
        store.collect()
    store.write("r1", {}, [row("r1", "a"), row("r1", "b")])
    store.write("r2", {}, [row("r2", "a", status="failed", m=math.nan)])
    df, path = store.collect(["r1", "r2"], "detection")
    assert path == tmp_path / "s" / "results.parquet"
    assert pd.read_parquet(path)["status"].tolist() == ["ok", "ok", "failed"]
    assert len(pd.read_csv(tmp_path / "s" / "results.csv")) == 3
    doc = json.loads((tmp_path / "s" / "runs" / "r1.json").read_text())
    assert doc["run_id"] == "r1" and len(doc["records"]) == 2


def test_dry_run_lists_every_run_and_stage_without_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLVIP_ROOT", raising=False)
    res = CliRunner().invoke(cli, ["run-grid", str(REPO / "experiments" / "llvip_flir.yaml"), "--dry-run",
                                   "--set", "seeds=3"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("study llvip_flir (detection): 252 runs = 2 train sets x 14 rungs x 3 inits "
                                 "x 3 seeds; 504 result records; 28 pretraining stages")
    lines = res.output.splitlines()
    assert sum(1 for ln in lines if " init=" in ln) == 252
    assert sum(1 for ln in lines if "classification " in ln or "detection  " in ln) == 28


def test_run_grid_bad_spec_exit_2_names_the_key(tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "experiments" / "demo.yaml").read_text())
    spec["rungs"]["efficientnet"] = ["B-99"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    from capgate.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run-grid", str(path), "--dry-run"])
    assert exc.value.code == 2
    res = CliRunner().invoke(cli, ["run-grid", str(path), "--dry-run"])
    assert f"{path}: spec key 'rungs.efficientnet[0]' = 'B-99': unknown rung" in str(res.exception)
    res = CliRunner().invoke(cli, ["run-grid", str(REPO / "experiments" / "demo.yaml"), "--dry-run",
                                   "--set", "recipe.optimizer=adamx"])
    assert res.exit_code != 0 and "recipe.optimizer" in str(res.exception)
