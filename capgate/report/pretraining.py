"""Pretraining quality and floors: did each pretraining stage learn anything, and is an arm of a
contrast at the metric's floor or near chance (a large gain over an under-trained baseline)?

Read from the study folder when the report is given one (a study folder, or a results table inside
one): ``pretrain/<stage_id>/stage.json`` (the stage's spec, held-out score with its chance level, wall
seconds) and ``metrics.csv`` (one row per epoch); the chance level of a classification arm is
``1 / len(classes)`` of the runs' specs (``runs/<run_id>.json``). A report of a bare table says the
stages are not available. Never imports torch: plain JSON and CSV.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from capgate.report.units import fmt_metric, fmt_pp, metric_label

__all__ = ["study_folder", "read_stages", "read_chance", "read_class_counts", "pretraining_section", "floor_flags",
           "flag_summary", "FLOOR", "NEAR_CHANCE"]

#: A cell whose mean metric is below this (0..1 scale) is at the floor: the arm learned (almost) nothing.
FLOOR = 0.02
#: An arm (or a pretraining stage) within this of chance (0..1 scale) is near chance.
NEAR_CHANCE = 0.03
_MAX_RUN_FILES = 400  # run records read for the chance level (the classes are the same within a task and train set)


def study_folder(inputs: list[dict[str, Any]]) -> Path | None:
    """The study folder behind the report's inputs: an input that is one, or the folder holding an input
    results table; None for an in-memory table, object storage, or a table outside a study folder."""
    for rec in inputs:
        p = Path(str(rec.get("path", "")))
        for cand in (p, p.parent):
            if cand.is_dir() and ((cand / "pretrain").is_dir() or (cand / "runs").is_dir()):
                return cand
    return None


def _epochs(folder: Path) -> tuple[int | None, float | None]:
    """(epochs, seconds summed over them) from a stage's metrics.csv, (None, None) without one."""
    path = folder / "metrics.csv"
    if not path.is_file():
        return None, None
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    secs = [float(r["seconds"]) for r in rows if r.get("seconds") not in (None, "")]
    return len(rows), (sum(secs) if secs else None)


