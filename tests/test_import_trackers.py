"""``capgate import mlflow`` against a real MLflow tracking server (SQLite backend, started here on
127.0.0.1) and ``capgate import wandb`` on the three export layouts W&B users make: the imported
table of a simulated study gets the same verdicts as the table capgate writes for it."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capgate.analysis import analyze, load_results, resolve_plan, simulate_results
from capgate.analysis.simulate import Truth
from localserver import free_port, local_server
from helpers import run_main

KEY = ["family", "backbone", "train_set", "eval_set", "init"]
DESIGN = ["family", "backbone", "params", "init", "train_set", "seed"]



@pytest.fixture(scope="module")
def direct() -> pd.DataFrame:
    """A detection study as capgate writes it: 2 rungs x 2 inits x 3 seeds x 2 train sets x 2 eval sets,
    some runs failed (their records kept, metrics NaN)."""
    truth = Truth(study="sim", families={"mobilenetv3": [("mnv3@w0.35", 400_000), ("mnv3@w1", 1_500_000)]},
                  inits=("scratch", "imagenet"), seeds=3, p_failed=0.1,
                  sets={"llvip/rgb": [("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset")],
                        "flir/rgb": [("flir/rgb", "in_domain"), ("llvip/rgb", "cross_dataset")]})
    return simulate_results(truth, seed=11)


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    g = analyze(table, resolve_plan(None)).gains
    return g[[*KEY, "gain", "verdict"]].sort_values(KEY).reset_index(drop=True)


def same_rows(imported: pd.DataFrame, direct: pd.DataFrame) -> None:
    cols = [*DESIGN, "eval_set", "shift", "status"]
    a = imported.sort_values(cols[:-2] + ["eval_set"]).reset_index(drop=True)
    b = direct.sort_values(cols[:-2] + ["eval_set"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[cols].astype(str), b[cols].astype(str))
    np.testing.assert_array_equal(a[["map", "ap50", "ap75"]].to_numpy(), b[["map", "ap50", "ap75"]].to_numpy())


def runs_of(direct: pd.DataFrame) -> list[dict]:
    """One dict per trained run: its design, status and metrics per eval set."""
    out = []
    for run_id, g in direct.groupby("run_id", sort=True):
        first = g.iloc[0]
        metrics = {f"{r.eval_set}/{m}": float(getattr(r, m)) for r in g.itertuples() for m in ("map", "ap50", "ap75")
                   if not math.isnan(getattr(r, m))}
        out.append({"id": run_id, "design": {c: first[c].item() if hasattr(first[c], "item") else first[c]
                                            for c in DESIGN}, "status": first["status"], "metrics": metrics})
    return out


@pytest.mark.slow  # an MLflow server takes 15 s to 2 min to start, depending on the machine's load
@pytest.mark.skipif(shutil.which("mlflow") is None and not (Path(sys.executable).parent / "mlflow").exists(),
                    reason="mlflow (dev extra) is not installed")
def test_mlflow_server_runs_give_the_direct_tables_verdicts(direct: pd.DataFrame, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    port = free_port()
    exe = shutil.which("mlflow") or str(Path(sys.executable).parent / "mlflow")
    argv = [exe, "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--default-artifact-root",
            str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    uri = f"http://127.0.0.1:{port}"
    with local_server(argv, port, "mlflow server", timeout=300):
        client = MlflowClient(tracking_uri=uri)
        exp = client.create_experiment("sim")
        for run in runs_of(direct):
            r = client.create_run(exp, run_name=run["id"])
            rid = r.info.run_id
            client.log_batch(rid, metrics=[Metric(k, v, 0, 0) for k, v in run["metrics"].items()]
                             + [Metric("train/loss", 0.5, 0, 0)],
                             params=[Param(k, str(v)) for k, v in run["design"].items()])
            client.set_terminated(rid, status="FINISHED" if run["status"] == "ok" else "FAILED")
        client.create_run(exp, run_name="still-running")  # no final result: dropped and counted
        killed = client.create_run(exp, run_name="killed").info.run_id
        client.set_terminated(killed, status="KILLED")
        out = tmp_path / "results.parquet"
        assert run_main(["import", "mlflow", uri, "--experiment", "sim", "-o", str(out)]) == 0
        captured = capsys.readouterr()
        assert run_main(["import", "mlflow", uri, "--experiment", "nope", "-o", str(tmp_path / "x.parquet")]) == 2
        assert "no MLflow experiment named 'nope'; experiments there: ['Default', 'sim']" in capsys.readouterr().err
    n_runs = direct["run_id"].nunique()
    assert f"{len(direct)} rows ({n_runs} runs x 2 eval sets" in captured.out
    assert "dropped 2 runs without a final result (killed: 1, running: 1; 4 rows)" in captured.err
    assert "metrics left out (not a metric of an eval set): train/loss" in captured.err
    imported = load_results(out)
    assert set(imported["study"]) == {"sim"} and imported["run_id"].nunique() == n_runs
    same_rows(imported, direct)
    mine, theirs = verdicts(imported), verdicts(direct)
    assert (mine["verdict"] != "inconclusive").any()  # the comparison covers decided verdicts
    pd.testing.assert_frame_equal(mine, theirs)


def test_wandb_json_dump_gives_the_direct_tables_verdicts(direct: pd.DataFrame, tmp_path: Path) -> None:
    state = {"ok": "finished", "failed": "failed"}
    dump = [{"id": r["id"], "name": f"run-{i}", "state": state[r["status"]], "config": dict(r["design"]),
             "summary": {**r["metrics"], "_step": 9, "_runtime": 12.5, "_wandb": {"runtime": 12}}}
            for i, r in enumerate(runs_of(direct))]
    dump.append({"id": "zz", "name": "live", "state": "running", "config": dump[0]["config"], "summary": {}})
    export = tmp_path / "runs.json"
    export.write_text(json.dumps(dump))
    out = tmp_path / "results.csv"
    assert run_main(["import", "wandb", str(export), "--study", "sim", "-o", str(out)]) == 0
    imported = load_results(out)
    same_rows(imported, direct)
    pd.testing.assert_frame_equal(verdicts(imported), verdicts(direct))


def test_wandb_csv_exports_read_as_the_json_dump(direct: pd.DataFrame, tmp_path: Path) -> None:
    runs = runs_of(direct)
    state = {"ok": "finished", "failed": "crashed"}
    # W&B's documented recipe: DataFrame({"summary": [...], "config": [...], "name": [...]}).to_csv(...)
    recipe = pd.DataFrame({"summary": [r["metrics"] for r in runs], "config": [r["design"] for r in runs],
                           "name": [r["id"] for r in runs], "state": [state[r["status"]] for r in runs]})
    recipe.to_csv(tmp_path / "project.csv")  # with the index, as the recipe writes it
    # the runs table's "Export as CSV": Name, State, ..., config keys and summary keys as columns
    flat = pd.DataFrame([{"Name": r["id"], "State": state[r["status"]], "Notes": "-", **r["design"], **r["metrics"]}
                         for r in runs])
    flat.to_csv(tmp_path / "wandb_export.csv", index=False)
    for name in ("project.csv", "wandb_export.csv"):
        out = tmp_path / f"{name}.parquet"
        assert run_main(["import", "wandb", str(tmp_path / name), "--study", "sim", "-o", str(out)]) == 0
        same_rows(load_results(out), direct)


def test_import_errors_name_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["import", "mlflow", "./mlruns", "--experiment", "x", "-o", str(tmp_path / "r.parquet")]) == 2
    assert "pass an MLflow tracking server's http(s) address" in capsys.readouterr().err
    port = free_port()  # nothing listens there
    assert run_main(["import", "mlflow", f"http://127.0.0.1:{port}", "--experiment", "x", "-o",
                     str(tmp_path / "r.parquet")]) == 2
    assert "cannot read the MLflow server" in capsys.readouterr().err
    bad = tmp_path / "runs.json"
    bad.write_text(json.dumps({"runs": [{"id": "a", "config": {"backbone": "m"}, "summary": {"x/top1": 0.5}}]}))
    assert run_main(["import", "wandb", str(bad), "-o", str(tmp_path / "r.txt")]) == 2
    assert "column 'params' is missing and is never guessed" in capsys.readouterr().err
