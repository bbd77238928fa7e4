"""Study spec: validation errors name key, value and choices; overrides; expansion; run ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import base_spec

from capgate.errors import SpecError
from capgate.spec.model import RunSpec, expand
from capgate.spec.load import load_study, parse_override, study_from_dict

REPO = Path(__file__).resolve().parents[1]


def test_expand_counts_and_order() -> None:
    stages, runs = expand(study_from_dict(base_spec()))
    assert len(runs) == 1 * 3 * 3 * 3
    # one classification stage per rung, one detection stage per rung after it
    assert len(stages) == 6
    assert [s.kind for s in stages] == ["classification"] * 3 + ["detection"] * 3
    ids = {s.stage_id for s in stages}
    assert all(s.parent is None or s.parent in ids for s in stages)
    assert len({r.run_id for r in runs}) == 27
    names = [e.name for e in runs[0].train_set.evals]
    assert names == ["llvip/rgb", "flir/rgb", "llvip/ir"]
    assert runs[0].train_set.name == "llvip/rgb"
    # scratch runs have no stage; imagenet_coco runs start from the detection stage
    by_init = {r.init: r for r in runs if r.rung == "B-5"}
    assert by_init["scratch"].init_stage is None
    assert by_init["imagenet_coco"].init_stage.startswith("coco-B-5-")


def test_run_spec_json_round_trip_and_stable_ids() -> None:
    _, runs = expand(study_from_dict(base_spec()))
    r = runs[4]
    back = RunSpec.from_json(r.to_json())
    assert back == r and back.run_id == r.run_id
    _, again = expand(study_from_dict(base_spec()))
    assert [x.run_id for x in again] == [x.run_id for x in runs]
    # the seed is part of the id, but not of the cell's spec hash
    same_cell = [x for x in runs if x.rung == r.rung and x.init == r.init]
    assert len({x.run_id for x in same_cell}) == 3 and len({x.spec_hash for x in same_cell}) == 1
    json.loads(r.to_json())


def test_one_recipe_changes_every_run_id() -> None:
    _, a = expand(study_from_dict(base_spec()))
    _, b = expand(study_from_dict(base_spec(), ["recipe.lr=0.02"]))
    assert all(r.recipe.lr == 0.02 for r in b)
    assert not {r.run_id for r in a} & {r.run_id for r in b}


def test_overrides_precedence_defaults_yaml_flags(tmp_path: Path) -> None:
    spec = base_spec()
    del spec["seeds"]
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(spec))
    assert load_study(p).seeds == (0, 1, 2)  # library default
    spec["seeds"] = [5]
    p.write_text(yaml.safe_dump(spec))
    assert load_study(p).seeds == (5,)  # YAML beats default
    s = load_study(p, ["seeds=[7, 8]", "recipe.lr=1e6", "recipe.optimizer=sgd"])  # flags beat YAML
    assert s.seeds == (7, 8) and s.recipe.lr == 1e6 and s.recipe.optimizer == "sgd"
    assert s.recipe.epochs == 2  # untouched YAML value kept


def test_parse_override() -> None:
    assert parse_override("recipe.lr=1e-3") == (["recipe", "lr"], 0.001)
    assert parse_override("seeds=[0,1]") == (["seeds"], [0, 1])
    with pytest.raises(SpecError, match="key.path=value"):
        parse_override("recipe.lr")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["recipe"].update(optimizer="adamx"),
     "spec key 'recipe.optimizer' has invalid value 'adamx'; valid choices: sgd, adamw, adam"),
    (lambda d: d["recipe"].update(lerning_rate=0.1),
     "spec key 'recipe.lerning_rate' is unknown; valid keys under 'recipe': optimizer, lr"),
    (lambda d: d["train_sets"][0]["eval"][0].update(shift="sideways"),
     "spec key 'train_sets[0].eval[0].shift' has invalid value 'sideways'; valid choices: in_domain, "
     "cross_dataset, cross_modality, cross_domain"),
    (lambda d: d["rungs"].update(resnet=["R-1"]),
     "spec key 'rungs.resnet' has invalid value 'resnet'; valid choices: efficientnet, mobilenetv3"),
    (lambda d: d["inits"].update(imagenet={"stages": ["imagenett"]}),
     "spec key 'inits.imagenet.stages' names stage 'imagenett' not defined under 'pretraining'; "
     "defined: coco, imagenet"),
    (lambda d: d["train_sets"][0].update(dataset="kitti"),
     "spec key 'train_sets[0].dataset' = 'kitti' is not defined under 'datasets'; defined: llvip, flir"),
    (lambda d: d.update(seeds=[0, 0]), "spec key 'seeds' repeats a seed: [0, 0]"),
    (lambda d: d["recipe"].update(batch_size=0), "spec key 'recipe.batch_size' = 0 is out of range"),
    (lambda d: d["recipe"].update(lr="fast"), "spec key 'recipe.lr' must be a float, got 'fast'"),
    (lambda d: d.pop("classes"), "spec key 'classes' is missing and train set(s) llvip/rgb declare no 'classes' "
                                 "of their own; fix: add a top-level 'classes: [...]'"),
    (lambda d: d.update(task="segmentation"),
     "spec key 'task' has invalid value 'segmentation'; valid choices: detection, classification"),
    (lambda d: d["inits"].update(imagenet={}), "spec key 'inits.imagenet' needs 'stages'"),
])
def test_validation_errors_name_key_value_and_choices(mutate, message) -> None:  # noqa: ANN001
    d = base_spec()
    mutate(d)
    with pytest.raises(SpecError) as err:
        study_from_dict(d)
    assert message in str(err.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_study(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: [unclosed")
    with pytest.raises(SpecError, match=f"{bad}.*not valid YAML"):
        load_study(bad)
    d = base_spec()
    d["recipe"]["optimizer"] = "nope"
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(SpecError, match=f"^{p}: spec key 'recipe.optimizer'"):
        load_study(p)


@pytest.mark.parametrize("name", ["demo.yaml", "llvip_flir.yaml", "rgb_to_ir.yaml", "domainnet.yaml"])
def test_shipped_specs_validate_without_data(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LLVIP_ROOT", "FLIR_ROOT", "IMAGENET_ROOT", "COCO_ROOT", "DOMAINNET_ROOT"):
        monkeypatch.delenv(var, raising=False)
    study = load_study(REPO / "experiments" / name)
    stages, runs = expand(study)
    assert {i.name for i in study.inits} == {"scratch", "imagenet", "imagenet_coco"}
    assert {f for f, _ in study.rungs} == {"efficientnet", "mobilenetv3"}
    assert len(study.seeds) >= 3
    assert len(runs) == len(study.train_sets) * len(study.rungs) * 3 * len(study.seeds)
    shifts = {e.shift for t in study.train_sets for e in t.evals}
    if name == "domainnet.yaml":
        assert study.task == "classification" and shifts == {"in_domain", "cross_domain"}
    if name == "demo.yaml":
        assert shifts == {"in_domain", "cross_dataset", "cross_modality"}
        assert all(len({r for f, r in study.rungs if f == fam}) >= 2 for fam in ("efficientnet", "mobilenetv3"))
    else:
        assert study.resources.gpu > 0 and study.resources.gpu < 1
        assert len(study.seeds) == 5


def test_classification_demo_slice_shares_the_detection_demo_world_and_stage() -> None:
    det = load_study(REPO / "experiments" / "demo.yaml")
    cls = load_study(REPO / "experiments" / "demo_classification.yaml")
    assert cls.task == "classification" and cls.world == det.world
    assert {e.shift for t in cls.train_sets for e in t.evals} == {"in_domain", "cross_domain"}
    det_stages = {s.stage_id for s in expand(det)[0]}
    cls_stages, runs = expand(cls)
    assert {s.stage_id for s in cls_stages} <= det_stages  # reused by content hash, not retrained
    assert len(runs) == 4 * 2 * 3  # 4 rungs x scratch/imagenet x 3 seeds
