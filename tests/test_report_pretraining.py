"""The pretraining section (each stage's score against chance, epochs, wall time, read from the study
folder; 'not available' for a bare table) and the floor/chance flags next to a verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from capgate.analysis import simulate_results
from capgate.report.pretraining import pretraining_section, read_chance, read_stages, study_folder
from capgate.report.render import render_report
from helpers import classification_truth


def _stage(folder: Path, stage_id: str, name: str, value: float | None, chance: float | None, seconds: float,
           epochs: int) -> None:
    d = folder / "pretrain" / stage_id
    d.mkdir(parents=True)
    spec = {"name": name, "kind": "classification", "family": "mobilenetv3", "rung": "S-6", "seed": 0, "parent": None}
    (d / "stage.json").write_text(json.dumps({"stage_id": stage_id, "spec": spec, "seconds": seconds,
                                              "quality": {"split": "val", "metric": "top1", "value": value,
                                                          "chance": chance}}))
    rows = ["epoch,steps,images,loss,lr,seconds"] + [f"{e},3,12,1.0,0.001,0.5" for e in range(1, epochs + 1)]
    (d / "metrics.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture()
def study(tmp_path: Path) -> Path:
    folder = tmp_path / "cls"
    _stage(folder, "imagenet-S-6-aaa", "imagenet", 0.62, 0.01, 81.25, 4)
    _stage(folder, "imagenet-S-6-bbb", "imagenet", 0.02, 0.01, 9.5, 2)  # a stage that learned nothing
    (folder / "runs").mkdir()
    (folder / "runs" / "r1.json").write_text(json.dumps({"run_id": "r1", "spec": {
        "task": "classification", "classes": [f"c{i}" for i in range(10)], "train_set": {"name": "real"}}}))
    t = simulate_results(classification_truth(), seed=4)
    rng = np.random.default_rng(0)
    scratch = t["init"] == "scratch"
    t.loc[scratch, "top1"] = 0.11 + rng.normal(0.0, 0.003, int(scratch.sum()))  # 10 classes: chance 10 %
    t.to_csv(folder / "results.csv", index=False)
    return folder


def test_stages_and_chance_read_from_the_study_folder(study: Path):
    assert study_folder([{"path": str(study / "results.csv")}]) == study
    assert study_folder([{"path": "(in-memory table)"}]) is None
    stages = read_stages(study)
    assert [(s["value"], s["epochs"], s["seconds"]) for s in stages] == [(0.62, 4, 81.25), (0.02, 2, 9.5)]
    assert read_chance(study) == {("classification", "real"): pytest.approx(0.1)}
    rows = pretraining_section(study)["rows"]
    assert [r["above"] for r in rows] == ["+61.0 pp", "+1.0 pp"]
    assert rows[0]["status"] == "above chance" and rows[1]["status"].startswith("near chance")
    assert rows[0]["wall"] == "81.2 s" and rows[0]["epochs"] == 4
    assert pretraining_section(None)["why"].startswith("not available")


def test_report_shows_stages_and_flags_a_baseline_near_chance(study: Path, tmp_path: Path):
    index = render_report(study / "results.csv", tmp_path / "rep", {"n_boot": 0})  # a table inside its study folder
    page = index.read_text()
    assert "Pretraining quality and floors" in page and "61.0 pp" in page and "near chance: the stage learned" in page
    assert "scratch is within" in page and "of chance (10.0 %): the gain is over an under-trained baseline" in page
    assert "⚑ floor/chance" in page
    sentences = (tmp_path / "rep" / "sentences.md").read_text()
    helps = [s for s in sentences.splitlines() if s.startswith("- In ") and "pretraining helps" in s]
    assert helps and all("Note: scratch is within" in s for s in helps)


def test_bare_table_says_not_available(study: Path, tmp_path: Path):
    import shutil

    bare = tmp_path / "elsewhere" / "results.csv"  # the same table outside its study folder
    bare.parent.mkdir()
    shutil.copy(study / "results.csv", bare)
    page = render_report(bare, tmp_path / "rep2", {"n_boot": 0}).read_text()
    assert "Pretraining stages: not available" in page
    assert "(chance levels need the study folder)" in page and "⚑ floor/chance" not in page  # 11 % is above the floor


def test_floor_flag_by_hand():
    from capgate.report.pretraining import floor_flags

    v = {"key": "k", "study": "s", "task": "detection", "backbone": "b", "train_set": "t", "eval_set": "e",
         "init": "imagenet", "baseline": "scratch"}
    cells = [{"key": "s|detection|b|t|e|scratch", "mean": 0.005}, {"key": "s|detection|b|t|e|imagenet", "mean": 0.5}]
    assert floor_flags({"verdicts": [v], "cells": cells}, {}) == {
        "k": "scratch is at the floor (0.5 %): the gain is over an under-trained baseline"}
    cells[0]["mean"] = 0.3
    assert floor_flags({"verdicts": [v], "cells": cells}, {}) == {}
