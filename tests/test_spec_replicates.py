"""Pretraining replicates (spec key ``stage_seeds``): each (rung, init) stage chain trained once per stage
seed, fine-tuning seed i nested in replicate ``stage_seeds[i % k]``, ids unchanged at the default."""

from __future__ import annotations

from collections import Counter

import pytest

from capgate.errors import SpecError
from capgate.grid.adaptive import seeded_runs
from capgate.grid.plan import GridPlan
from capgate.spec.load import study_from_dict
from capgate.spec.model import RunSpec, expand, reseed, stage_seed_for
from capgate.train.run import run_base

from helpers import base_spec


def _plan(*overrides: str, spec: dict | None = None) -> tuple[list, list]:
    return expand(study_from_dict(spec or base_spec(), list(overrides)))


def test_default_is_one_replicate_and_no_id_changes() -> None:
    stages, runs = _plan()
    same_stages, same_runs = _plan("stage_seeds=[0]")
    assert [s.stage_id for s in stages] == [s.stage_id for s in same_stages]
    assert [r.run_id for r in runs] == [r.run_id for r in same_runs]
    assert all("stage_seed" not in r.to_dict() for r in runs)  # the stage seed enters no id at its default
    assert {r.stage_seed for r in runs if r.init == "scratch"} == {None}
    assert {r.stage_seed for r in runs if r.init != "scratch"} == {0}
    assert all(s.seed == 0 for s in stages)


def test_each_chain_is_trained_once_per_stage_seed_and_seeds_are_nested() -> None:
    stages, runs = _plan("stage_seeds=[10, 11, 12]", "seeds=4")
    # 3 rungs x (imagenet + coco) x 3 replicates; the fine-tuning grid keeps its size
    assert len(stages) == 3 * 2 * 3 and len(runs) == 3 * 3 * 4
    by_id = {s.stage_id: s for s in stages}
    for s in stages:  # replicate r's COCO stage starts from replicate r's ImageNet stage
        if s.kind == "detection":
            assert by_id[s.parent].seed == s.seed and by_id[s.parent].rung == s.rung
    for r in runs:
        if r.init == "scratch":
            assert r.init_stage is None and r.stage_seed is None
        else:
            assert r.stage_seed == (10, 11, 12)[r.seed % 3]
            assert by_id[r.init_stage].seed == r.stage_seed and by_id[r.init_stage].rung == r.rung
    b5 = [r for r in runs if r.rung == "B-5" and r.init == "imagenet"]
    assert [r.stage_seed for r in b5] == [10, 11, 12, 10]
    assert len({r.init_stage for r in b5}) == 3  # seeds 0 and 3 share replicate 10's stage
    assert Counter(r.stage_seed for r in runs if r.init != "scratch") == {10: 12, 11: 6, 12: 6}


def test_replicate_zero_keeps_the_ids_of_a_single_replicate_study() -> None:
    one_stages, one_runs = _plan()
    two_stages, two_runs = _plan("stage_seeds=[0, 1]")
    assert {s.stage_id for s in one_stages} < {s.stage_id for s in two_stages}
    kept = {r.run_id for r in two_runs if r.stage_seed in (0, None)}  # seeds 0, 2 and every scratch run
    assert kept == {r.run_id for r in one_runs if r.init == "scratch" or r.seed in (0, 2)}
    moved = [r for r in two_runs if r.stage_seed == 1]
    assert [r.seed for r in moved] == [1] * 6 and all(r.to_dict()["stage_seed"] == 1 for r in moved)


def test_run_specs_round_trip_with_any_stage_seed() -> None:
    _, runs = _plan("stage_seeds=[0, 7]")
    for r in runs:
        back = RunSpec.from_json(r.to_json())
        assert back == r and back.run_id == r.run_id and back.stage_seed == r.stage_seed


def test_a_checkpoint_chain_is_not_replicated(tmp_path) -> None:
    spec = base_spec()
    weights = tmp_path / "w.pt"
    spec["pretraining"]["imagenet"] = {"kind": "classification", "checkpoint": str(weights)}
    stages, runs = _plan("stage_seeds=[3, 4]", spec=spec)
    files = [s for s in stages if s.checkpoint]
    assert len(files) == 3 and all(s.seed == 0 for s in files)  # one per rung, whatever the replicates
    assert {s.seed for s in stages if s.kind == "detection"} == {3, 4}  # the COCO stage after it is replicated
    img = [r for r in runs if r.init == "imagenet"]
    assert {r.init_stage for r in img} == {s.stage_id for s in files}
    by_id = {s.stage_id: s for s in stages}
    # a run from a checkpoint file records no stage seed; one from a trained stage records its replicate
    assert {run_base(r, stages=by_id)["stage_seed"] for r in img} == {None}
    coco = [r for r in runs if r.init == "imagenet_coco"]
    assert [run_base(r, stages=by_id)["stage_seed"] for r in coco[:3]] == [3, 4, 3]
    assert run_base(runs[0], stages=by_id)["stage_seed"] is None  # scratch


def test_reseed_and_the_adaptive_loop_follow_the_rule() -> None:
    study = study_from_dict(base_spec(), ["stage_seeds=[10, 11]"])
    _, runs = expand(study)
    r0 = next(r for r in runs if r.init == "imagenet_coco" and r.seed == 0)
    r1 = next(r for r in runs if r.init == "imagenet_coco" and r.seed == 1 and r.rung == r0.rung)
    assert reseed(study, r0, 1) == r1
    new = reseed(study, r0, 5)
    assert new.stage_seed == stage_seed_for(5, (10, 11)) == 11 and new.init_stage == r1.init_stage
    key = (r0.study, r0.task, r0.family, r0.build_rung().backbone_name, r0.train_set.name, r0.init)
    added = seeded_runs(runs, {key: {3, 4}}, study)
    assert [(r.seed, r.stage_seed) for r in added] == [(3, 11), (4, 10)]
    scratch = next(r for r in runs if r.init == "scratch")
    assert reseed(study, scratch, 9).stage_seed is None


@pytest.mark.parametrize("value, match", [("[1, 1]", "repeats a seed"), ("[-1]", "integers >= 0"),
                                          ("0", "count of seeds must be >= 1"), ("x", "stage_seeds")])
def test_bad_stage_seeds_name_the_key(value: str, match: str) -> None:
    with pytest.raises(SpecError, match=match) as err:
        study_from_dict(base_spec(), [f"stage_seeds={value}"])
    assert "stage_seeds" in str(err.value)


def test_the_dry_run_shows_the_assignment() -> None:
    study = study_from_dict(base_spec(), ["stage_seeds=[10, 11]"])
    plan = GridPlan(study, *expand(study))
    text = plan.describe()
    assert "2 replicates per chain, stage seeds [10, 11]" in text and "stage_seeds[i % 2]" in text
    line = next(ln for ln in text.splitlines() if "init=imagenet " in ln and "seed=1 " in ln)
    assert "stage_seed=11" in line and "stage=imagenet-B-5-" in line
    d = plan.to_dict()
    assert d["stage_seeds"] == [10, 11]
    assert {(r["seed"], r["stage_seed"]) for r in d["runs"] if r["init"] == "imagenet"} == {(0, 10), (1, 11), (2, 10)}
