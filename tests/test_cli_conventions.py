"""CLI conventions a click user expects: -V, -v/-q after the subcommand, --dry-run as YAML with the
stored count, --json, help summaries never cut, one "report written" line, Ctrl-C exits 130."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from capgate import __version__
from capgate.cli import cli
from capgate.errors import SpecError
from capgate.grid import Store, plan_grid
from capgate.spec.load import study_to_dict
from helpers import run_main

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "experiments" / "demo.yaml")



def test_short_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["-V"]) == 0
    assert capsys.readouterr().out.strip() == f"capgate, version {__version__}"


@pytest.mark.parametrize(("args", "level"), [
    (["run-grid", DEMO, "--dry-run", "-v"], logging.DEBUG),
    (["run-grid", DEMO, "--dry-run", "-q"], logging.WARNING),
    (["-v", "run-grid", DEMO, "--dry-run", "-q"], logging.INFO),
    (["-q", "demo", "--dry-run"], logging.WARNING),
    (["models", "--help", "-q"], None),
])
def test_verbosity_after_the_subcommand(args: list[str], level: int | None, tmp_path: Path) -> None:
    logging.getLogger().setLevel(logging.ERROR)
    res = CliRunner().invoke(cli, [*args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    if level is not None:
        assert logging.getLogger().level == level


def test_dry_run_prints_the_resolved_spec_as_yaml_and_the_stored_count(tmp_path: Path) -> None:
    plan = plan_grid(DEMO)
    rec = {"run_id": plan.runs[0].run_id, "status": "ok"}
    Store(tmp_path, "demo").write(plan.runs[0].run_id, plan.runs[0].to_dict(), [rec])
    res = CliRunner().invoke(cli, ["run-grid", DEMO, "--dry-run", "--storage", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].endswith("; 1 of 36 runs already stored, 35 to train")
    assert lines[1] == "train sets: llvip/rgb (1 class)"  # each train set's class count
    assert lines[2] == "resolved spec:"
    block = []
    for ln in lines[3:]:
        if not ln.startswith("  "):
            break
        block.append(ln[2:])
    assert yaml.safe_load("\n".join(block)) == study_to_dict(plan.study)
    assert "Recipe(" not in res.output  # YAML, not a Python repr


def test_shipped_specs_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["run-grid", "llvip_flir", "--dry-run", "--storage", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("study llvip_flir (detection)")
    res = CliRunner().invoke(cli, ["run-grid", "nope.yaml", "--dry-run"])
    assert "spec file nope.yaml does not exist; pass a path to a study spec or the name of a shipped one " \
           "(demo.yaml, demo_classification.yaml" in str(res.exception)


def test_dry_run_json(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["run-grid", DEMO, "--dry-run", "--json", "--storage", str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["study"] == "demo" and doc["n_runs"] == 36 == len(doc["runs"]) and doc["n_stored"] == 0
    assert len(doc["stages"]) == 8 * len(doc["stage_seeds"]) and doc["problems"] == [] and doc["spec"]["seeds"] == [0, 1, 2]
    res = CliRunner().invoke(cli, ["run-grid", DEMO, "--json"])
    assert res.exit_code == 2 and "--json needs --dry-run" in res.output


def test_dry_run_names_a_missing_dataset_root_and_weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLVIP_ROOT", str(tmp_path / "no-llvip"))
    spec = yaml.safe_load((REPO / "experiments" / "llvip_flir.yaml").read_text())
    spec["inits"]["local"] = {"checkpoint": str(tmp_path / "weights.pt")}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    res = CliRunner().invoke(cli, ["run-grid", str(path), "--dry-run", "--storage", str(tmp_path)])
    assert isinstance(res.exception, SpecError) and res.exception.exit_code == 2
    msg = str(res.exception)
    assert f"dataset root {tmp_path / 'no-llvip'} (llvip, from '${{LLVIP_ROOT}}') does not exist" in msg
    assert f"spec key 'inits.local.checkpoint': weights file {tmp_path / 'weights.pt'} does not exist" in msg
    assert "not checked: spec key 'train_sets[0].eval[1]': dataset root '${FLIR_ROOT}' (flir) needs environment variable " \
           "FLIR_ROOT; export FLIR_ROOT=/path/to/flir before the command" in res.output


def test_dry_run_loads_weights_safely_and_matches_the_backbone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for var in ("LLVIP_ROOT", "FLIR_ROOT", "IMAGENET_ROOT", "COCO_ROOT"):
        monkeypatch.setenv(var, str(tmp_path))
    good = tmp_path / "good.pt"
    from capgate.models import build_classifier, get_rung

    torch.save(build_classifier(get_rung("B-7"), 3).state_dict(), good)
    bad = tmp_path / "bad.pt"
    torch.save({"w": torch.zeros(2)}, bad)
    spec = yaml.safe_load((REPO / "experiments" / "llvip_flir.yaml").read_text())
    spec["rungs"] = {"efficientnet": ["B-7"]}
    spec["inits"] = {"scratch": {}, "good": {"checkpoint": str(good)}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    res = CliRunner().invoke(cli, ["run-grid", str(path), "--dry-run", "--storage", str(tmp_path)])
    # the roots are empty folders (named as problems); the good weights file is not one
    assert "inits.good" not in str(res.exception) and "Annotations is missing" in str(res.exception)
    spec["inits"]["bad"] = {"checkpoint": str(bad)}
    path.write_text(yaml.safe_dump(spec))
    res = CliRunner().invoke(cli, ["run-grid", str(path), "--dry-run", "--storage", str(tmp_path)])
    assert isinstance(res.exception, SpecError)
    assert f"spec key 'inits.bad.checkpoint': weights file {bad} does not fit rung B-7" in str(res.exception)


def test_demo_dry_run_lists_both_studies_and_starts_nothing(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["demo", "--dry-run", "--storage", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "study demo (detection): 36 runs" in res.output
    assert "study demo_classification (classification): 24 runs" in res.output
    assert sum(1 for ln in res.output.splitlines() if " init=" in ln) == 36 + 24
    adaptive = [ln for ln in res.output.splitlines() if ln.startswith("adaptive seeds (until resolved)")]
    assert len(adaptive) == 1 and "max_runs 4 per round" in adaptive[0] and "--budget-min 15" in adaptive[0]
    assert not any(tmp_path.iterdir())


def test_top_level_help_summaries_are_whole_sentences() -> None:
    res = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    commands = res.output.split("Commands:")[1]
    assert "..." not in commands
    assert "plan expectations hold." in " ".join(commands.split())


def test_one_report_written_line(tmp_path: Path) -> None:
    from helpers import detection_truth, write_table

    table = write_table(tmp_path / "det.parquet", detection_truth(), seed=0)
    (tmp_path / "plan.yaml").write_text("n_boot: 20\n")
    res = CliRunner().invoke(cli, ["report", str(table), "--plan", str(tmp_path / "plan.yaml"), "-o",
                                   str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert res.output.count("report written") == 1


def test_ctrl_c_exits_130_with_the_resume_hint(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from capgate.grid import driver

    def interrupted(*args: object, **kw: object) -> None:
        raise driver.GridInterrupted("interrupted: 3 of 54 runs of study demo are stored; rerun the same command")

    monkeypatch.setattr(driver, "run_grid", interrupted)
    monkeypatch.setattr("capgate.grid.run_grid", interrupted)
    monkeypatch.setattr("capgate.grid.adaptive.run_grid", interrupted)  # the demo spec runs the adaptive loop
    assert run_main(["run-grid", DEMO]) == 130
    err = capsys.readouterr().err
    assert "rerun the same command" in err and "Tuner.restore" not in err


@pytest.mark.slow
def test_sigint_during_run_grid_records_nothing_in_flight_and_the_same_command_resumes(tmp_path: Path) -> None:
    from helpers import TINY_WORLD, tiny_spec

    spec = tiny_spec(tmp_path, name="sig", rungs={"mobilenetv3": ["S-6"]}, seeds=[0, 1, 2, 3], inits=("scratch",),
                     steps=40)
    storage = tmp_path / "store"
    cmd = [sys.executable, "-m", "capgate", "run-grid", str(spec), "--storage", str(storage), "--max-concurrent", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # a shell starts the command with SIGINT at its default and unblocked; the test process may not be
    # in that state after earlier tests (a child inherits an ignored or blocked SIGINT, and then never
    # sees Ctrl-C: seen in full-suite runs), so the child gets the shell's state
    parent_state = (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))

    def like_a_shell() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=like_a_shell)
    runs = storage / "sig" / "runs"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(runs.glob("*.json")):
        time.sleep(0.5)
    assert list(runs.glob("*.json")), "no run finished in time"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, f"test process SIGINT handler and blocked set: {parent_state}\n" + err[-2000:]
    assert "Tuner.restore" not in out + err and "rerun the same command" in err
    docs = [json.loads(p.read_text()) for p in runs.glob("*.json")]
    assert docs and 0 < len(docs) < 4
    assert all(r["status"] == "ok" for d in docs for r in d["records"])  # nothing in flight recorded as failed
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"({len(docs)} already stored, {4 - len(docs)} trained now)" in again.stdout
    assert TINY_WORLD


def test_shell_completion_as_the_readme_documents() -> None:
    res = CliRunner().invoke(cli, [], prog_name="capgate", env={"_CAPGATE_COMPLETE": "bash_source"})
    assert res.exit_code == 0 and "_capgate_completion()" in res.output
    res = CliRunner().invoke(cli, [], prog_name="capgate",
                             env={"_CAPGATE_COMPLETE": "bash_complete", "COMP_WORDS": "capgate run", "COMP_CWORD": "1"})
    assert res.output.strip() == "plain,run-grid"
    assert 'eval "$(_CAPGATE_COMPLETE=bash_source capgate)"' in (REPO / "README.md").read_text()
