"""The lightweight-CNN benchmark's specs: real data and per-model ImageNet weights from ${VAR}s
(a dry run lists what is unset, never crashes), the demo on the synthetic benchmark world."""

from __future__ import annotations

from pathlib import Path

import pytest

from capgate.data.roots import resolve_root
from capgate.grid.plan import plan_grid
from capgate.grid.preflight import preflight

EXP = Path(__file__).resolve().parents[1] / "experiments"
MODELS = ["squeezenet1_1", "shufflenet_v2_x1_0", "mobilenetv3_small_100", "resnet18", "efficientnet_v2_s"]


@pytest.mark.parametrize("name,classes", [("lightweight_benchmark", 10), ("lightweight_benchmark_cifar100", 100)])
def test_real_spec_one_protocol_five_seeds_a_weights_file_per_model(name, classes):
    plan = plan_grid(EXP / f"{name}.yaml")
    assert len(plan.study.classes) == classes and len(plan.runs) == 5 * 2 * 5
    assert {r.recipe for r in plan.runs} == {plan.study.recipe}  # one protocol for every model and init
    assert sorted(st.checkpoint for st in plan.stages) == sorted(f"${{IMAGENET_WEIGHTS}}/{m}.pth" for m in MODELS)
    by_rung = {r.rung: r.init_stage for r in plan.runs if r.init == "imagenet"}
    assert {st.stage_id: st.rung for st in plan.stages} == {v: k for k, v in by_rung.items()}


def test_dry_run_lists_unset_variables_and_missing_weights(monkeypatch, tmp_path):
    monkeypatch.delenv("CIFAR10_ROOT", raising=False)
    monkeypatch.delenv("IMAGENET_WEIGHTS", raising=False)
    plan = plan_grid(EXP / "lightweight_benchmark.yaml")
    problems, unset = preflight(plan, strict=False)
    assert problems == [] and len(unset) == 6
    assert "CIFAR10_ROOT" in unset[0] and all("IMAGENET_WEIGHTS" in u for u in unset[1:])
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path))
    monkeypatch.setenv("IMAGENET_WEIGHTS", str(tmp_path))
    problems, unset = preflight(plan, strict=False)
    assert unset == [] and len(problems) == 5
    assert [p.split("weights file ")[1].split(" does not exist")[0] for p in problems] == \
        [str(tmp_path / f"{m}.pth") for m in MODELS]


def test_demo_specs_expand_to_three_models_two_inits_three_seeds():
    for name, ds in (("lightweight_benchmark_demo", "cifar10"), ("lightweight_benchmark_demo_cifar100", "cifar100")):
        plan = plan_grid(EXP / f"{name}.yaml")
        assert len(plan.runs) == 18 and len(plan.stages) == 3
        assert plan.study.train_sets[0].data.format == ds and plan.study.train_sets[0].data.root == "synthetic"
        assert preflight(plan, strict=True) == ([], [])


@pytest.mark.slow
def test_synthetic_root_of_a_benchmark_format_is_the_benchmark_world(tmp_path):
    plan = plan_grid(EXP / "lightweight_benchmark_demo_cifar100.yaml")
    ref = plan.study.train_sets[0].data
    root = resolve_root(ref, tmp_path / "world")
    assert root == tmp_path / "world-benchmark" / "cifar100" and (root / "cifar-100-python" / "train").is_file()
    assert resolve_root(ref, tmp_path / "world") == root  # the second call reuses it
