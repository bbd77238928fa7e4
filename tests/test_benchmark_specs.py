"""The lightweight-CNN benchmark's specs: ONE real-data spec of three datasets, each train set with its own
classes, per-model ImageNet weights from ${VAR}s (a dry run lists what is unset; only the Tiny ImageNet root
that its `classes: from_data` reads must be set), and the demos on the synthetic benchmark world."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import run_main
from test_data_tinyimagenet import WNIDS, write_tiny_imagenet

from capgate.data.roots import resolve_root
from capgate.errors import SpecError
from capgate.grid.plan import plan_grid
from capgate.grid.preflight import preflight

EXP = Path(__file__).resolve().parents[1] / "experiments"
SPEC = EXP / "lightweight_benchmark.yaml"
MODELS = ["squeezenet1_1", "shufflenet_v2_x1_0", "mobilenetv3_small_100", "resnet18", "efficientnet_v2_s"]


def _ids(items: list[str]) -> str:
    """One hash of a sorted id list (the ids the specs had before issue 20, pinned below)."""
    return hashlib.sha256(",".join(sorted(items)).encode()).hexdigest()[:16]


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """TINYIMAGENET_ROOT at a real-layout Tiny ImageNet (3 wnids); the other variables unset."""
    write_tiny_imagenet(tmp_path / "data")  # data/tiny-imagenet-200/wnids.txt, train/, val/
    monkeypatch.setenv("TINYIMAGENET_ROOT", str(tmp_path / "data"))
    for var in ("CIFAR10_ROOT", "CIFAR100_ROOT", "IMAGENET_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_one_spec_three_datasets_each_with_its_classes_one_protocol_a_weights_file_per_model(tiny):
    plan = plan_grid(SPEC)
    study = plan.study
    assert [ts.name for ts in study.train_sets] == ["cifar10", "cifar100", "tinyimagenet"]
    assert [len(study.classes_of(i)) for i in range(3)] == [10, 100, len(WNIDS)] and study.classes == ()
    assert study.classes_of(2) == tuple(WNIDS)  # wnids.txt's order (unsorted), the labels' index
    assert len(plan.runs) == 3 * 5 * 2 * 5
    assert {(r.train_set.name, len(r.classes)) for r in plan.runs} == {("cifar10", 10), ("cifar100", 100),
                                                                       ("tinyimagenet", 3)}
    assert {r.recipe for r in plan.runs} == {study.recipe}  # one protocol for every dataset, model and init
    assert [[e.data.split for e in ts.evals] for ts in study.train_sets] == [["test"], ["test"], ["val"]]
    # one stage per model, whatever the dataset: a stage does not depend on the fine-tuning classes
    assert sorted(st.checkpoint for st in plan.stages) == sorted(f"${{IMAGENET_WEIGHTS}}/{m}.pth" for m in MODELS)
    assert {(r.rung, r.init_stage) for r in plan.runs if r.init == "imagenet"} == \
        {(st.rung, st.stage_id) for st in plan.stages}


def test_run_and_stage_ids_are_those_of_the_three_specs_it_replaced(tiny):
    plan = plan_grid(SPEC)
    runs = {name: [r for r in plan.runs if r.train_set.name == name]
            for name in ("cifar10", "cifar100", "tinyimagenet")}
    # CIFAR-10: the study name and classes of the CIFAR-10-only spec, so the very same ids
    assert _ids([r.run_id for r in runs["cifar10"]]) == "2f241276affa7fc5"
    assert _ids([st.stage_id for st in plan.stages]) == "9bc07c58af640363"  # the three specs' shared stages
    # CIFAR-100 and Tiny ImageNet: the same runs but for the study's name (the specs were *_cifar100, *_tinyimagenet)
    old = {"cifar100": "4b61a702deda7f46", "tinyimagenet": "b8149addd45f9c9c"}
    for name, ids in old.items():
        assert _ids([replace(r, study=f"lightweight_benchmark_{name}").run_id for r in runs[name]]) == ids


def test_dry_run_shows_each_train_sets_class_count(tiny, capsys):
    store = str(tiny / "store")
    assert run_main(["run-grid", str(SPEC), "--dry-run", "--storage", store]) == 0
    out = capsys.readouterr().out
    assert "150 runs = 3 train sets x 5 rungs x 2 inits x 5 seeds" in out
    assert "train sets: cifar10 (10 classes), cifar100 (100 classes), tinyimagenet (3 classes)" in out
    assert out.count(" train=tinyimagenet eval=tinyimagenet[in_domain]") == 50
    assert run_main(["run-grid", str(SPEC), "--dry-run", "--json", "--storage", store]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["train_sets"] == [{"name": "cifar10", "n_classes": 10}, {"name": "cifar100", "n_classes": 100},
                                  {"name": "tinyimagenet", "n_classes": 3}]


def test_dry_run_lists_unset_variables_and_missing_weights(tiny, monkeypatch):
    plan = plan_grid(SPEC)
    problems, unset = preflight(plan, strict=False)
    assert problems == [] and len(unset) == 7
    assert "CIFAR10_ROOT" in unset[0] and "CIFAR100_ROOT" in unset[1]
    assert all("IMAGENET_WEIGHTS" in u for u in unset[2:])
    monkeypatch.setenv("CIFAR10_ROOT", str(tiny))
    monkeypatch.setenv("CIFAR100_ROOT", str(tiny))
    monkeypatch.setenv("IMAGENET_WEIGHTS", str(tiny))
    problems, unset = preflight(plan, strict=False)
    assert unset == [] and len(problems) == 5
    assert [p.split("weights file ")[1].split(" does not exist")[0] for p in problems] == \
        [str(tiny / f"{m}.pth") for m in MODELS]


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


def test_without_tinyimagenet_root_the_dry_run_names_the_key_the_variable_and_the_file(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("TINYIMAGENET_ROOT", raising=False)
    with pytest.raises(SpecError, match=r"'train_sets\[2\]\.classes' = from_data: .*TINYIMAGENET_ROOT.*"
                                        r"export TINYIMAGENET_ROOT="):
        plan_grid(SPEC)
    monkeypatch.setenv("TINYIMAGENET_ROOT", str(tmp_path))
    assert run_main(["run-grid", str(SPEC), "--dry-run", "--storage", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert "'train_sets[2].classes' = from_data" in err and "no wnids.txt here nor in tiny-imagenet-200/" in err


def test_classes_from_data_is_refused_for_a_synthetic_root_or_a_format_without_a_class_index(tmp_path):
    with pytest.raises(SpecError, match=r"root is 'synthetic' .*fix: list the class names"):
        plan_grid(EXP / "lightweight_benchmark_demo_tinyimagenet.yaml", ["classes=from_data"])
    with pytest.raises(SpecError, match=r"format 'cifar10' has no class index .*formats that have one: tinyimagenet"):
        plan_grid(EXP / "lightweight_benchmark_demo.yaml", ["classes=from_data", f"datasets.cifar10.root={tmp_path}"])
