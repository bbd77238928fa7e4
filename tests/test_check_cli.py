"""``capgate check`` end to end on simulated results tables: exit codes, messages, JUnit, baselines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from capgate.analysis import analyze, load_results
from capgate.analysis import build_summary
from capgate.check import run_check
from helpers import FAST_PLAN, detection_truth, run_main, save_json, write_table


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("check")
    plan = d / "plan.yaml"
    plan.write_text("n_boot: 40\n")
    det = write_table(d / "det.parquet", detection_truth(), seed=0)
    rerun = write_table(d / "rerun.parquet", detection_truth(), seed=1)  # same truth, fresh seeds
    table = pd.read_parquet(det)
    big = table["backbone"] == "efficientnet_b0@w1.0"
    table.loc[big & (table["init"] == "imagenet"), "map"] -= 0.08  # pretraining no longer helps the big rung
    shifted = d / "shifted.parquet"
    table.to_parquet(shifted, index=False)
    base = d / "baselines" / "det.json"
    assert run_main(["check", str(det), "--baseline", str(base), "--plan", str(plan), "--update-baseline"]) == 0
    return {"dir": d, "plan": plan, "det": det, "rerun": rerun, "shifted": shifted, "base": base}


def test_update_baseline_writes_the_current_summary(study: dict[str, Path]) -> None:
    written = json.loads(study["base"].read_text())
    expected = build_summary(analyze(load_results(study["det"]), FAST_PLAN))
    assert written["schema"] == "capgate-summary/2"
    assert [c["key"] for c in written["cells"]] == [c["key"] for c in expected["cells"]]
    assert written["cells"] == expected["cells"] and written["verdicts"] == expected["verdicts"]


def test_identical_results_pass(study: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["check", str(study["det"]), "--baseline", str(study["base"]), "--plan", str(study["plan"])]) == 0
    out = capsys.readouterr().out
    assert "check PASS: 28 passed, 0 warnings, 0 failures" in out  # 16 cells, 2 inits (systematic), 8 verdicts, 2 gates
    assert "rule: cell mean passes when" not in out  # the rule once, on request; a pointer otherwise
    assert out.rstrip().splitlines()[-1] == ("rule: how each tolerance is computed: rerun with --explain (also in "
                                            "the JUnit XML's 'rule' property)")
    for flag in ("--explain", "-v"):
        args = ["check", str(study["det"]), "--baseline", str(study["base"]), "--plan", str(study["plan"]), flag]
        assert run_main(args) == 0
        assert "rule: cell mean passes when" in capsys.readouterr().out


def test_fresh_seeds_of_the_same_study_pass(study: dict[str, Path]) -> None:
    result = run_check(study["rerun"], study["base"], study["plan"])
    assert result.passed, [r for r in result.failures]


def test_shifted_means_and_flipped_verdicts_fail_with_exit_1(study: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    junit = study["dir"] / "junit.xml"
    code = run_main(["check", str(study["shifted"]), "--baseline", str(study["base"]), "--plan", str(study["plan"]),
                     "--junit", str(junit), "--only-problems"])
    assert code == 1
    out = capsys.readouterr().out
    assert "|detection|efficientnet_b0@w1.0|llvip/rgb|flir/rgb|imagenet" in out and "FAIL    cell" in out
    assert "mean moved beyond tolerance" in out and "check FAIL:" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    n_fail = sum(c.find("failure") is not None for c in suite.findall("testcase"))
    assert n_fail == int(suite.get("failures")) >= 2  # both eval sets of the big imagenet rung


def test_summary_json_is_checked_directly(study: dict[str, Path]) -> None:
    summary = save_json(study["dir"] / "summary.json", json.loads(study["base"].read_text()))
    assert run_main(["check", str(summary), "--baseline", str(study["base"])]) == 0
    dropped = json.loads(study["base"].read_text())
    dropped["cells"] = dropped["cells"][1:]
    assert run_main(["check", str(save_json(study["dir"] / "dropped.json", dropped)),
                     "--baseline", str(study["base"])]) == 1


def test_plan_expectations_must_hold(study: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    plan = study["dir"] / "expect.yaml"
    plan.write_text("n_boot: 40\nexpectations:\n  - {init: imagenet, shift: in_domain, verdict: hurts}\n")
    assert run_main(["check", str(study["det"]),
                     "--baseline", str(study["base"]), "--plan", str(plan), "--only-problems", "--strict"]) == 1
    out = capsys.readouterr().out
    assert "FAIL    expectation  imagenet hurts on in_domain" in out
    fresh = study["dir"] / "fresh.json"  # writing a baseline succeeds (exit 0) even where the plan fails
    assert run_main(["check", str(study["det"]), "--baseline", str(fresh), "--plan", str(plan), "--strict",
                     "--update-baseline"]) == 0
    assert json.loads(fresh.read_text())["schema"] == "capgate-summary/2"
    assert f"note: baseline written to {fresh}" in capsys.readouterr().out


def test_unusable_inputs_exit_2_with_the_file_and_the_fix(study: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bad = study["dir"] / "bad.json"
    bad.write_text('{"schema": "capgate-summary/2", "cells": 3}')
    assert run_main(["check", str(study["det"]), "--baseline", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"Error: {bad}: 'cells' must be a list of objects")
    old = save_json(study["dir"] / "old.json", {**json.loads(study["base"].read_text()), "schema": "capgate-summary/1"})
    assert run_main(["check", str(study["det"]), "--baseline", str(old)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {old}: summary schema is 'capgate-summary/1', this capgate reads 'capgate-summary/2'")
    assert f"regenerate it with: capgate check {study['det']} --baseline {old} --update-baseline" in err
    missing = study["dir"] / "missing.json"
    assert run_main(["check", str(study["det"]), "--baseline", str(missing)]) == 2
    assert (f"Error: {missing}: baseline not found; create it with: capgate check {study['det']} --baseline {missing} "
            "--update-baseline") in capsys.readouterr().err
    assert run_main(["check", str(study["dir"] / "nope.parquet"), "--baseline", str(study["base"])]) == 2
    assert "nope.parquet: results not found" in capsys.readouterr().err
    assert run_main(["check", str(study["det"])]) == 2  # --baseline is required
    assert "Missing option '--baseline'" in capsys.readouterr().err


def test_combined_detection_and_classification_results(study: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from helpers import classification_truth

    cls = write_table(study["dir"] / "cls.parquet", classification_truth(), seed=0)
    base = study["dir"] / "both.json"
    args = ["check", str(study["det"]), str(cls), "--baseline", str(base), "--plan", str(study["plan"])]
    assert run_main([*args, "--update-baseline"]) == 0
    assert json.loads(base.read_text())["tasks"] == ["classification", "detection"]
    capsys.readouterr()
    assert run_main(args) == 0
    assert "check PASS: 56 passed, 0 warnings, 0 failures" in capsys.readouterr().out  # 2 x (16 + 2 + 8 + 2)
    capsys.readouterr()
    assert run_main(["check", str(study["det"]), "--baseline", str(base), "--plan", str(study["plan"])]) == 2
    assert "but the results lack cls" in capsys.readouterr().err


def test_another_studys_baseline_is_unusable(study: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    other = json.loads(study["base"].read_text())
    other["studies"] = ["someone_else"]
    path = save_json(study["dir"] / "other.json", other)
    assert run_main(["check", str(study["det"]), "--baseline", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is of study someone_else but the results are of study det" in err