def read_stages(folder: Path | None) -> list[dict[str, Any]] | None:
    """One dict per stored stage of the study (name, kind, family, rung, seed, parent, metric, value,
    chance, seconds, epochs, error), sorted by name, rung and seed; None without a study folder."""
    if folder is None:
        return None
    rows = []
    for path in sorted((folder / "pretrain").glob("*/stage.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            rows.append({"stage_id": path.parent.name, "name": "?", "error": f"stage.json unreadable: {exc}"})
            continue
        spec, q = info.get("spec") or {}, info.get("quality") or {}
        epochs, epoch_secs = _epochs(path.parent)
        rows.append({"stage_id": info.get("stage_id", path.parent.name), "name": spec.get("name"),
                     "kind": spec.get("kind"), "family": spec.get("family"), "rung": spec.get("rung"),
                     "seed": spec.get("seed"), "parent": spec.get("parent"), "metric": q.get("metric"),
                     "value": q.get("value"), "chance": q.get("chance"), "split": q.get("split"),
                     "seconds": info.get("seconds", epoch_secs), "epochs": epochs, "error": q.get("error"),
                     "copied_from": info.get("copied_from")})
    return sorted(rows, key=lambda r: (str(r.get("name")), str(r.get("family")), str(r.get("rung")),
                                       str(r.get("seed"))))


def read_chance(folder: Path | None) -> dict[tuple[str, str], float]:
    """Chance top-1 per (task, train_set) of the classification runs: 1 / number of classes."""
    return {key: 1.0 / n for key, n in read_class_counts(folder).items()}


def read_class_counts(folder: Path | None) -> dict[tuple[str, str], int]:
    """Number of classes per (task, train_set) of the classification runs, from their specs (each train set
    of a study may have its own class list: ``train_sets[i].classes``); empty without a study folder."""
    out: dict[tuple[str, str], int] = {}
    if folder is None:
        return out
    for i, path in enumerate(sorted((folder / "runs").glob("*.json"))):
        if i >= _MAX_RUN_FILES:
            break
        try:
            spec = json.loads(path.read_text()).get("spec") or {}
        except (OSError, ValueError):
            continue
        classes = spec.get("classes")
        if spec.get("task") == "classification" and classes:
            train = spec.get("train_set")
            name = train if isinstance(train, str) else (train or {}).get("name", str(train))
            out.setdefault(("classification", str(name)), len(classes))
    return out


def _stage_status(r: dict[str, Any]) -> str:
    v, c = r.get("value"), r.get("chance")
    if v is None:
        return "not scored" + (f" ({r['error']})" if r.get("error") else "")
    if c is not None and float(v) - float(c) < NEAR_CHANCE:
        return "near chance: the stage learned little; inits from it test an untrained start"
    if c is None and float(v) < FLOOR:
        return "at the floor: the stage learned little"
    return "above chance" if c is not None else "scored"


def pretraining_section(folder: Path | None) -> dict[str, Any]:
    """The report's pretraining section: ``available`` and formatted ``rows`` (one per stage)."""
    stages = read_stages(folder)
    if stages is None:
        return {"available": False, "rows": [], "why": "not available: the report was given a results table, not "
                                                          "a study folder (pass the study folder to show its stages)",
                **_limits()}
    rows = []
    for r in stages:
        v, c = r.get("value"), r.get("chance")
        secs = r.get("seconds")
        rows.append({"name": r.get("name"), "kind": r.get("kind"), "family": r.get("family"), "rung": r.get("rung"),
                     "seed": r.get("seed"), "parent": r.get("parent") or "", "stage_id": r.get("stage_id"),
                     "metric": metric_label(str(r.get("metric"))) if r.get("metric") else "",
                     "score": fmt_metric(v), "chance": fmt_metric(c) if c is not None else "n/a",
                     "above": fmt_pp(float(v) - float(c)) if v is not None and c is not None else "n/a",
                     "epochs": r.get("epochs") if r.get("epochs") is not None else "n/a",
                     "wall": f"{float(secs):.1f} s" if secs is not None and math.isfinite(float(secs)) else "n/a",
                     "status": _stage_status(r)})
    why = "" if rows else "no pretraining stage stored in the study folder (scratch and checkpoint inits only)"
    return {"available": True, "rows": rows, "why": why, "folder": str(folder), **_limits()}


def _limits() -> dict[str, str]:
    return {"floor": fmt_metric(FLOOR, 0), "near": fmt_pp(NEAR_CHANCE, 0, sign=False)}


def floor_flags(summary: dict[str, Any], chance: dict[tuple[str, str], float]) -> dict[str, str]:
    """Per verdict key, what is wrong with an arm of that contrast: an arm whose cell mean is below
    :data:`FLOOR`, or within :data:`NEAR_CHANCE` of chance (classification, when the study folder gives
    the classes). A gain over such a baseline says the baseline is under-trained, not that pretraining
    helps a trained model."""
    cells = {c["key"]: c for c in summary.get("cells", [])}
    out: dict[str, str] = {}
    for v in summary.get("verdicts", []):
        notes = []
        for arm, role in ((v.get("baseline"), "baseline"), (v["init"], "init")):
            key = "|".join(str(x) for x in (v["study"], v["task"], v["backbone"], v["train_set"], v["eval_set"], arm))
            mean = (cells.get(key) or {}).get("mean")
            if mean is None or not math.isfinite(float(mean)):
                continue
            ch = chance.get((v["task"], v["train_set"]))
            if float(mean) < FLOOR:
                notes.append(f"{arm} is at the floor ({fmt_metric(mean)})")
            elif ch is not None and float(mean) - ch < NEAR_CHANCE:
                notes.append(f"{arm} is within {fmt_pp(float(mean) - ch, sign=False)} of chance ({fmt_metric(ch)})")
        if notes:
            tail = (": the gain is over an under-trained baseline" if any(n.startswith(str(v.get("baseline")))
                                                                         for n in notes) else "")
            out[v["key"]] = "; ".join(notes) + tail
    return out


def flag_summary(summary: dict[str, Any], folder: Path | None) -> dict[str, Any]:
    """``summary`` with each verdict's :func:`floor_flags` note under ``floor_flag`` (None when none):
    what the page's verdict maps and every reporting sentence (page and sentences.md) show."""
    flags = floor_flags(summary, read_chance(folder))
    return {**summary, "verdicts": [{**v, "floor_flag": flags.get(v["key"])} for v in summary.get("verdicts", [])]}
