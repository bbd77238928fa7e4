"""The store on a real S3-compatible server (moto in server mode on 127.0.0.1): write-once
records with conditional PUTs, the results table, reading study folders back by URI, the
current spec's runs by default, and the per-epoch training state."""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path

import pandas as pd
import pytest
from s3server import make_bucket, s3_env  # noqa: F401  (fixture)

from capgate.store.location import is_remote, location
from capgate.analysis.load import load_results, study_selection
from capgate.store.study import Store
from capgate.schema import CURRENT_RUNS

pytest.importorskip("boto3")


def row(run_id: str, eval_set: str, status: str = "ok", m: float = 0.5) -> dict:
    return {"study": "s", "task": "detection", "run_id": run_id, "family": "efficientnet", "backbone": "b",
            "params": 10, "init": "scratch", "train_set": "llvip/rgb", "eval_set": eval_set,
            "shift": "in_domain" if eval_set == "llvip/rgb" else "cross_dataset", "seed": 0,
            "status": status, "map": m}


@pytest.fixture()
def bucket(s3_env) -> str:  # noqa: ANN001, F811
    return f"s3://{make_bucket(s3_env)}/studies"


def test_uris_are_remote_and_local_paths_are_not(tmp_path: Path) -> None:
    assert is_remote("s3://b/p") and is_remote("gs://b/p")
    assert not is_remote(tmp_path) and not is_remote(f"file://{tmp_path}")
    assert location(f"file://{tmp_path}").local == tmp_path


def test_exclusive_put_creates_once_on_s3(bucket: str) -> None:
    f = location(bucket) / "x" / "once.txt"
    f.write_text("first", exclusive=True)
    with pytest.raises(FileExistsError):
        f.write_text("second", exclusive=True)
    assert f.read_text() == "first"
    with pytest.raises(FileNotFoundError):
        (location(bucket) / "x" / "absent.txt").read_bytes()
    assert [g.name for g in (location(bucket) / "x").files()] == ["once.txt"]


def test_store_on_s3_writes_once_keeps_final_records_and_collects(bucket: str, caplog) -> None:  # noqa: ANN001
    store = Store(bucket, "s")
    assert store.write("r1", {}, [row("r1", "llvip/rgb"), row("r1", "flir/rgb", m=0.25)])
    with caplog.at_level(logging.WARNING, logger="capgate.store.study"):
        assert not store.write("r1", {}, [row("r1", "llvip/rgb", m=0.9), row("r1", "flir/rgb", m=0.9)])
    assert "already stored as ok" in caplog.text and "dropped" in caplog.text
    assert store.write("r2", {}, [row("r2", "llvip/rgb", status="failed", m=math.nan)])
    assert store.write("r2", {}, [row("r2", "llvip/rgb", m=0.75)])  # a failed record is retried
    assert store.stored_ids() == ["r1", "r2"] and store.done(["r1", "r2", "r3"]) == {"r1", "r2"}
    df, parquet = store.collect(["r1", "r2"], "detection")
    assert str(parquet) == f"{bucket}/s/results.parquet"
    assert df["map"].tolist() == [0.25, 0.5, 0.75]
    back = pd.read_parquet(io.BytesIO(parquet.read_bytes()))
    assert back["map"].tolist() == [0.25, 0.5, 0.75]
    assert json.loads((location(bucket) / "s" / CURRENT_RUNS).read_bytes())["run_ids"] == ["r1", "r2"]


def test_report_reads_study_folders_and_tables_by_uri_current_runs_by_default(bucket: str) -> None:
    store = Store(bucket, "s")
    for rid, m in (("old1", 0.1), ("new1", 0.5), ("new2", 0.7)):
        store.write(rid, {}, [row(rid, "llvip/rgb", m=m)])
    store.collect(["new1", "new2"], "detection")  # the current spec holds new1, new2
    folder = f"{bucket}/s"
    assert sorted(load_results(folder)["run_id"]) == ["new1", "new2"]
    assert sorted(load_results(folder, all_runs=True)["run_id"]) == ["new1", "new2", "old1"]
    assert sorted(load_results(f"{folder}/results.parquet")["run_id"]) == ["new1", "new2"]
    assert sorted(load_results(f"{folder}/results.csv")["run_id"]) == ["new1", "new2"]
    line = study_selection(folder)
    assert "the 2 runs of the current spec" in line and "1 older runs left out" in line
    assert "all 3 stored runs" in study_selection(folder, all_runs=True)


def test_local_study_folder_agrees_with_run_grid_table(tmp_path: Path) -> None:
    store = Store(tmp_path, "s")
    for rid in ("a", "b", "c"):
        store.write(rid, {}, [row(rid, "llvip/rgb")])
    df, parquet = store.collect(["a", "c"], "detection")
    assert sorted(load_results(tmp_path / "s")["run_id"]) == sorted(pd.read_parquet(parquet)["run_id"]) == ["a", "c"]
    assert len(load_results(tmp_path / "s", all_runs=True)) == 3
    assert len(load_results(tmp_path)) == 2  # a storage root: each study's current runs


def test_training_state_round_trips_through_s3(bucket: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from capgate.train.resume import STATE_NAME, load_state, save_state

    target = location(bucket) / "s" / "runs" / "r1" / STATE_NAME
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(3)
    save_state(target, model=model, optimizer=opt, scheduler=None, scaler=None, gen=gen, epoch=2, steps=6,
               history=[], rows=[[1, 3]])
    expected = torch.rand(3, generator=gen)
    other = torch.nn.Linear(2, 1)
    gen2 = torch.Generator()
    epoch, steps, _, rows = load_state(target, model=other, optimizer=torch.optim.SGD(other.parameters(), lr=0.1),
                                       scheduler=None, scaler=None, gen=gen2, device=torch.device("cpu"))
    assert (epoch, steps, rows) == (2, 6, [[1, 3]])
    assert torch.equal(other.weight, model.weight) and torch.equal(torch.rand(3, generator=gen2), expected)


def test_check_reads_a_results_table_from_s3(bucket: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from helpers import run_main
    from helpers import detection_truth, write_table

    plan = tmp_path / "plan.yaml"
    plan.write_text("n_boot: 40\n")
    local = write_table(tmp_path / "det.parquet", detection_truth(), seed=0)
    remote = location(bucket) / "det" / "results.parquet"
    remote.upload(local)
    base = tmp_path / "base.json"
    assert run_main(["check", str(local), "--baseline", str(base), "--plan", str(plan), "--update-baseline"]) == 0
    capsys.readouterr()
    assert run_main(["check", str(remote), "--baseline", str(base), "--plan", str(plan)]) == 0
    assert "check PASS: 28 passed, 0 warnings, 0 failures" in capsys.readouterr().out  # + 2 systematic rows
