"""The lightweight-CNN benchmark's specs: real data and per-model ImageNet weights from ${VAR}s
(a dry run lists what is unset, never crashes), the demo on the synthetic benchmark world."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_main
from test_data_tinyimagenet import WNIDS, write_tiny_imagenet

from capgate.data.roots import resolve_root
from capgate.errors import SpecError
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
    for name, ds in (("lightweight_benchmark_demo", "cifar10"), ("lightweight_benchmark_demo_cifar100", "cifar100"),
                     ("lightweight_benchmark_demo_tinyimagenet", "tinyimagenet")):
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
    tiny = plan_grid(EXP / "lightweight_benchmark_demo_tinyimagenet.yaml").study
    wnids = (tmp_path / "world-benchmark" / "tinyimagenet" / "tiny-imagenet-200" / "wnids.txt").read_text().split()
    assert list(tiny.classes) == wnids  # the demo lists the stand-in's classes in wnids.txt order


def test_tinyimagenet_spec_takes_its_classes_from_wnids_txt_and_dry_runs(monkeypatch, tmp_path, capsys):
    write_tiny_imagenet(tmp_path / "data")  # the real layout: data/tiny-imagenet-200/wnids.txt, train/, val/
    monkeypatch.setenv("TINYIMAGENET_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("IMAGENET_WEIGHTS", raising=False)
    spec = EXP / "lightweight_benchmark_tinyimagenet.yaml"
    plan = plan_grid(spec)
    assert plan.study.classes == tuple(WNIDS)  # wnids.txt's order (unsorted), the labels' index
    assert len(plan.runs) == 5 * 2 * 5 and {r.recipe for r in plan.runs} == {plan.study.recipe}
    assert plan.study.recipe == plan_grid(EXP / "lightweight_benchmark.yaml").study.recipe  # the CIFAR protocol
    assert [e.data.split for e in plan.study.train_sets[0].evals] == ["val"]  # test/ has no labels
    assert run_main(["run-grid", str(spec), "--dry-run", "--storage", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    assert "50 runs = 1 train sets x 5 rungs x 2 inits x 5 seeds" in out
    assert out.count(" train=tinyimagenet eval=tinyimagenet[in_domain]") == 50
    assert f"classes: [{', '.join(WNIDS)}]" in out


def test_tinyimagenet_spec_without_its_root_names_the_variable_and_the_file(monkeypatch, tmp_path, capsys):
    spec = EXP / "lightweight_benchmark_tinyimagenet.yaml"
    monkeypatch.delenv("TINYIMAGENET_ROOT", raising=False)
    with pytest.raises(SpecError, match=r"'classes' = from_data: .*TINYIMAGENET_ROOT.*export TINYIMAGENET_ROOT="):
        plan_grid(spec)
    monkeypatch.setenv("TINYIMAGENET_ROOT", str(tmp_path))
    assert run_main(["run-grid", str(spec), "--dry-run", "--storage", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert "'classes' = from_data" in err and "no wnids.txt here nor in tiny-imagenet-200/" in err


def test_classes_from_data_is_refused_for_a_synthetic_root_or_a_format_without_a_class_index(tmp_path):
    with pytest.raises(SpecError, match=r"root is 'synthetic' .*fix: list the class names"):
        plan_grid(EXP / "lightweight_benchmark_demo_tinyimagenet.yaml", ["classes=from_data"])
    with pytest.raises(SpecError, match=r"format 'cifar10' has no class index .*formats that have one: tinyimagenet"):
        plan_grid(EXP / "lightweight_benchmark.yaml", ["classes=from_data", f"datasets.cifar10.root={tmp_path}"])
