"""Tiny study data shared by the report and check tests (imported as ``test_report_data``), and a
sanity test of it. Tables come from ``capgate.analysis.simulate_results`` with a small known truth;
summaries for ``check`` are written by hand so every tolerance is hand-checkable."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd

from capgate.analysis.summary import SUMMARY_SCHEMA

from capgate.analysis import simulate_results

#: Analysis plan for tests: few bootstrap replicates keep the analysis at about a second.
FAST_PLAN: dict[str, Any] = {"n_boot": 40}


def detection_truth(**overrides: Any) -> dict[str, Any]:
    """One family, four rungs, scratch vs imagenet, in-domain and cross-dataset, three seeds;
    imagenet helps cross-dataset by 8 pp above a sharp gate at 280k params, nothing in-domain."""
    t: dict[str, Any] = {
        "study": "det",
        "task": "detection",
        "families": {"efficientnet_b0": [("efficientnet_b0@w0.25", 100_000), ("efficientnet_b0@w0.35", 200_000),
                                         ("efficientnet_b0@w0.5", 400_000), ("efficientnet_b0@w1.0", 800_000)]},
        "inits": ("scratch", "imagenet"),
        "sets": {"llvip/rgb": [("llvip/rgb", "in_domain"), ("flir/rgb", "cross_dataset")]},
        "seeds": 3,
        "gains": {"imagenet": {"cross_dataset": {"low": 0.0, "high": 0.08, "gate": 280_000, "width": 0.02},
                               "in_domain": 0.0}},
        "rung_sd": 0.0,
    }
    t.update(overrides)
    return t


def classification_truth(**overrides: Any) -> dict[str, Any]:
    """The classification twin: DomainNet-like domains, a cross-domain shift gated like detection."""
    t = detection_truth(
        study="cls", task="classification",
        sets={"real": [("real", "in_domain"), ("sketch", "cross_domain")]},
        gains={"imagenet": {"cross_domain": {"low": 0.0, "high": 0.08, "gate": 280_000, "width": 0.02},
                            "in_domain": 0.0}},
    )
    t.update(overrides)
    return t


def write_table(path: Path, truth: dict[str, Any], seed: int = 0) -> Path:
    """Simulate a results table from ``truth`` and write it as parquet at ``path``."""
    table = simulate_results(truth, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return path


def _cell(key_parts: tuple[str, str, str, str, str], mean: float, sd: float = 0.02, n: int = 4, **kw: Any) -> dict[str, Any]:
    task, backbone, train, ev, init = key_parts
    return {"key": "|".join(key_parts), "task": task, "family": backbone.split("@")[0], "backbone": backbone,
            "params": 300_000, "train_set": train, "eval_set": ev, "shift": "cross_dataset", "init": init,
            "metric": "map", "mean": mean, "se": sd / n**0.5, "sd": sd, "n_ok": n, "n_failed": 0,
            "n_diverged": 0, "n_expected": n, "complete": True, "study": "hand", "sd_mod": sd, "df_mod": n - 1, **kw}


def hand_summary() -> dict[str, Any]:
    """A small, valid summary dict (:data:`SUMMARY_SCHEMA`): four cells (sd 0.02, 4 seeds: se 0.01), two
    verdicts, two gates, one expectation."""
    cells = [
        _cell(("detection", "mbv3@w0.5", "llvip/rgb", "flir/rgb", "scratch"), 0.30),
        _cell(("detection", "mbv3@w0.5", "llvip/rgb", "flir/rgb", "imagenet"), 0.36),
        _cell(("detection", "mbv3@w1.0", "llvip/rgb", "flir/rgb", "scratch"), 0.33),
        _cell(("detection", "mbv3@w1.0", "llvip/rgb", "flir/rgb", "imagenet"), 0.34),
    ]
    verdicts = [
        {"key": "detection|mbv3@w0.5|llvip/rgb|flir/rgb|imagenet|vs|scratch", "task": "detection", "family": "mbv3",
         "backbone": "mbv3@w0.5", "params": 300_000, "train_set": "llvip/rgb", "eval_set": "flir/rgb",
         "shift": "cross_dataset", "init": "imagenet", "baseline": "scratch", "gain": 0.06, "ci_low": 0.03,
         "ci_high": 0.09, "margin": 0.02, "p_adj": 0.001, "verdict": "helps", "seeds_needed": None},
        {"key": "detection|mbv3@w1.0|llvip/rgb|flir/rgb|imagenet|vs|scratch", "task": "detection", "family": "mbv3",
         "backbone": "mbv3@w1.0", "params": 900_000, "train_set": "llvip/rgb", "eval_set": "flir/rgb",
         "shift": "cross_dataset", "init": "imagenet", "baseline": "scratch", "gain": 0.01, "ci_low": -0.005,
         "ci_high": 0.015, "margin": 0.02, "p_adj": 0.4, "verdict": "within_noise", "seeds_needed": None},
    ]
    gates = [
        {"key": "detection|mbv3|cross_dataset|imagenet", "task": "detection", "family": "mbv3",
         "shift": "cross_dataset", "init": "imagenet", "status": "gate", "gate_params": 250_000.0,
         "rung_from": "R-1", "rung_below": "R-2", "below_params": 220_000.0,
         "ci_low": 200_000.0, "ci_high": 320_000.0, "text": "helps from R-1 (250k params) upward"},
        {"key": "detection|mbv3|in_domain|imagenet", "task": "detection", "family": "mbv3",
         "shift": "in_domain", "init": "imagenet", "status": "no_gate_in_range", "gate_params": None,
         "ci_low": 700_000.0, "ci_high": None, "text": "no gate in the tested range"},
    ]
    return {
        "schema": SUMMARY_SCHEMA, "n_ok_runs": 16, "studies": ["hand"], "tasks": ["detection"], "metric": {"detection": "map"},
        "plan": {"baseline": "scratch", "alpha": 0.05}, "cells": cells, "verdicts": verdicts, "gates": gates,
        "rankings": [], "ranking_stability": [],
        "expectations": [{"text": "imagenet helps on cross_dataset", "status": "holds", "holds": True, "detail": "1/1"}],
        "warnings": [],
    }


def variant(summary: dict[str, Any], **edits: Any) -> dict[str, Any]:
    """A deep copy of ``summary``; ``edits`` map ``"<part>.<index>.<field>"`` (dots → ``__``) to values."""
    out = copy.deepcopy(summary)
    for path, value in edits.items():
        part, idx, fld = path.split("__")
        out[part][int(idx)][fld] = value
    return out


def save_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as JSON at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def test_fixtures_are_consistent(tmp_path: Path) -> None:
    s = hand_summary()
    assert [c["se"] for c in s["cells"]] == [0.01] * 4
    assert variant(s, cells__0__mean=0.5)["cells"][0]["mean"] == 0.5 and s["cells"][0]["mean"] == 0.30
    table = pd.read_parquet(write_table(tmp_path / "det.parquet", detection_truth()))
    assert len(table) == 4 * 2 * 2 * 3  # rungs x inits x eval sets x seeds
    assert set(table["shift"]) == {"in_domain", "cross_dataset"}
