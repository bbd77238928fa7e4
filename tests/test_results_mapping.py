"""Results from anywhere: the column mapping (capgate.analysis.columns), the one results loader of the
CLI (capgate.cli.results) and its --map / --shift-labels flags on report, check and next-seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from capgate.analysis import analyze, load_results, resolve_plan, simulate_results
from capgate.analysis.columns import ONE_LADDER, map_columns, parse_mapping
from capgate.analysis.load import validate
from capgate.analysis.simulate import Truth
from capgate.errors import ResultsError, SpecError
from helpers import run_main

FLAGS = ["--map", "backbone=model", "--map", "train_set=dataset", "--map", "eval_set=eval_dataset",
         "--map", "top1=accuracy"]
KEY = ["backbone", "train_set", "eval_set", "init"]



@pytest.fixture(scope="module")
def direct() -> pd.DataFrame:
    """A small classification study as capgate writes it: 2 backbones x 2 inits x 4 seeds x 2 eval sets."""
    truth = Truth(task="classification", families={"mobilenetv3": [("mnv3@w0.35", 400_000), ("mnv3@w1", 1_500_000)]},
                  inits=("scratch", "imagenet"), seeds=4,
                  sets={"cifar10": [("cifar10", "in_domain"), ("cinic10", "cross_dataset")]})
    return simulate_results(truth, seed=3)


@pytest.fixture(scope="module")
def per_seed_csv(direct: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same runs as a plain per-seed CSV: model,params,init,seed,dataset,eval_dataset,accuracy (in %)."""
    plain = pd.DataFrame({"model": direct["backbone"], "params": direct["params"], "init": direct["init"],
                          "seed": direct["seed"], "dataset": direct["train_set"], "eval_dataset": direct["eval_set"],
                          "accuracy": direct["top1"] * 100})
    path = tmp_path_factory.mktemp("plain") / "per_seed.csv"
    plain.to_csv(path, index=False)
    return path


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    g = analyze(table, resolve_plan(None)).gains
    return g[[*KEY, "gain", "verdict"]].sort_values(KEY).reset_index(drop=True)


def test_plain_per_seed_csv_gets_the_direct_tables_verdicts(direct: pd.DataFrame, per_seed_csv: Path) -> None:
    mapping = parse_mapping(["backbone=model", "train_set=dataset", "eval_set=eval_dataset", "top1=accuracy"])
    table = load_results(per_seed_csv, columns=mapping)
    assert len(table) == len(direct) == 2 * 2 * 4 * 2
    assert set(table["family"]) == {ONE_LADDER} and set(table["study"]) == {"per_seed"}
    assert set(table["task"]) == {"classification"} and set(table["status"]) == {"ok"}
    assert table["run_id"].nunique() == 2 * 2 * 4  # one id per trained run, shared by its two eval sets
    assert dict(table.groupby("eval_set")["shift"].first()) == {"cifar10": "in_domain", "cinic10": "cross_dataset"}
    np.testing.assert_allclose(table["top1"].to_numpy(), direct["top1"].to_numpy(), rtol=1e-12)
    mine, theirs = verdicts(table), verdicts(direct)
    assert list(mine["verdict"]) == list(theirs["verdict"])
    np.testing.assert_allclose(mine["gain"], theirs["gain"], rtol=1e-9)


def test_report_reads_the_plain_csv_with_only_map_flags(per_seed_csv: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["report", str(per_seed_csv), *FLAGS, "-o", str(tmp_path / "rep")]) == 0
    err = capsys.readouterr().err
    assert "top1: on a 0-100 scale" in err and "divided by 100" in err
    assert "family: absent, every backbone in one ladder 'all'" in err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["studies"] == ["per_seed"]
    inputs = (tmp_path / "rep" / "index.html").read_text()
    assert str(per_seed_csv) in inputs  # the provenance section names the file read


def test_check_and_next_seeds_read_through_the_same_loader(per_seed_csv: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base.json"
    assert run_main(["check", str(per_seed_csv), *FLAGS, "--baseline", str(base), "--update-baseline"]) == 0
    assert run_main(["check", str(per_seed_csv), *FLAGS, "--baseline", str(base)]) == 0
    assert run_main(["next-seeds", str(per_seed_csv), *FLAGS, "--json", "--all-runs"]) == 0
    out = capsys.readouterr().out
    advice = json.loads(out[out.index("{"):])
    assert set(advice) >= {"done", "add"}
    missing = tmp_path / "missing.json"  # the regenerating command repeats the --map flags
    assert run_main(["check", str(per_seed_csv), "--map", "backbone=model", "--map", "train_set=dataset",
                     "--map", "eval_set=eval_dataset", "--map", "top1=accuracy", "--baseline", str(missing)]) == 2
    assert "--map backbone=model --map train_set=dataset" in capsys.readouterr().err


def test_errors_name_the_likely_column(per_seed_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["next-seeds", str(per_seed_csv)]) == 2
    err = capsys.readouterr().err
    assert "column 'backbone' is missing" in err and "--map backbone=model" in err
    assert run_main(["next-seeds", str(per_seed_csv), "--map", "backbone=modle"]) == 2
    assert "no column 'modle'; did you mean 'model'?" in capsys.readouterr().err
    assert run_main(["next-seeds", str(per_seed_csv), "--map", "backbon=model"]) == 2
    assert "'backbon' is not a results-table column (did you mean 'backbone'" in capsys.readouterr().err
    assert run_main(["next-seeds", str(per_seed_csv), "--map", "backbone"]) == 2
    assert "'backbone' is not COLUMN=SOURCE" in capsys.readouterr().err


def _runs(status: list[str]) -> pd.DataFrame:
    """A tracker-style wide table: one row per run, params.* and metrics.<eval set>/<metric>."""
    n = len(status)
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "status": status,
                         "params.backbone": ["a"] * n, "params.params": ["1000"] * n,
                         "params.init": ["scratch", "imagenet"] * (n // 2), "params.seed": [str(i // 2) for i in range(n)],
                         "params.train_set": ["x"] * n,
                         "metrics.x/top1": [0.5 + 0.01 * i for i in range(n)],
                         "metrics.top1/y": [0.4 + 0.01 * i for i in range(n)],
                         "metrics.train_loss": [1.0] * n})


