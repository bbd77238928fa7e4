"""Run and stage ids are content hashes: fields added later at their neutral default change no id,
so stores written by earlier versions stay valid (golden ids computed on capgate 0.1's main)."""

from capgate.spec import expand
from capgate.spec_load import load_study


def _ids(path: str) -> tuple[list[str], list[str]]:
    plan = expand(load_study(path))
    stages, runs = (plan.stages, plan.runs) if hasattr(plan, "runs") else plan
    if runs and not hasattr(runs[0], "run_id"):
        runs, stages = stages, runs
    return sorted(r.run_id for r in runs), sorted(s.stage_id for s in stages)


def test_demo_ids_unchanged_since_0_1():
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
