"""Analysis plans: defaults, validation errors naming key/value/choices, expectations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from capgate.analysis import DEFAULT_PLAN, analyze, as_plan, demo_truth, load_plan, resolve_plan, simulate_results
from capgate.errors import SpecError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_plan_loads():
    plan = load_plan(REPO / "analysis" / "capacity_gate.yaml")
    assert plan.baseline == "scratch" and plan.correction == "holm" and plan.margin == 0.01 and plan.pairing == "auto"
    assert plan.metric == {"detection": "map", "classification": "top1"}
    texts = [e["text"] for e in plan.expectations]
    assert "imagenet_coco helps in detection on cross_dataset for rungs with >= 500,000 params" in texts


def test_defaults():
    plan = resolve_plan(None)
    assert plan.to_dict() == {**DEFAULT_PLAN, "expectations": []}


def test_a_plan_is_frozen_resolved_once_and_round_trips():
    plan = resolve_plan({"alpha": 0.01, "contrasts": ["imagenet"], "sequential": {"max_seeds": 6}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.alpha = 0.05  # type: ignore[misc]
    assert resolve_plan(plan) is plan  # a resolved plan passes through
    assert plan.contrasts == ("imagenet",) and plan.sequential.schedule == (3, 5, 6)
    assert resolve_plan(plan.to_dict()) == plan
    assert as_plan(REPO / "analysis" / "capacity_gate.yaml").source == str(REPO / "analysis" / "capacity_gate.yaml")


@pytest.mark.parametrize("raw, needle", [
    ({"alpha": 0.7}, "plan key 'alpha' has invalid value 0.7; valid: a number in (0, 0.5)"),
    ({"correction": "bonferroni"}, "plan key 'correction' has invalid value 'bonferroni'; valid: ['holm', 'bh', 'none']"),
    ({"metric": {"detection": "top1"}}, "plan key 'metric.detection' has invalid value 'top1'; valid: ['map', 'ap50', 'ap75']"),
    ({"margin": "two_sd"}, "plan key 'margin' has invalid value 'two_sd'"),
    ({"interval": "z"}, "plan key 'interval' has invalid value 'z'"),
    ({"contrasts": ["scratch"]}, "plan key 'contrasts'"),
    ({"colour": "red"}, "unknown plan key(s) ['colour']"),
    ({"expectations": [{"init": "imagenet"}]}, "expectations[0] needs key 'verdict'"),
    ({"expectations": [{"init": "imagenet", "verdict": "great"}]},
     "plan key 'expectations[0].verdict' has invalid value 'great'; valid: ['helps', 'within_noise', 'hurts']"),
    ({"expectations": [{"init": "imagenet", "verdict": ["within_noise", "inconclusive"]}]},
     "expectations[0].verdict lists 'inconclusive'; an expectation is met only by decided verdicts"),
    ({"pairing": "maybe"}, "plan key 'pairing' has invalid value 'maybe'"),
    ({"expectations": [{"init": "imagenet", "verdict": "helps", "shift": "up"}]}, "expectations[0].shift"),
    ({"expectations": [{"init": "imagenet", "verdict": "helps", "when": 1}]}, "expectations[0] has unknown key(s) ['when']"),
])
def test_validation_errors(raw, needle):
    with pytest.raises(SpecError) as exc:
        resolve_plan(raw, source="p.yaml")
    assert needle in str(exc.value) and str(exc.value).startswith("p.yaml: ")


def test_yaml_errors(tmp_path):
    with pytest.raises(SpecError, match="plan file not found"):
        load_plan(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("alpha: [1,\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_plan(tmp_path / "bad.yaml")


def test_margin_per_task_and_number():
    plan = resolve_plan({"margin": {"detection": 0.02}})
    assert plan.margin == {"detection": 0.02}
    t = simulate_results(demo_truth(seeds=2), seed=0)
    a = analyze(t, {"margin": 0.02, "n_boot": 0})
    assert (a.gains["margin"] == 0.02).all()


def test_expectations_evaluated():
    t = simulate_results(demo_truth(seeds=4), seed=2)
    plan = {"n_boot": 0, "expectations": [
        {"init": "imagenet_coco", "shift": "cross_dataset", "min_params": 500_000, "verdict": "helps"},
        {"init": "imagenet", "shift": "cross_modality", "verdict": "helps"},
        {"init": "imagenet", "shift": "in_domain", "max_params": 60_000, "verdict": "hurts"},
    ]}
    a = analyze(t, plan)
    e = a.expectations.set_index("text")
    big = e.loc["imagenet_coco helps on cross_dataset for rungs with >= 500,000 params"]
    assert big["status"] in ("holds", "untested") and big["n_match"] == 8
    assert big["n_hold"] + big["n_untested"] == 8 and big["n_hold"] >= 4
    assert big["detail"].startswith(f"{big['n_hold']}/8 matching contrasts are helps, {big['n_untested']} inconclusive")
    # true gain 0 on cross_modality: no contrast there helps; decided ones (within_noise) contradict it
    modal = e.loc["imagenet helps on cross_modality"]
    assert modal["status"] in ("fails", "untested") and not modal["holds"]
    assert modal["n_hold"] == 0
    # the smallest rungs' in-domain contrasts are inconclusive or within noise: never "holds"
    small = e.loc["imagenet hurts on in_domain for rungs with <= 60,000 params"]
    assert small["status"] in ("untested", "fails") and not small["holds"]


def test_plan_names_that_match_nothing_are_input_errors():
    t = simulate_results(demo_truth(seeds=2), seed=0)
    with pytest.raises(SpecError, match=r"expectations\[0\] .* names family 'nosuch', which is not in the results"):
        analyze(t, {"n_boot": 0, "expectations": [{"init": "imagenet", "family": "nosuch", "verdict": "helps"}]})
    with pytest.raises(SpecError, match=r"contrasts \['imagenet_typo'\] name no init of the results"):
        analyze(t, {"n_boot": 0, "contrasts": ["imagenet_typo"]})


def test_an_expectation_of_a_task_or_shift_the_results_lack_is_not_applicable_not_an_error():
    """A paper plan shared by studies (capacity_gate.yaml: cross-dataset detection claims) reads a
    classification study or one without a cross-dataset shift: those expectations are untested there."""
    t = simulate_results(demo_truth(seeds=2), seed=0)
    plan = {"n_boot": 0, "expectations": [
        {"init": "imagenet", "task": "classification", "verdict": "helps"},
        {"init": "imagenet", "shift": "cross_domain", "verdict": "helps"}]}
    e = analyze(t, plan).expectations
    assert list(e["status"]) == ["untested", "untested"] and not e["holds"].any()
    assert list(e["detail"]) == ["not applicable: these results have no task 'classification' contrast",
                                 "not applicable: these results have no shift 'cross_domain' contrast"]


def test_unknown_baseline_is_an_input_error():
    t = simulate_results(demo_truth(seeds=2), seed=0)
    with pytest.raises(SpecError, match=r"plan baseline 'random' is not an init of the results table"):
        analyze(t, {"baseline": "random"})