def test_wide_metrics_become_one_row_per_eval_set_and_tracker_states_are_mapped() -> None:
    raw = _runs(["FINISHED", "FINISHED", "FAILED", "RUNNING", "KILLED", "FINISHED"])
    raw.loc[2, ["metrics.x/top1", "metrics.top1/y"]] = np.nan  # a failed run logged nothing
    mapped = map_columns(raw, source="runs", default_study="exp")
    t = validate(mapped.table, source="runs")
    assert len(t) == 4 * 2  # 6 runs, RUNNING and KILLED dropped, 2 eval sets each
    assert sorted(t["run_id"].unique()) == ["r0", "r1", "r2", "r5"]
    assert dict(t.groupby("run_id")["status"].first()) == {"r0": "ok", "r1": "ok", "r2": "failed", "r5": "ok"}
    assert t.set_index(["run_id", "eval_set"]).loc[("r5", "y"), "top1"] == pytest.approx(0.45)
    assert dict(t.groupby("eval_set")["shift"].first()) == {"x": "in_domain", "y": "cross_dataset"}
    assert t["seed"].tolist()[:4] == [0, 0, 0, 0] and t["params"].dtype == np.int64
    notes = "\n".join(mapped.notes)
    assert "dropped 2 runs without a final result (killed: 1, running: 1; 4 rows)" in notes
    assert "metrics left out (not a metric of an eval set): train_loss" in notes
    assert "FINISHED -> ok" in notes and "FAILED -> failed" in notes
    with pytest.raises(ResultsError, match=r"unknown run status \['paused'\]"):
        map_columns(_runs(["PAUSED", "FINISHED"]), source="runs")


def test_metrics_star_reads_every_metrics_column_as_one_metric() -> None:
    raw = pd.DataFrame({"backbone": ["a", "a"], "params": [10, 10], "init": ["scratch", "imagenet"], "seed": [0, 0],
                        "train_set": ["x", "x"], "metrics.x": [0.5, 0.6], "metrics.snow": [0.3, 0.4]})
    t = map_columns(raw, {"map": "metrics.*"}, source="t").table
    assert sorted(zip(t["init"], t["eval_set"], t["map"])) == [("imagenet", "snow", 0.4), ("imagenet", "x", 0.6),
                                                               ("scratch", "snow", 0.3), ("scratch", "x", 0.5)]
    assert set(t["task"]) == {"detection"}


def test_user_shift_labels_are_declared_never_silent(tmp_path: Path) -> None:
    raw = pd.DataFrame({"backbone": ["a"] * 2, "params": [10] * 2, "init": ["scratch", "imagenet"], "seed": [0, 0],
                        "train_set": ["c10"] * 2, "eval_set": ["c10-c"] * 2, "shift": ["corruption"] * 2,
                        "accuracy": [0.5, 0.6]})
    mapped = map_columns(raw, source="t.csv", default_study="t").table
    with pytest.raises(ResultsError, match=r"unknown shift \['corruption'\].*--shift-labels corruption"):
        validate(mapped, source="t.csv")
    assert set(validate(mapped, source="t.csv", shift_labels=("corruption",))["shift"]) == {"corruption"}
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"columns": {"backbone": "model", "top1": "accuracy"},
                                    "shift_labels": ["corruption"],
                                    "expectations": [{"init": "imagenet", "verdict": "helps", "shift": "corruption"}]}))
    from capgate.analysis import load_plan

    resolved = load_plan(plan)
    assert resolved.columns == {"backbone": "model", "top1": "accuracy"} and resolved.shift_labels == ("corruption",)
    plan.write_text(yaml.safe_dump({"columns": {"backbnoe": "model"}}))
    with pytest.raises(SpecError, match="did you mean 'backbone'"):
        load_plan(plan)


def test_a_plans_columns_block_maps_like_the_flags(per_seed_csv: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"columns": {"backbone": "model", "train_set": "dataset",
                                                "eval_set": "eval_dataset", "top1": "accuracy"}}))
    assert run_main(["next-seeds", str(per_seed_csv), "--plan", str(plan)]) == 0
    assert "mapped: backbone <- model" in capsys.readouterr().err


def test_scale_is_stated_and_a_native_table_is_untouched(direct: pd.DataFrame) -> None:
    raw = pd.DataFrame({"backbone": ["a"] * 2, "params": [10] * 2, "init": ["scratch", "imagenet"], "seed": [0, 0],
                        "train_set": ["x"] * 2, "accuracy": [0.81, 0.9]})
    mapped = map_columns(raw, source="t")
    assert "top1: on a 0-1 scale (max 0.9)" in mapped.notes
    assert mapped.table["top1"].tolist() == [0.81, 0.9]
    native = map_columns(direct, source="sim")
    assert native.notes == () and native.table is direct
