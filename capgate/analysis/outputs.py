"""``summary.json`` construction and the files written beside a report.

``write_outputs`` writes ``model.json``, ``model_frame.csv`` (all models in one file, a ``model``
column naming which model each row belongs to), ``gains.csv`` and ``summary.json``. Every float is
finite or null in JSON (NaN and inf become null).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from capgate.analysis.result import GAINS_COLUMNS

if TYPE_CHECKING:
    from capgate.analysis.result import Analysis

__all__ = ["build_summary", "write_outputs", "jsonable", "SUMMARY_SCHEMA"]

SUMMARY_SCHEMA = "capgate-summary/1"
MODEL_SCHEMA = "capgate-model/1"


def jsonable(obj: Any) -> Any:
    """Plain JSON data: numpy scalars unwrapped, NaN/inf/NA -> None, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return [jsonable(r) for r in obj.to_dict(orient="records")]
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (str, Path)):
        return str(obj)
    try:
        if pd.isna(obj):
            return None
    except (TypeError, ValueError):
        pass
    return str(obj)


def _records(df: pd.DataFrame, cols: list[str]) -> list[dict[str, Any]]:
    return [jsonable(r) for r in df[cols].to_dict(orient="records")]


def build_summary(a: "Analysis") -> dict[str, Any]:
    """The ``summary.json`` contract (see the analysis task): keyed cells, verdicts, gates, rankings."""
    cells = a.cells
    tasks = sorted(cells["task"].unique()) if len(cells) else []
    cell_cols = ["key", "task", "family", "backbone", "params", "train_set", "eval_set", "shift", "init",
                 "metric", "mean", "se", "sd", "n_ok", "n_failed", "n_diverged", "n_expected", "complete"]
    verdict_cols = ["key", "task", "family", "backbone", "params", "train_set", "eval_set", "shift", "init",
                    "baseline", "gain", "ci_low", "ci_high", "margin", "p_adj", "verdict", "seeds_needed"]
    gate_cols = ["key", "task", "family", "shift", "init", "status", "gate_params", "ci_low", "ci_high", "text"]
    rankings = []
    for key, r in a.rankings.groupby("key", sort=True):
        r = r.sort_values("rank")
        rankings.append({"key": key, "task": r["task"].iloc[0], "eval_set": r["eval_set"].iloc[0],
                         "init": r["init"].iloc[0], "order": list(r["backbone"]),
                         "means": [jsonable(v) for v in r["mean"]]})
    tau = a.ranking_stability.get("tau", pd.DataFrame())
    tau_cols = ["task", "eval_set", "init_a", "init_b", "kendall_tau"]
    plan = {k: v for k, v in a.plan.items() if k != "expectations"}
    plan["expectations"] = [e["text"] for e in a.plan.get("expectations", [])]
    return jsonable({
        "schema": SUMMARY_SCHEMA,
        "studies": a.provenance.get("studies", []),
        "tasks": tasks,
        "metric": {t: a.plan["metric"][t] for t in tasks},
        "plan": plan,
        "cells": _records(cells, cell_cols),
        "verdicts": _records(a.gains, verdict_cols),
        "gates": _records(a.gates, gate_cols),
        "rankings": rankings,
        "ranking_stability": _records(tau, tau_cols) if len(tau) else [],
        "expectations": _records(a.expectations, ["text", "holds", "detail"]),
        "models": [{"name": m["name"], "status": m.get("status"), "converged": m.get("converged"),
                    "n_warnings": len(m.get("warnings", []))} for m in a.models],
        "warnings": list(a.warnings),
    })


def write_outputs(a: "Analysis", outdir: str | Path) -> dict[str, Path]:
    """Write model.json, model_frame.csv, gains.csv and summary.json into ``outdir``; returns their paths."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("model.json", "model_frame.csv", "gains.csv", "summary.json")}
    model_doc = {"schema": MODEL_SCHEMA, "models": a.models, "methods": a.methods}
    _write_text(paths["model.json"], json.dumps(jsonable(model_doc), indent=2, allow_nan=False) + "\n")
    frames = [f.assign(model=name)[["model", *f.columns]] for name, f in a.model_frames.items()]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model"])
    _write_text(paths["model_frame.csv"], frame.to_csv(index=False))
    cols = [*GAINS_COLUMNS, "key"]
    _write_text(paths["gains.csv"], a.gains[cols].to_csv(index=False))
    _write_text(paths["summary.json"], json.dumps(a.summary(), indent=2, allow_nan=False) + "\n")
    return paths


def _write_text(path: Path, text: str) -> None:
    """Atomic write: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
