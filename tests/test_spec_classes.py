"""A class list per train set (``train_sets[i].classes``): names or ``from_data`` (that train set's own
dataset), the study's ``classes`` as the default, run ids independent of where a list is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import run_main
from test_data_tinyimagenet import WNIDS, write_tiny_imagenet

from capgate.errors import SpecError
from capgate.spec.load import study_from_dict
from capgate.spec.model import expand

C10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
C100 = [f"fine{i:02d}" for i in range(100)]


def _spec(tiny_root: str = "/data/tiny") -> dict:
    """Three classification train sets (CIFAR-10, CIFAR-100, Tiny ImageNet), one model, scratch, 2 seeds."""
    def ts(name: str, split: str) -> dict:
        return {"dataset": name, "split": "train", "name": name,
                "eval": [{"dataset": name, "split": split, "name": name, "shift": "in_domain"}]}
    return {"study": "bench", "task": "classification",
            "datasets": {"cifar10": {"format": "cifar10", "root": "/data/c10"},
                         "cifar100": {"format": "cifar100", "root": "/data/c100"},
                         "tinyimagenet": {"format": "tinyimagenet", "root": tiny_root}},
            "train_sets": [ts("cifar10", "test"), ts("cifar100", "test"), ts("tinyimagenet", "val")],
            "rungs": {"standard": ["resnet18"]}, "seeds": [0, 1]}


def _classes_by_set(spec: dict) -> dict[str, set[int]]:
    _, runs = expand(study_from_dict(spec))
    out: dict[str, set[int]] = {}
    for r in runs:
        out.setdefault(r.train_set.name, set()).add(len(r.classes))
    return out


def test_each_train_set_declares_its_list_and_its_runs_carry_it(tmp_path: Path) -> None:
    write_tiny_imagenet(tmp_path)  # the real layout: tiny-imagenet-200/wnids.txt (3 wnids, unsorted), train/, val/
    spec = _spec(str(tmp_path))
    for t, classes in zip(spec["train_sets"], (C10, C100, "from_data")):
        t["classes"] = classes
    study = study_from_dict(spec)
    assert study.classes == ()  # no top-level list: every train set has its own
    assert [len(study.classes_of(i)) for i in range(3)] == [10, 100, 3]
    assert study.classes_of(2) == tuple(WNIDS)  # its own wnids.txt, in file order
    assert _classes_by_set(spec) == {"cifar10": {10}, "cifar100": {100}, "tinyimagenet": {3}}


def test_a_train_set_without_a_list_uses_the_studys(tmp_path: Path) -> None:
    spec = _spec()
    spec["classes"] = C10
    spec["train_sets"][1]["classes"] = C100
    spec["train_sets"][2]["classes"] = ["n01", "n02"]
    assert _classes_by_set(spec) == {"cifar10": {10}, "cifar100": {100}, "tinyimagenet": {2}}
    study = study_from_dict(spec)
    assert study.classes == tuple(C10) and study.classes_of(0) == tuple(C10)


def test_from_data_of_a_train_set_reads_its_own_dataset_not_the_first(tmp_path: Path) -> None:
    write_tiny_imagenet(tmp_path)
    spec = _spec(str(tmp_path))
    spec["classes"] = C10  # the first train set (CIFAR-10) has no class index: from_data there would fail
    spec["train_sets"][2]["classes"] = "from_data"
    study = study_from_dict(spec)
    assert study.classes_of(2) == tuple(WNIDS) and study.classes_of(1) == tuple(C10)


def test_run_ids_do_not_depend_on_where_a_list_is_written() -> None:
    top = _spec()
    top["classes"] = C10
    top["train_sets"] = top["train_sets"][:1]
    own = _spec()
    own["train_sets"] = own["train_sets"][:1]
    own["train_sets"][0]["classes"] = C10
    ids = [sorted(r.run_id for r in expand(study_from_dict(s))[1]) for s in (top, own)]
    assert ids[0] == ids[1] and len(ids[0]) == 2
    other = _spec()
    other["classes"] = C10
    other["train_sets"][1]["classes"] = C100
    other["train_sets"][2]["classes"] = C100[:20]
    runs = expand(study_from_dict(other))[1]
    assert sorted(r.run_id for r in runs if r.train_set.name == "cifar10") == ids[0]  # other train sets change nothing


def test_missing_classes_name_the_key_the_train_sets_and_the_fix(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    spec = _spec()
    spec["train_sets"][0]["classes"] = C10
    with pytest.raises(SpecError, match=r"^spec key 'classes' is missing and train set\(s\) cifar100, tinyimagenet "
                                        r"declare no 'classes' of their own; fix: add a top-level "
                                        r"'classes: \[\.\.\.\]'"):
        study_from_dict(spec)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_main(["run-grid", str(path), "--dry-run", "--storage", str(tmp_path / "store")]) == 2
    assert f"Error: {path}: spec key 'classes' is missing" in capsys.readouterr().err


def test_bad_train_set_lists_name_their_key(tmp_path: Path) -> None:
    spec = _spec(str(tmp_path / "nothing"))
    spec["classes"] = C10
    spec["train_sets"][1]["classes"] = []
    with pytest.raises(SpecError, match=r"spec key 'train_sets\[1\]\.classes' must be a non-empty list of class names "
                                        r"or 'from_data', got \[\]"):
        study_from_dict(spec)
    spec["train_sets"][1]["classes"] = "from_data"
    with pytest.raises(SpecError, match=r"spec key 'train_sets\[1\]\.classes' = from_data: format 'cifar100' has no "
                                        r"class index"):
        study_from_dict(spec)
    del spec["train_sets"][1]["classes"]
    spec["train_sets"][2]["classes"] = "from_data"  # its root holds no tiny-imagenet-200/
    with pytest.raises(SpecError, match=r"spec key 'train_sets\[2\]\.classes' = from_data: .*no wnids.txt"):
        study_from_dict(spec)
    spec["datasets"]["tinyimagenet"]["root"] = "synthetic"
    with pytest.raises(SpecError, match=r"'train_sets\[2\]\.classes' = from_data reads a dataset on disk"):
        study_from_dict(spec)


@pytest.mark.slow
def test_each_run_trains_and_scores_with_its_train_sets_classes(tmp_path: Path) -> None:
    """Two train sets of one Tiny ImageNet fixture: all 3 wnids (from_data) and 2 of them. Each model's head
    has its train set's classes and its eval set is scored on those classes' val images only."""
    from capgate.train import train_one_run

    write_tiny_imagenet(tmp_path / "data")  # val/: one image per class

    def ts(name: str, classes: object) -> dict:
        return {"dataset": "tiny", "split": "train", "name": name, "classes": classes,
                "eval": [{"dataset": "tiny", "split": "val", "name": name, "shift": "in_domain"}]}
    spec = {"study": "two", "task": "classification",
            "datasets": {"tiny": {"format": "tinyimagenet", "root": str(tmp_path / "data")}},
            "train_sets": [ts("tiny3", "from_data"), ts("tiny2", WNIDS[:2])], "rungs": {"mobilenetv3": ["S-6"]},
            "seeds": [0], "recipe": {"optimizer": "adamw", "lr": 0.01, "steps": 2, "batch_size": 4, "resolution": 32,
                                     "warmup_steps": 0}}
    _, runs = expand(study_from_dict(spec))
    assert [len(r.classes) for r in runs] == [3, 2]
    (three,), (two,) = (train_one_run(r, tmp_path / "store") for r in runs)
    assert three["status"] == two["status"] == "ok", (three["error"], two["error"])
    # S-6's head is one linear layer on 96 features: 97 parameters per class, the backbone the same
    assert three["backbone_params"] == two["backbone_params"]
    assert three["params"] - two["params"] == 96 + 1
    assert three["top1"] in {0, 1 / 3, 2 / 3, 1} and two["top1"] in {0, 1 / 2, 1}  # 3 val images vs 2
