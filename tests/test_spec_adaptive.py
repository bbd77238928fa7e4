"""The spec's ``adaptive`` section: parsing, validation errors, and run-grid's use of it (flags win)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import capgate.grid
import capgate.grid.adaptive as adaptive
from capgate.cli import cli
from capgate.errors import SpecError
from capgate.spec.model import Adaptive
from capgate.spec.load import load_study

SPEC = {
    "study": "adaptkeys", "task": "classification", "classes": ["bicycle", "car", "dog"],
    "datasets": {"domainnet": {"format": "domainnet", "root": "synthetic"}},
    "train_sets": [{"dataset": "domainnet", "split": "train", "domain": "real", "name": "domainnet/real",
                    "eval": [{"dataset": "domainnet", "split": "test", "domain": "real",
                              "name": "domainnet/real", "shift": "in_domain"}]}],
    "rungs": {"mobilenetv3": ["S-6"]},
    "seeds": [0, 1],
    "recipe": {"steps": 2, "batch_size": 4, "resolution": 32},
}
PLAN = {"sequential": {"max_seeds": 7, "schedule": [2, 3, 5, 7], "spending": "pocock"}}


def write_spec(tmp_path: Path, adaptive_section=None, *, with_plan: bool = True) -> Path:
    folder = tmp_path / "experiments"
    folder.mkdir(exist_ok=True)
    if with_plan:
        (folder / "seq.yaml").write_text(yaml.safe_dump(PLAN))
    spec = dict(SPEC)
    if adaptive_section is not None:
        spec["adaptive"] = adaptive_section
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_adaptive_section_is_parsed_and_plan_resolved_beside_the_spec(tmp_path: Path) -> None:
    path = write_spec(tmp_path, {"plan": "seq.yaml", "max_seeds": 7, "max_rounds": 3, "max_runs": 12})
    study = load_study(path)
    assert study.adaptive == Adaptive(plan=str(tmp_path / "experiments" / "seq.yaml"), max_seeds=7, max_rounds=3,
                                      max_runs=12)
    assert load_study(write_spec(tmp_path)).adaptive is None
    assert load_study(write_spec(tmp_path, {})).adaptive == Adaptive()
    assert load_study(path, ["adaptive.max_rounds=5"]).adaptive.max_rounds == 5


def test_adaptive_plan_may_name_a_shipped_plan(tmp_path: Path) -> None:
    study = load_study(write_spec(tmp_path, {"plan": "adaptive"}, with_plan=False))
    assert Path(study.adaptive.plan).name == "adaptive.yaml" and Path(study.adaptive.plan).parent.name == "analysis"


def test_adaptive_section_does_not_change_run_ids(tmp_path: Path) -> None:
    from capgate.grid.plan import plan_grid

    plain = plan_grid(write_spec(tmp_path))
    ids = [r.run_id for r in plain.runs]
    with_loop = plan_grid(write_spec(tmp_path, {"plan": "seq.yaml", "max_seeds": 7}))
    assert [r.run_id for r in with_loop.runs] == ids


@pytest.mark.parametrize("section, message", [
    ({"plans": "seq.yaml"}, "'adaptive.plans' is unknown; valid keys under 'adaptive': plan, max_seeds, max_rounds, max_runs"),
    ({"max_runs": 1}, "'adaptive.max_runs' = 1 is out of range [2, None]"),
    ({"max_seeds": 1}, "'adaptive.max_seeds' = 1 is out of range [2, None]"),
    ({"max_seeds": "ten"}, "'adaptive.max_seeds' must be a int, got 'ten'"),
    ({"max_rounds": 0}, "'adaptive.max_rounds' = 0 is out of range [1, None]"),
    ({"max_rounds": 2.5}, "'adaptive.max_rounds' must be a int, got 2.5"),
    ({"plan": "nope.yaml"}, "'adaptive.plan' = 'nope.yaml': no file"),
    ({"plan": ""}, "'adaptive.plan' must be a non-empty string"),
    ([3], "spec key 'adaptive' must be a mapping"),
])
def test_adaptive_section_errors_name_file_key_and_fix(tmp_path: Path, section, message: str) -> None:
    path = write_spec(tmp_path, section)
    with pytest.raises(SpecError) as err:
        load_study(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    if section == {"plan": "nope.yaml"}:
        assert "shipped plan: " in str(err.value) and "adaptive" in str(err.value)


@pytest.fixture
def captured(monkeypatch):
    calls: dict[str, dict] = {}

    class Res:
        def summary(self) -> str:
            return "fake summary"

    def fake_loop(spec, overrides, **kw):
        calls["run_until_resolved"] = kw
        return Res()

    def fake_grid(spec, overrides, **kw):
        calls["run_grid"] = kw
        return Res()

    monkeypatch.setattr(adaptive, "run_until_resolved", fake_loop)
    monkeypatch.setattr(capgate.grid, "run_grid", fake_grid)
    return calls


def test_run_grid_uses_the_spec_adaptive_values(tmp_path: Path, captured) -> None:
    path = write_spec(tmp_path, {"plan": "seq.yaml", "max_seeds": 7, "max_rounds": 3})
    res = CliRunner().invoke(cli, ["run-grid", str(path), "--storage", str(tmp_path / "store")])
    assert res.exit_code == 0, res.output
    kw = captured["run_until_resolved"]
    assert (kw["plan"], kw["max_seeds"], kw["max_rounds"]) == (str(path.parent / "seq.yaml"), 7, 3)
    assert "run_grid" not in captured


def test_run_grid_flags_override_the_spec_values(tmp_path: Path, captured) -> None:
    path = write_spec(tmp_path, {"plan": "seq.yaml", "max_seeds": 7, "max_rounds": 3, "max_runs": 12})
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(PLAN))
    res = CliRunner().invoke(cli, ["run-grid", str(path), "--storage", str(tmp_path / "store"),
                                   "--max-rounds", "5", "--plan", str(other), "--max-runs", "6"])
    assert res.exit_code == 0, res.output
    kw = captured["run_until_resolved"]
    assert (kw["plan"], kw["max_seeds"], kw["max_rounds"], kw["max_runs"]) == (str(other), 7, 5, 6)


def test_run_grid_without_section_or_flag_runs_the_fixed_grid(tmp_path: Path, captured) -> None:
    path = write_spec(tmp_path)
    res = CliRunner().invoke(cli, ["run-grid", str(path), "--storage", str(tmp_path / "store")])
    assert res.exit_code == 0, res.output
    assert "run_grid" in captured and "run_until_resolved" not in captured
    res = CliRunner().invoke(cli, ["run-grid", str(path), "--max-rounds", "2"])
    assert res.exit_code == 2 and "need --until-resolved" in res.output
    res = CliRunner().invoke(cli, ["run-grid", str(path), "--storage", str(tmp_path / "store"),
                                   "--until-resolved", "--max-seeds", "4"])
    kw = captured["run_until_resolved"]
    assert res.exit_code == 0 and (kw["plan"], kw["max_seeds"], kw["max_rounds"]) == (None, 4, None)


def test_dry_run_shows_the_adaptive_settings(tmp_path: Path, captured) -> None:
    path = write_spec(tmp_path, {"plan": "seq.yaml", "max_seeds": 7})
    args = ["run-grid", str(path), "--storage", str(tmp_path / "store"), "--dry-run", "--max-rounds", "4"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert (f"adaptive seeds (until resolved): plan {path.parent / 'seq.yaml'}; max_seeds 7; max_rounds 4; "
            "max_runs unlimited (default) per round" in res.output)
    res = CliRunner().invoke(cli, args + ["--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["adaptive"] == {"plan": str(path.parent / "seq.yaml"), "max_seeds": 7,
                                                  "max_rounds": 4, "max_runs": None}
    assert not captured
