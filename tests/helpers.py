"""Helpers shared by several test modules (test modules import from here, never from each other)."""

from __future__ import annotations

import copy
import json
import math
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from capgate.analysis import simulate_results
from capgate.analysis.summary import SUMMARY_SCHEMA

GOLDEN = Path(__file__).resolve().parent / "golden" / "report"
#: Significant digits the report golden stores; the test compares numbers at relative 1e-4 (the
#: moderated variances come from an optimiser), strings and verdicts exactly.
GOLDEN_DIGITS = 6
#: The golden's table and plan: 10 seeds (so helps, within_noise and inconclusive all occur), a few
#: failed runs, one family; a fixed design (no sequential looks) with a 2 pp margin.
GOLDEN_SEED = 7
GOLDEN_PLAN = {"n_boot": 50, "margin": 0.02}


def golden_table() -> pd.DataFrame:
    from capgate.analysis import simulate_results
    from capgate.analysis.simulate import _DEFAULT_FAMILIES, Truth

    truth = Truth(seeds=10, p_failed=0.02, families={"efficientnet": _DEFAULT_FAMILIES["efficientnet"]})
    return simulate_results(truth, seed=GOLDEN_SEED)


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return v if not math.isfinite(v) or v == 0 else float(f"{v:.{GOLDEN_DIGITS}g}")
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_round(x) for x in v]
    return v


