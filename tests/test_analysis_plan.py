"""Analysis plans: defaults, validation errors naming key/value/choices, expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from capgate.analysis import DEFAULT_PLAN, analyze, demo_truth, load_plan, resolve_plan, simulate_results
from capgate.errors import SpecError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_plan_loads():
    plan = load_plan(REPO / "analysis" / "capacity_gate.yaml")
    assert plan["baseline"] == "scratch" and plan["correction"] == "holm" and plan["margin"] == "pooled_sd"
    assert plan["metric"] == {"detection": "map", "classification": "top1"}
    texts = [e["text"] for e in plan["expectations"]]
    assert "imagenet_coco helps in detection on cross_dataset for rungs with >= 500,000 params" in texts


def test_defaults():
    plan = resolve_plan(None)
    assert plan == {**DEFAULT_PLAN, "expectations": []}


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
     "plan key 'expectations[0].verdict' has invalid value 'great'; valid: ['helps', 'within_noise', 'hurts', 'inconclusive']"),
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
    assert plan["margin"] == {"detection": 0.02}
    t = simulate_results(demo_truth(seeds=2), seed=0)
    a = analyze(t, {"margin": 0.02, "n_boot": 0})
    assert (a.gains["margin"] == 0.02).all()


def test_expectations_evaluated():
    t = simulate_results(demo_truth(seeds=4), seed=2)
    plan = {"n_boot": 0, "expectations": [
        {"init": "imagenet_coco", "shift": "cross_dataset", "min_params": 500_000, "verdict": "helps"},
        {"init": "imagenet", "shift": "cross_modality", "verdict": "helps"},
        {"init": "imagenet", "family": "nosuch", "verdict": "helps"},
    ]}
    a = analyze(t, plan)
    e = a.expectations
    assert e.loc[0, "holds"] and e.loc[0, "n_match"] == 8 and e.loc[0, "detail"] == "8/8 matching contrasts are helps"
    assert not e.loc[1, "holds"] and "not:" in e.loc[1, "detail"]
    assert not e.loc[2, "holds"] and e.loc[2, "detail"] == "no matching contrasts in the results"
    assert e.loc[1, "text"] == "imagenet helps on cross_modality"


def test_unknown_baseline_is_an_input_error():
    t = simulate_results(demo_truth(seeds=2), seed=0)
    with pytest.raises(SpecError, match=r"plan baseline 'random' is not an init of the results table"):
        analyze(t, {"baseline": "random"})
