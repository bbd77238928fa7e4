"""Tiny ImageNet's 200 classes through the benchmark: the scores a run records (top-5 and macro-F1 over
200 classes, by hand) and the report's section with a third, 200-class dataset beside the CIFAR ones."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capgate.report import render_report
from capgate.train.metrics import classification_scores
from test_analysis_benchmark import OFFSET, PARAMS


def test_top5_and_macro_f1_over_200_classes_by_hand():
    # one val image per class; classes 0-99 predicted right; an image of class 100+j is predicted as j with
    # its own class second: top-1 1/2, top-5 1; classes 0-99 have tp 1, fp 1 (F1 2/3), classes 100-199
    # tp 0, fn 1 (F1 0): macro-F1 = (100 * 2/3) / 200 = 1/3
    labels = np.arange(200)
    logits = np.zeros((200, 200))
    logits[np.arange(100), np.arange(100)] = 2.0
    logits[np.arange(100, 200), np.arange(100)] = 2.0
    logits[np.arange(100, 200), np.arange(100, 200)] = 1.0
    s = classification_scores(logits, labels, 200)
    assert s["top1"] == 0.5 and s["top5"] == 1.0 and s["macro_f1"] == pytest.approx(1 / 3, abs=1e-12)


# top-1 / top-5 / macro-F1 per (dataset, init) and model; imagenet adds 0.10 top-1 to every model
TRUE = {"cifar10": (0.60, 0.85, 0.58), "cifar100": (0.40, 0.70, 0.37), "tinyimagenet": (0.30, 0.55, 0.28)}
STEP = {"a": 0.0, "b": -0.05, "c": -0.10}  # a > b > c under both inits: the ranking does not change


def _table() -> pd.DataFrame:
    rows = []
    for ds, (top1, top5, f1) in TRUE.items():
        for init, extra in (("scratch", 0.0), ("imagenet", 0.10)):
            for bb, step in STEP.items():
                for seed, off in enumerate(OFFSET[init]):
                    d = step + extra + off
                    rows.append({"study": f"bench_{ds}", "task": "classification", "run_id": f"{ds}-{bb}-{init}-{seed}",
                                 "family": "standard", "backbone": bb, "params": PARAMS[bb], "init": init,
                                 "train_set": ds, "eval_set": ds, "shift": "in_domain", "seed": seed, "status": "ok",
                                 "top1": top1 + d, "top5": top5 + d, "macro_f1": f1 + d, "macs": PARAMS[bb] * 10,
                                 "size_bytes": PARAMS[bb] * 4, "latency_ms": PARAMS[bb] / 1e6})
    return pd.DataFrame(rows)


def test_report_shows_a_table_per_dataset_with_tinyimagenet_top5_and_macro_f1(tmp_path):
    html = render_report(_table(), tmp_path, {"n_boot": 200}).read_text(encoding="utf-8")
    sec = html[html.index('<section id="benchmark">'):html.index('<section id="rankings">')]
    heads = [h.split("</h3>")[0] for h in sec.split("<h3>")[1:]]
    assert heads == ["cifar10", "cifar100", "tinyimagenet"]
    tiny = sec[sec.index("<h3>tinyimagenet</h3>"):]
    # model a, imagenet: top-1 40.0, top-5 65.0, macro-F1 38.0, each +/- t(0.975, 4) * sqrt(1e-5) / sqrt(5) = 0.39 pp
    assert "<td>a</td><td>imagenet</td><td>1</td><td>40.0 [39.6, 40.4]</td><td>65.0 [64.6, 65.4]</td>" \
           "<td>38.0 [37.6, 38.4]</td>" in tiny
    assert "<td>c</td><td>scratch</td><td>3</td><td>20.0 [19.6, 20.4]</td><td>45.0 [44.6, 45.4]</td>" in tiny
    assert "helps (+10.0 pp)" in tiny and "the ranking does not change beyond seed noise" in tiny
    assert "tinyimagenet: 5 seeds per model and initialization" in tiny


def test_one_study_of_three_datasets_shows_each_tables_own_class_count_and_chance(tmp_path):
    """The one benchmark spec's study: three train sets with 10, 100 and 200 classes (each run's spec in
    runs/<run_id>.json carries its train set's list, as run-grid writes it)."""
    t = _table().assign(study="lightweight_benchmark")
    folder = tmp_path / "lightweight_benchmark"
    (folder / "runs").mkdir(parents=True)
    n_classes = {"cifar10": 10, "cifar100": 100, "tinyimagenet": 200}
    for rid, ds in t.groupby("run_id")["train_set"].first().items():
        spec = {"study": "lightweight_benchmark", "task": "classification",
                "classes": [f"c{i}" for i in range(n_classes[ds])], "train_set": {"name": ds}}
        (folder / "runs" / f"{rid}.json").write_text(json.dumps({"run_id": rid, "spec": spec, "records": []}))
    t.to_csv(folder / "results.csv", index=False)
    html = render_report(folder / "results.csv", tmp_path / "out", {"n_boot": 200}).read_text(encoding="utf-8")
    sec = html[html.index('<section id="benchmark">'):html.index('<section id="rankings">')]
    captions = [c.split("</caption>")[0] for c in sec.split("<caption>")[1:]]
    assert captions == [
        "cifar10: 10 classes, chance 10.0 % top-1; 5 seeds per model and initialization",
        "cifar100: 100 classes, chance 1.0 % top-1; 5 seeds per model and initialization",
        "tinyimagenet: 200 classes, chance 0.5 % top-1; 5 seeds per model and initialization"]
    # each dataset's own numbers: model a, imagenet, top-1 = TRUE + 0.10 (70.0, 50.0, 40.0 %)
    for ds, top1 in (("cifar10", "70.0"), ("cifar100", "50.0"), ("tinyimagenet", "40.0")):
        table = sec[sec.index(f"<h3>{ds}</h3>"):].split("</table>")[0]
        assert f"<td>a</td><td>imagenet</td><td>1</td><td>{top1} [" in table
    bare = render_report(t, tmp_path / "bare", {"n_boot": 200}).read_text(encoding="utf-8")
    assert "<caption>cifar100: 5 seeds per model and initialization</caption>" in bare  # no study folder: no classes
