"""Pretraining stages at chance: the driver's ready line says so, and ``min_stage_score`` stops a grid
before its runs fine-tune from a stage below it (capgate/grid/stage_scores.py). Hand numbers, stage.json
files written in ``tmp_path``; only the end-to-end test trains (slow)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from capgate.errors import CapgateError, InputError, SpecError, StageScoreError
from capgate.grid.plan import plan_grid
from capgate.grid.stage_scores import (StageScore, check_stage_scores, ready_line, refusal_message, stage_score,
                                       weak_stages)
from capgate.spec import load_study, study_from_dict
from capgate.spec.model import expand
from capgate.store.location import location

from tests.helpers import base_spec, run_main, tiny_classification_spec, tiny_spec


def cls(value: float | None, chance: float = 1 / 30, name: str = "imagenet") -> StageScore:
    return StageScore(f"{name}-S-2-abc", name, "classification", "top1", value, chance)


def det(value: float | None) -> StageScore:
    return StageScore("coco-S-2-def", "coco", "detection", "map", value, 0.0)


def test_at_chance_is_within_two_pp_of_chance_for_top1_and_below_0_005_map() -> None:
    # chance 1/30 = 0.0333: at chance below 0.0533
    assert cls(1 / 30).at_chance and cls(0.05).at_chance and not cls(0.06).at_chance
    assert cls(0.0).at_chance and not cls(0.40, chance=1 / 3).at_chance and cls(0.35, chance=1 / 3).at_chance
    assert det(0.004).at_chance and not det(0.005).at_chance and not det(0.0105).at_chance
    assert not cls(None).at_chance and not det(None).at_chance  # unscored is unknown, not at chance


def test_stage_score_reads_stage_json_quality_and_detection_chance_is_zero(tmp_path: Path) -> None:
    plan = plan_grid(tiny_spec(tmp_path), ())
    im, co = (next(s for s in plan.stages if s.name == n) for n in ("imagenet", "coco"))
    s = stage_score(im, {"quality": {"split": "val", "metric": "top1", "value": 0.05, "chance": 1 / 30}})
    assert (s.stage_id, s.name, s.kind, s.metric, s.value, s.chance) == (im.stage_id, "imagenet", "classification",
                                                                         "top1", 0.05, 1 / 30)
    d = stage_score(co, {"quality": {"split": "val", "metric": "map", "value": 0.0105, "chance": None}})
    assert (d.kind, d.metric, d.value, d.chance) == ("detection", "map", 0.0105, 0.0)
    u = stage_score(im, {"quality": {"metric": "top1", "value": None, "chance": 0.5,
                                     "error": "FileNotFoundError: val"}})
    assert u.value is None and u.text() == "top1 not scored (FileNotFoundError: val)"


def test_ready_line_states_the_score_against_chance_and_warns_at_chance() -> None:
    level, msg = ready_line("imagenet-S-2-abc", cls(0.2), "trained", 12.34, 3)
    assert level == logging.INFO
    assert msg == "[grid] stage imagenet-S-2-abc ready (trained, 12.3s): top1 0.200 vs chance 0.0333 | 3 stages left"
    level, msg = ready_line("imagenet-S-2-abc", cls(1 / 30), "trained", 5.0, 0)
    assert level == logging.WARNING
    assert msg == ("[grid] stage imagenet-S-2-abc ready (trained, 5.0s): top1 0.033 vs chance 0.0333: AT CHANCE "
                   "(within 0.02 of chance): runs fine-tuned from it test an untrained start; train it longer "
                   "(--set pretraining.imagenet.recipe.epochs=N) | 0 stages left")
    level, msg = ready_line("coco-S-2-def", det(0.004), "found", 0.0, 1, "steps=N")
    assert msg.endswith("train it longer (--set pretraining.coco.recipe.steps=N) | 1 stages left")
    assert level == logging.WARNING and "map 0.004 vs chance 0: AT CHANCE (within 0.005 of chance)" in msg
    assert ready_line("x", None, "trained", 1.0, 0) == (logging.INFO, "[grid] stage x ready (trained, 1.0s): no "
                                                                      "stage.json, not scored | 0 stages left")


def test_weak_stages_compare_each_kind_with_its_own_minimum() -> None:
    scores = [cls(0.05), cls(0.12, name="other"), det(0.01), det(None)]
    weak = weak_stages(scores, {"classification": 0.1, "detection": 0.02})
    assert [(s.name, lo) for s, lo in weak] == [("imagenet", 0.1), ("coco", 0.02)]
    assert weak_stages(scores, {"classification": 0.1, "detection": None}) == [(scores[0], 0.1)]
    assert weak_stages(scores, {"classification": 0.05}) == []  # 0.05 is not below 0.05


def _store_stage(root: Path, study: str, stage_id: str, value: float | None, chance: float | None) -> None:
    folder = root / study / "pretrain" / stage_id
    folder.mkdir(parents=True)
    metric = "top1" if chance is not None else "map"
    (folder / "stage.json").write_text(json.dumps({"stage_id": stage_id, "quality": {
        "split": "val", "metric": metric, "value": value, "chance": chance}}))


def test_check_stage_scores_refuses_a_stage_below_the_minimum_naming_stage_score_minimum_and_fix(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = tiny_spec(tmp_path)
    plan = plan_grid(spec, ["min_stage_score={classification: 0.4, detection: 0.02}"])
    im = next(s for s in plan.stages if s.name == "imagenet" and s.rung == "S-6")
    co = next(s for s in plan.stages if s.name == "coco" and s.rung == "S-6")
    runs = [r for r in plan.runs if r.rung == "S-6" and r.init == "imagenet_coco"]  # start from co, co from im
    _store_stage(tmp_path, plan.study.study, im.stage_id, 1 / 3, 1 / 3)  # 3 classes: at chance
    _store_stage(tmp_path, plan.study.study, co.stage_id, 0.05, None)
    with caplog.at_level(logging.WARNING, logger="capgate.grid"), pytest.raises(StageScoreError) as exc:
        check_stage_scores(plan.study, list(plan.stages), runs, location(tmp_path))
    assert str(exc.value) == (
        f"1 pretraining stage(s) ended below min_stage_score; no run fine-tunes from them:\n"
        f"  {im.stage_id} (pretraining.imagenet): top1 0.333 vs chance 0.333, below the minimum 0.4 (AT CHANCE)\n"
        f"fix: train the stage longer (--set pretraining.imagenet.recipe.steps=4) and rerun, or lower the minimum "
        f"(--set min_stage_score.classification=0.33)")
    assert f"1 of 2 pretraining stages the runs start from are AT CHANCE: {im.stage_id} top1 0.333" in caplog.text
    # without a minimum the grid goes on; scratch runs need no stage at all
    free = plan_grid(spec, ())
    check_stage_scores(free.study, list(free.stages), runs, location(tmp_path))
    check_stage_scores(plan.study, list(plan.stages), [r for r in plan.runs if r.init == "scratch"],
                       location(tmp_path))


def test_refusal_suggests_twice_the_epochs_of_an_epoch_recipe() -> None:
    stages = {s.stage_id: s for s in expand(study_from_dict(base_spec()))[0]}
    im = next(s for s in stages.values() if s.name == "imagenet")
    weak = [(StageScore(im.stage_id, "imagenet", "classification", "top1", 0.0, 0.5), 0.6)]
    assert refusal_message(weak, stages).endswith(
        f"(--set pretraining.imagenet.recipe.epochs={2 * im.recipe.epochs}) and rerun, or lower the minimum "
        f"(--set min_stage_score.classification=0)")


def test_stage_score_error_exits_1_and_is_not_an_input_error() -> None:
    assert issubclass(StageScoreError, CapgateError) and not issubclass(StageScoreError, InputError)
    assert StageScoreError.exit_code == 1


# ---- the spec key ----------------------------------------------------------------------------------


def test_min_stage_score_is_validated() -> None:
    st = study_from_dict({**base_spec(), "min_stage_score": {"classification": 0.1, "detection": 0.02}})
    assert (st.min_stage_score.classification, st.min_stage_score.detection) == (0.1, 0.02)
    st = study_from_dict(base_spec(), ["min_stage_score.detection=0.02"])
    assert (st.min_stage_score.classification, st.min_stage_score.detection) == (None, 0.02)
    assert study_from_dict(base_spec()).min_stage_score is None
    for bad, msg in (({"segmentation": 0.1}, "spec key 'min_stage_score.segmentation' is unknown; valid keys under "
                                             "'min_stage_score': classification, detection"),
                     ({"classification": 1.5}, "spec key 'min_stage_score.classification' = 1.5 is out of range"),
                     ({"detection": "high"}, "spec key 'min_stage_score.detection' must be a float, got 'high'"),
                     (0.1, "spec key 'min_stage_score' must be a mapping, got 0.1")):
        with pytest.raises(SpecError, match=msg.replace("[", r"\[").replace(".", r"\.")):
            study_from_dict({**base_spec(), "min_stage_score": bad})


def test_min_stage_score_enters_no_run_or_stage_id() -> None:
    demo = Path(__file__).resolve().parents[1] / "experiments" / "demo.yaml"
    (sa, ra), (sb, rb) = (expand(load_study(demo, o)) for o in (
        (), ["min_stage_score={classification: 0.5, detection: 0.1}"]))
    assert [r.run_id for r in ra] == [r.run_id for r in rb] and len(ra) > 0
    assert [s.stage_id for s in sa] == [s.stage_id for s in sb] and len(sa) > 0


@pytest.mark.slow
def test_run_grid_stops_before_fine_tuning_on_a_stage_below_the_minimum(tmp_path: Path) -> None:
    spec = tiny_classification_spec(tmp_path)
    code = run_main(["run-grid", str(spec), "--storage", str(tmp_path / "store"), "--max-concurrent", "2",
                     "--set", "min_stage_score.classification=1.0"])
    assert code == 1
    assert list((tmp_path / "store" / "tinycls" / "pretrain").glob("*/stage.json"))
    assert not list((tmp_path / "store" / "tinycls" / "runs").glob("*.json"))  # no run fine-tuned


def test_run_grid_cli_turns_the_refusal_into_exit_1_and_its_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    import capgate.grid

    def refuse(*args: object, **kwargs: object) -> None:
        raise StageScoreError("1 pretraining stage(s) ended below min_stage_score; no run fine-tunes from them")

    monkeypatch.setattr(capgate.grid, "run_grid", refuse)
    assert run_main(["run-grid", str(tiny_spec(tmp_path)), "--storage", str(tmp_path / "store")]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "Error: 1 pretraining stage(s) ended below min_stage_score; no run fine-tunes from them")
