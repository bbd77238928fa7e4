"""A real local Ray Tune grid on a tiny world: schema-valid table, idempotent reruns, diverged
and failed runs recorded, the CLI's exit codes, and a pretraining stage trained once."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import records, tiny_spec

from capgate.analysis.load import validate
from capgate.schema import DETECTION_METRICS, REQUIRED_COLUMNS
from capgate.cli import cli

@pytest.mark.slow
def test_local_grid_table_rerun_and_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from capgate.grid import driver, plan_grid, run_grid

    ray_tmps: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs) -> str:  # records the temp dirs run_grid makes (Ray's, for one)
        ray_tmps.append(real_mkdtemp(*args, **kwargs))
        return ray_tmps[-1]

    monkeypatch.setattr(driver.tempfile, "mkdtemp", mkdtemp)
    spec = tiny_spec(tmp_path)
    storage = tmp_path / "store"
    plan = plan_grid(spec)
    assert len(plan.runs) == 2 * 3 * 2 and len(plan.stages) == 4
    res = run_grid(spec, storage=storage, num_cpus=2)
    assert res.n_trained == 12 and res.counts == {"ok": 12}
    # the local Ray's temp dir (its session logs) is removed once Ray shuts down
    assert len(ray_tmps) == 1 and Path(ray_tmps[0]).name.startswith(driver.RAY_TMP_PREFIX)
    assert not Path(ray_tmps[0]).exists()
    table = pd.read_parquet(res.table)
    assert list(table.columns[:len(REQUIRED_COLUMNS)]) == list(REQUIRED_COLUMNS)
    clean = validate(table)  # the analysis' own contract check
    assert len(clean) == 12 * 3 and not clean.duplicated(["run_id", "eval_set"]).any()
    assert set(clean["shift"]) == {"in_domain", "cross_dataset", "cross_modality"}
    assert clean[list(DETECTION_METRICS)].notna().all().all()
    assert ((clean["map"] >= 0) & (clean["map"] <= 1)).all()
    assert (clean["params"] > 10_000).all() and (clean["macs"] > 0).all()
    assert set(clean["run_id"]) == {r.run_id for r in plan.runs}
    csv = pd.read_csv(res.table.with_suffix(".csv"))
    assert len(csv) == len(table)
    # every pretrained run names the stage it started from; each stage was trained once
    pre = clean[clean["init"] != "scratch"]
    assert all(s.split(" ")[0] in {st.stage_id for st in plan.stages} for s in pre["init_source"])
    assert (clean.loc[clean["init"] == "scratch", "init_source"] == "none").all()
    stage_dirs = sorted((storage / "tiny" / "pretrain").glob("*/stage.json"))
    assert len(stage_dirs) == 4
    # each stage scored itself on its corpus's val split, and the study's stage table lists them
    for p in stage_dirs:
        q = json.loads(p.read_text())["quality"]
        assert q["split"] == "val" and q["metric"] in ("top1", "map") and 0.0 <= q["value"] <= 1.0
    table_rows = json.loads((storage / "tiny" / "stages.json").read_text())["stages"]
    assert sorted(r["stage_id"] for r in table_rows) == sorted(p.parent.name for p in stage_dirs)
    assert {r["kind"]: r["metric"] for r in table_rows} == {"classification": "top1", "detection": "map"}
    # per-epoch metrics CSV in each run folder
    one = plan.runs[0].run_id
    m = pd.read_csv(storage / "tiny" / "runs" / one / "metrics.csv")
    assert list(m.columns) == ["epoch", "steps", "images", "loss", "lr", "seconds"] and m["steps"].iloc[-1] == 2

    before = {rid: doc["records"][0]["started_at"] for rid, doc in records(storage, "tiny").items()}
    again = run_grid(spec, storage=storage, num_cpus=2)
    assert again.n_trained == 0 and again.n_skipped == 12
    after = {rid: doc["records"][0]["started_at"] for rid, doc in records(storage, "tiny").items()}
    assert after == before
    pd.testing.assert_frame_equal(pd.read_parquet(again.table), table)


@pytest.mark.slow
def test_diverged_and_failed_runs_are_recorded_and_exit_codes(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, name="div", rungs={"mobilenetv3": ["S-6"]}, seeds=[0], inits=("scratch",),
                     steps=4)
    storage = tmp_path / "store"
    runner = CliRunner()
    res = runner.invoke(cli, ["run-grid", str(spec), "--storage", str(storage), "--set", "recipe.lr=1e6",
                              "--set", "recipe.optimizer=sgd", "--set", "recipe.grad_clip=null"])
    assert res.exit_code == 0, res.output
    assert "diverged 1" in res.output
    (doc,) = records(storage, "div").values()
    assert {r["status"] for r in doc["records"]} == {"diverged"}
    assert "training loss became" in doc["records"][0]["error"]
    assert all(r["map"] != r["map"] for r in doc["records"])  # NaN metrics

    missing = tiny_spec(tmp_path, name="missing", rungs={"mobilenetv3": ["S-6"]}, seeds=[0], inits=("scratch",),
                        llvip_root=str(tmp_path / "absent-llvip"))
    res = runner.invoke(cli, ["run-grid", str(missing), "--storage", str(storage)])
    assert res.exception.exit_code == 2 and not (storage / "missing").exists()  # refused before anything starts
    assert f"dataset root {tmp_path / 'absent-llvip'} (llvip" in str(res.exception)
    (tmp_path / "no-such-llvip").mkdir()  # exists, but holds no LLVIP layout: refused before anything starts
    empty = tiny_spec(tmp_path, name="empty", rungs={"mobilenetv3": ["S-6"]}, seeds=[0], inits=("scratch",),
                      llvip_root=str(tmp_path / "no-such-llvip"))
    res = runner.invoke(cli, ["run-grid", str(empty), "--storage", str(storage)])
    assert res.exception.exit_code == 2 and not (storage / "empty").exists()
    assert f"{tmp_path / 'no-such-llvip' / 'Annotations'} is missing" in str(res.exception)
    # a layout the preflight accepts whose files are unusable: every trial fails on a DataError, and the
    # grid ends with exit 2 and their errors (no "rerun the same command to retry them": it cannot help)
    broken = tmp_path / "broken-llvip"
    for d in ("visible/train", "visible/test", "infrared/test"):
        (broken / d).mkdir(parents=True)
        (broken / d / "000001.jpg").write_bytes(b"not a jpeg")
    (broken / "Annotations").mkdir()
    (broken / "Annotations" / "000001.xml").write_text("<annotation><object>")
    bad = tiny_spec(tmp_path, name="bad", rungs={"mobilenetv3": ["S-6"]}, seeds=[0, 1], inits=("scratch",),
                    llvip_root=str(broken))
    res = runner.invoke(cli, ["run-grid", str(bad), "--storage", str(storage)])
    assert res.exception.exit_code == 2, res.output
    assert "2 of 2 runs failed on unusable data or weights" in str(res.exception)
    assert "retry them" not in str(res.exception) and "DataError: " in str(res.exception)
    docs = records(storage, "bad")
    assert len(docs) == 2
    assert all(r["status"] == "failed" and "broken-llvip" in r["error"] for d in docs.values() for r in d["records"])
    # each trial's log is in the store, and a failed record carries its last lines
    assert all("--- last lines of" in r["error"] and "failed" in r["error"].split("--- last lines of")[1]
               for d in docs.values() for r in d["records"])
    assert all((storage / "bad" / "runs" / rid / "trial.log").is_file() for rid in docs)
    table = pd.read_parquet(storage / "bad" / "results.parquet")
    assert len(table) == 6 and set(table["status"]) == {"failed"}


def _stage_worker(args: tuple) -> bool:
    import torch

    torch.set_num_threads(1)
    from capgate.grid import plan_grid
    from capgate.train.pretrain import ensure_stage

    spec, storage = args
    plan = plan_grid(spec)
    stages = {s.stage_id: s for s in plan.stages}
    last = [s for s in plan.stages if s.parent is not None][0]
    return ensure_stage(last, Path(storage), plan.study.study, stages).trained


@pytest.mark.slow
def test_pretraining_stage_trained_once_for_concurrent_trials(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, name="lock", rungs={"efficientnet": ["B-7"]})
    storage = tmp_path / "store"
    from capgate.grid import plan_grid
    from capgate.train.pretrain import ensure_world_once

    ensure_world_once(storage, plan_grid(spec).study.world)
    with mp.get_context("spawn").Pool(3) as pool:
        trained = pool.map(_stage_worker, [(str(spec), str(storage))] * 3)
    assert sorted(trained) == [False, False, True]  # one worker trained, two waited and reused
    assert len(list((storage / "lock" / "pretrain").glob("*/checkpoint.pt"))) == 2  # imagenet + coco
    # a second study with the same stage reuses it by content hash instead of training again
    other = tiny_spec(tmp_path, name="lock2", rungs={"efficientnet": ["B-7"]})
    assert _stage_worker((str(other), str(storage))) is False
    info = json.loads(next((storage / "lock2" / "pretrain").glob("coco-*/stage.json")).read_text())
    assert info["copied_from"].endswith(info["stage_id"])