def golden_report(outdir: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Render the report of the golden table into ``outdir``; its summary and gains, rounded."""
    from capgate.report.render import render_report

    render_report(golden_table(), outdir, dict(GOLDEN_PLAN))
    summary = _round(json.loads((Path(outdir) / "summary.json").read_text()))
    gains = pd.read_csv(Path(outdir) / "gains.csv")
    for col in gains.select_dtypes("float").columns:
        gains[col] = [_round(float(x)) for x in gains[col]]
    return summary, gains


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


TINY_WORLD = {"llvip_train": 12, "llvip_test": 4, "flir_train": 2, "flir_val": 4, "flir_video": 2,
              "imagenet_classes": 3, "imagenet_train": 4, "imagenet_val": 1, "coco_train": 6, "coco_val": 1,
              "domainnet_classes": 2, "domainnet_train": 2, "domainnet_test": 1,
              "domainnet_domains": ["real", "sketch"]}


def tiny_spec(tmp_path: Path, name: str = "tiny", rungs: dict | None = None, seeds: list | None = None,
              steps: int = 2, inits: tuple[str, ...] = ("scratch", "imagenet", "imagenet_coco"),
              llvip_root: str = "synthetic") -> Path:
    """Write a tiny detection study spec (64 px, a few steps per run) and return its path."""
    all_inits = {"scratch": {}, "imagenet": {"stages": ["imagenet"]},
                 "imagenet_coco": {"stages": ["imagenet", "coco"]}}
    spec = {
        "study": name, "task": "detection", "classes": ["person"], "class_map": "person",
        "world": {"seed": 0, "config": TINY_WORLD},
        "datasets": {"llvip": {"format": "llvip", "root": llvip_root},
                     "flir": {"format": "flir", "root": "synthetic"},
                     "imagenet": {"format": "imagenet", "root": "synthetic"},
                     "coco": {"format": "coco", "root": "synthetic"}},
        "train_sets": [{"dataset": "llvip", "split": "train", "modality": "rgb", "eval": [
            {"dataset": "llvip", "split": "test", "modality": "rgb", "shift": "in_domain"},
            {"dataset": "flir", "split": "val", "modality": "rgb", "shift": "cross_dataset"},
            {"dataset": "llvip", "split": "test", "modality": "ir", "shift": "cross_modality"}]}],
        "rungs": rungs or {"efficientnet": ["B-7"], "mobilenetv3": ["S-6"]},
        "inits": {k: all_inits[k] for k in inits},
        "pretraining": {"imagenet": {"kind": "classification", "dataset": "imagenet",
                                     "recipe": {"steps": 2, "batch_size": 4, "resolution": 64}},
                        "coco": {"kind": "detection", "dataset": "coco",
                                 "recipe": {"steps": 2, "batch_size": 2, "resolution": 64}}},
        "seeds": seeds or [0, 1],
        "recipe": {"steps": steps, "batch_size": 4, "resolution": 64, "warmup_steps": 1},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def records(storage: Path, study: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (storage / study / "runs").glob("*.json")}


def base_spec() -> dict:
    return {
        "study": "t",
        "classes": ["person"],
        "datasets": {"llvip": {"format": "llvip", "root": "synthetic"},
                     "flir": {"format": "flir", "root": "${FLIR_ROOT_NOT_SET_IN_TESTS}"},
                     "imagenet": {"format": "imagenet", "root": "synthetic"},
                     "coco": {"format": "coco", "root": "synthetic"}},
        "train_sets": [{"dataset": "llvip", "split": "train", "modality": "rgb", "eval": [
            {"dataset": "llvip", "split": "test", "modality": "rgb", "shift": "in_domain"},
            {"dataset": "flir", "split": "val", "modality": "rgb", "shift": "cross_dataset"},
            {"dataset": "llvip", "split": "test", "modality": "ir", "shift": "cross_modality"}]}],
        "rungs": {"efficientnet": ["B-5", "B-7"], "mobilenetv3": ["S-6"]},
        "inits": {"scratch": {}, "imagenet": {"stages": ["imagenet"]},
                  "imagenet_coco": {"stages": ["imagenet", "coco"]}},
        "pretraining": {"imagenet": {"kind": "classification", "dataset": "imagenet"},
                        "coco": {"kind": "detection", "dataset": "coco"}},
        "seeds": [0, 1, 2],
        "recipe": {"epochs": 2, "lr": 0.01},
    }


TINY_CLS_WORLD = {"llvip_train": 2, "llvip_test": 1, "flir_train": 2, "flir_val": 1, "flir_video": 2,
              "imagenet_classes": 3, "imagenet_train": 4, "imagenet_val": 1, "coco_train": 2, "coco_val": 1,
              "domainnet_classes": 3, "domainnet_train": 4, "domainnet_test": 2,
              "domainnet_domains": ["real", "sketch"]}


def tiny_classification_spec(tmp_path: Path, study: str = "tinycls", seeds: int = 2) -> Path:
    """A tiny two-rung DomainNet-like study (also used by the adaptive-loop tests)."""
    spec = {
        "study": study, "task": "classification", "classes": ["bicycle", "car", "dog"],
        "world": {"seed": 0, "config": TINY_CLS_WORLD},
        "datasets": {"domainnet": {"format": "domainnet", "root": "synthetic"},
                     "imagenet": {"format": "imagenet", "root": "synthetic"}},
        "train_sets": [{"dataset": "domainnet", "split": "train", "domain": "real", "name": "domainnet/real",
                        "eval": [{"dataset": "domainnet", "split": "test", "domain": "real",
                                  "name": "domainnet/real", "shift": "in_domain"},
                                 {"dataset": "domainnet", "split": "test", "domain": "sketch",
                                  "name": "domainnet/sketch", "shift": "cross_domain"}]}],
        "rungs": {"efficientnet": ["B-7"], "mobilenetv3": ["S-6"]},
        "inits": {"scratch": {}, "imagenet": {"stages": ["imagenet"]}},
        "pretraining": {"imagenet": {"kind": "classification", "dataset": "imagenet",
                                     "recipe": {"steps": 2, "batch_size": 4, "resolution": 32}}},
        "seeds": list(range(seeds)),
        "recipe": {"steps": 3, "batch_size": 4, "resolution": 32, "warmup_steps": 1},
    }
    path = tmp_path / f"{study}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def wait_for(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def run_main(args: list[str]) -> int:
    """The exit code of ``capgate ARGS`` run in-process through the entry point."""
    import pytest

    from capgate.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code


_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def readme_commands(readme: Path | None = None) -> list[tuple[int, list[str], set[str]]]:
    """``(line, argv after 'capgate', environment variables set for it)`` of every ``capgate`` command in
    the README's bash blocks (continuation lines joined, comments and ``[ ]`` of optional parts removed;
    the shell-completion lines are left out: tests/test_cli_conventions.py runs them)."""
    readme = readme or Path(__file__).resolve().parents[1] / "README.md"
    out, in_bash, exported, pending, start = [], False, set(), "", 0
    for n, line in enumerate(readme.read_text().splitlines(), start=1):
        if line.startswith("```"):
            in_bash, exported = line.startswith("```bash"), set()
            continue
        if not in_bash:
            continue
        start = start or n
        text = pending + re.sub(r"\s+#.*$", "", line).strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        words = shlex.split(text.replace("[", " ").replace("]", " "), comments=True)
        if words[:1] == ["export"]:
            exported |= {w.split("=")[0] for w in words[1:] if _ENV.match(w)}
        env = {w.split("=")[0] for w in words if _ENV.match(w)}
        rest = [w for w in words if not _ENV.match(w)]
        if rest[:1] == ["capgate"] and "_CAPGATE_COMPLETE" not in env:
            out.append((start, rest[1:], env | exported))
        start = 0
    return out
