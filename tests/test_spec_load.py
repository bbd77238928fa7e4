"""Spec loading: YAML syntax errors name file and line, rungs are checked while loading (file and
key path), seed counts, and a spec's own rungs travel inside the run spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import base_spec

from capgate.errors import SpecError
from capgate.models.ladder import Rung, register_rung
from capgate.spec.model import RunSpec, expand
from capgate.spec.load import load_study, study_from_dict

REPO = Path(__file__).resolve().parents[1]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("study: x\nclasses: [person]\nrecipe:\n  lr: [0.1\n  epochs: 3\n")
    with pytest.raises(SpecError) as err:
        load_study(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}:5:") and "not valid YAML" in msg and "fix the syntax at line 5" in msg


@pytest.mark.parametrize(("seeds", "message"), [
    (-3, "spec key 'seeds' = -3: a count of seeds must be >= 1"),
    (0, "spec key 'seeds' = 0: a count of seeds must be >= 1"),
    ([0, -1], "spec key 'seeds' must be a count >= 1 or a non-empty list of integers >= 0, got [0, -1]"),
    ([True], "got [True]"),
])
def test_seed_counts_are_reported_as_given(seeds: object, message: str) -> None:
    d = base_spec()
    d["seeds"] = seeds
    with pytest.raises(SpecError, match=None) as err:
        study_from_dict(d)
    assert message in str(err.value)


def test_unknown_rung_names_file_key_and_choices(tmp_path: Path) -> None:
    d = base_spec()
    d["rungs"]["mobilenetv3"] = ["S-6", "S-66"]
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(SpecError) as err:
        load_study(p)
    assert str(err.value).startswith(f"{p}: spec key 'rungs.mobilenetv3[1]' = 'S-66': unknown rung 'S-66'; "
                                     f"valid rungs: B-1")


def test_rung_under_the_wrong_family_says_where_to_move_it() -> None:
    d = base_spec()
    d["rungs"] = {"efficientnet": ["S-6"]}
    with pytest.raises(SpecError, match=r"'rungs.efficientnet\[0\]' = 'S-6' is a mobilenetv3 rung; move it under "
                                        r"'rungs.mobilenetv3'"):
        study_from_dict(d)


def test_shipped_and_custom_rungs_carry_no_definition() -> None:
    d = base_spec()
    d["rungs"] = {"mobilenetv3": ["S-6", "mobilenetv3_large@w0.2d0.25"]}
    study = study_from_dict(d)
    assert study.rung_defs == {}
    _, runs = expand(study)
    assert all(r.rung_def is None and "rung_def" not in r.to_dict() for r in runs)


FRESH = ("import json, sys\n"
         "from capgate.spec.model import RunSpec, PretrainSpec\n"
         "run = RunSpec.from_json(sys.stdin.readline())\n"
         "stage = PretrainSpec.from_dict(json.loads(sys.stdin.readline()))\n"
         "r, s = run.build_rung(), stage.build_rung()\n"
         "print(json.dumps([r.name, r.width, r.depth, s.name, run.run_id]))\n")


def fresh_process(run: RunSpec, stage: object) -> list:
    """Rebuild the rungs in a new interpreter that never saw the spec (as a Ray worker would)."""
    out = subprocess.run([sys.executable, "-c", FRESH], input=run.to_json() + "\n" + json.dumps(stage.to_dict()) + "\n",
                         capture_output=True, text=True, timeout=60, cwd=REPO, env={"PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_spec_s_own_rungs_travel_inside_the_run_spec() -> None:
    d = base_spec()
    d["rungs"] = {"mobilenetv3": [{"name": "tiny-0", "width": 0.12, "depth": 0.3}]}
    stages, runs = expand(study_from_dict(d))
    assert runs[0].rung == "tiny-0" and runs[0].rung_def["width"] == 0.12
    assert fresh_process(runs[0], stages[0]) == ["tiny-0", 0.12, 0.3, "tiny-0", runs[0].run_id]


def test_a_rung_registered_in_the_driver_travels_too() -> None:
    register_rung(Rung("driver-only-1", "efficientnet", 0.13, 0.25))
    d = base_spec()
    d["rungs"] = {"efficientnet": ["driver-only-1"]}
    study = study_from_dict(d)
    assert study.rung_defs["driver-only-1"]["width"] == 0.13
    stages, runs = expand(study)
    assert fresh_process(runs[-1], stages[-1])[:3] == ["driver-only-1", 0.13, 0.25]


def test_run_ids_of_the_shipped_ladder_do_not_change_with_rung_defs() -> None:
    """A run on a shipped rung hashes exactly the fields it had before rung_def existed."""
    _, runs = expand(study_from_dict(base_spec()))
    assert set(runs[0].to_dict()) == {"study", "task", "classes", "class_map", "family", "rung", "init", "init_stage",
                                      "init_checkpoint", "train_set", "recipe", "world", "seed"}
