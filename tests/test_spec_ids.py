"""Run and stage ids are content hashes: fields added later at their neutral default change no id,
so stores written by earlier versions stay valid (golden ids computed on capgate 0.1's main)."""

from capgate.spec.model import expand
from capgate.spec.load import load_study


#: The demo as capgate 0.1 shipped it, written as overrides of today's demo specs (issue 10 gave the
#: demo bigger pretraining corpora, longer stages, 40 warm-up steps and colour augmentation).
DEMO_0_1 = ("world.config={imagenet_train: 15, coco_train: 150, domainnet_train: 100}",
            "pretraining.imagenet.recipe={optimizer: adamw, lr: 0.006, epochs: 3, batch_size: 32, resolution: 64, "
            "warmup_steps: 5}",
            "pretraining.coco.recipe={optimizer: adamw, lr: 0.006, epochs: 4, batch_size: 16, resolution: 80, "
            "warmup_steps: 5}",
            "recipe.warmup_steps=10", "recipe.brightness=0.1", "recipe.grayscale=0.0",
            "stage_seeds=[0]",  # one pretraining replicate, as every demo had before stage_seeds
            "rungs={efficientnet: [B-3, B-5, B-7], mobilenetv3: [S-2, S-4, S-6]}",  # two rungs per family since
            "recipe.channels_last=false")  # three replicates; channels_last since then too


def _ids(path: str) -> tuple[list[str], list[str]]:
    overrides = DEMO_0_1 if path.endswith("demo.yaml") else [
        *(o for o in DEMO_0_1 if not o.startswith("pretraining.coco")), "recipe.epochs=8"]  # 7 since the adaptive round
    plan = expand(load_study(path, overrides))
    stages, runs = (plan.stages, plan.runs) if hasattr(plan, "runs") else plan
    if runs and not hasattr(runs[0], "run_id"):
        runs, stages = stages, runs
    return sorted(r.run_id for r in runs), sorted(s.stage_id for s in stages)


def test_demo_ids_unchanged_since_0_1(monkeypatch):
    import capgate.spec.load

    # the ids of a world-v3 store: the generator version entered the ids after v3 (capgate/data/world_version.py)
    monkeypatch.setattr(capgate.spec.load, "GENERATOR_VERSION", 3)
    runs, stages = _ids("experiments/demo.yaml")
    assert len(runs) == 54 and runs[:3] == ["00001599e8f3ce77", "0093bcc00a3511d5", "00afc016869e8d0d"]
    assert stages[:2] == ["coco-B-3-f82e3ba87edb", "coco-B-5-f41fe32b4ab0"]
    runs, stages = _ids("experiments/demo_classification.yaml")
    assert len(runs) == 36 and runs[:3] == ["0754361dc3f567f9", "0de8cb46d6b55520", "0f11142236ec3245"]
    assert stages[:2] == ["imagenet-B-3-06e5a4f8056d", "imagenet-B-5-cd0559f07eb5"]


def test_a_non_default_new_field_changes_the_id():
    st = load_study("experiments/demo.yaml")
    from dataclasses import replace

    base = expand(st)
    alt = expand(replace(st, recipe=replace(st.recipe, amp="bf16")))
    r0 = sorted(r.run_id for r in (base.runs if hasattr(base, "runs") else base[1]))
    r1 = sorted(r.run_id for r in (alt.runs if hasattr(alt, "runs") else alt[1]))
    assert set(r0).isdisjoint(r1)


def test_the_world_generator_version_is_part_of_the_ids_after_v3(monkeypatch):
    import capgate.spec.load
    from capgate.data.world_version import GENERATOR_VERSION, IDS_WITHOUT_GENERATOR

    assert GENERATOR_VERSION > IDS_WITHOUT_GENERATOR
    now = _ids("experiments/demo.yaml")
    assert load_study("experiments/demo.yaml").world["generator"] == GENERATOR_VERSION
    monkeypatch.setattr(capgate.spec.load, "GENERATOR_VERSION", IDS_WITHOUT_GENERATOR)
    assert "generator" not in load_study("experiments/demo.yaml").world
    old = _ids("experiments/demo.yaml")
    assert not set(now[0]) & set(old[0]) and not set(now[1]) & set(old[1])  # every run and stage id differs
