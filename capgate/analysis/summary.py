"""THE ``summary.json`` contract: schema, build, read and validate.

``summary.json`` is what ``capgate report`` writes beside ``index.html`` and what ``capgate check``
compares with a committed baseline. Both import this module (``report`` never imports ``check``).
Every float is finite or null (NaN and inf become null).

Top-level keys: ``schema`` (:data:`SUMMARY_SCHEMA`), ``studies``, ``tasks``, ``metric`` (task ->
metric), ``plan`` (resolved, expectations as texts), ``families`` (one per (study, task): margin,
number of contrasts, prior df), ``cells`` (keyed ``study|task|backbone|train_set|eval_set|init``: mean,
stabilised ``se``, ``sd``, ``sd_mod``, counts; a pretrained cell's ``n_stages`` and ``se_rerun``, the SE of
its mean when its pretraining stages are drawn again, null with one replicate), ``verdicts`` (keyed ``<cell key>|vs|<baseline>``),
``gates`` (keyed ``study|task|family|shift|init``), ``rankings``, ``ranking_stability``,
``expectations`` (text, status, holds, detail), ``models``, ``warnings`` and ``environment`` (where the
summary was made: ``cpu`` model of this machine; ``torch``, ``timm``, ``git_sha``, ``capgate`` of the runs
from the results table's provenance, else of this process; ``capgate check`` prints both when they differ).
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from capgate.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from capgate.analysis.result import Analysis

__all__ = ["SUMMARY_SCHEMA", "CELL_FIELDS", "VERDICT_FIELDS", "GATE_FIELDS", "jsonable", "build_summary",
           "validate_summary", "read_summary", "param_ranges", "gate_interval", "REGENERATE", "environment"]

SUMMARY_SCHEMA = "capgate-summary/2"
#: How to regenerate a baseline (named by every error about an unusable baseline).
REGENERATE = "capgate check RESULTS... --baseline {path} --update-baseline"

CELL_FIELDS = ["key", "study", "task", "family", "backbone", "params", "train_set", "eval_set", "shift", "init",
               "metric", "mean", "se", "sd", "sd_mod", "df_mod", "n_ok", "n_failed", "n_diverged", "n_expected",
               "complete", "n_stages", "se_rerun"]
VERDICT_FIELDS = ["key", "study", "task", "family", "backbone", "params", "train_set", "eval_set", "shift", "init",
                  "baseline", "gain", "ci_low", "ci_high", "se", "df", "pairing", "n_pairs", "n_dropped", "sd_mod",
                  "margin", "p_adj", "p_tost_adj", "verdict", "seeds_needed", "n_stages", "stage_share", "more_of",
                  "conditional_on"]
GATE_FIELDS = ["key", "study", "task", "family", "shift", "init", "baseline", "status", "rung_from", "gate_params",
               "rung_below", "below_params", "ci_low", "ci_high", "p_status", "n_rungs", "rung_params",
               "rung_verdicts", "text"]


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
    present = [c for c in cols if c in df.columns]
    return [jsonable(r) for r in df[present].to_dict(orient="records")]


def build_summary(a: "Analysis") -> dict[str, Any]:
    """The ``summary.json`` dict of one analysis (call it once per report and pass it on)."""
    cells = a.cells
    tasks = sorted(cells["task"].unique()) if len(cells) else []
    rankings = []
    for key, r in a.rankings.groupby("key", sort=True):
        r = r.sort_values("rank")
        rankings.append({"key": key, "task": r["task"].iloc[0], "eval_set": r["eval_set"].iloc[0],
                         "init": r["init"].iloc[0], "order": list(r["backbone"]),
                         "means": [jsonable(v) for v in r["mean"]]})
    tau = a.ranking_stability.get("tau", pd.DataFrame())
    plan = {**a.plan.to_dict(), "expectations": [e["text"] for e in a.plan.expectations]}
    return jsonable({
        "schema": SUMMARY_SCHEMA,
        "studies": a.provenance.get("studies", []),
        "tasks": tasks,
        "metric": {t: a.plan.metric[t] for t in tasks},
        "plan": plan,
        "families": a.methods.get("families", []),
        "n_ok_runs": int(cells["n_ok"].sum()) if len(cells) else 0,
        "cells": _records(cells, CELL_FIELDS),
        "verdicts": _records(a.gains, VERDICT_FIELDS),
        "gates": _records(a.gates, GATE_FIELDS),
        "rankings": rankings,
        "ranking_stability": _records(tau, ["task", "eval_set", "init_a", "init_b", "kendall_tau", "tau_ref_median",
                                            "tau_ref_low", "p_flip", "flips"]) if len(tau) else [],
        "expectations": _records(a.expectations, ["text", "status", "holds", "detail"]),
        "models": [{"name": m["name"], "status": m.get("status"), "converged": m.get("converged"),
                    "n_warnings": len(m.get("warnings", []))} for m in a.models],
        "outlier_runs": _records(a.outlier_runs, ["key", "run_id", "seed", "value", "siblings_median", "drop"])
        if len(a.outlier_runs) else [],
        "warnings": list(a.warnings),
        "environment": environment(a.provenance),
    })


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def environment(provenance: dict[str, Any]) -> dict[str, Any]:
    """Where a summary was made: this machine's CPU model, and the versions and git sha of the runs (the
    table's provenance, several joined by ``+``; else this process's, never importing torch)."""
    from importlib import metadata

    def of_runs(col: str, package: str | None) -> str | None:
        seen = [v for v in provenance.get(col) or [] if v and v != "unknown"]
        if seen:
            return "+".join(seen)
        if package is None:
            return None
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {"cpu": _cpu_model(), "torch": of_runs("torch_version", "torch"), "timm": of_runs("timm_version", "timm"),
            "git_sha": of_runs("git_sha", None), "capgate": of_runs("capgate_version", "capgate"),
            "python": platform.python_version()}


def validate_summary(d: Any, source: str, *, regenerate: str | None = None) -> dict[str, Any]:
    """Check ``d`` is a :data:`SUMMARY_SCHEMA` dict with keyed cells, verdicts and gates.

    An older schema is named with the exact command that regenerates the file (``regenerate``).
    """
    fix = regenerate or "regenerate it with `capgate report RESULTS... -o DIR` (it writes DIR/summary.json)"
    if not isinstance(d, dict):
        raise InputError(f"{source}: a summary is a JSON object, got {type(d).__name__}; {fix}")
    if d.get("schema") != SUMMARY_SCHEMA:
        raise InputError(f"{source}: summary schema is {d.get('schema')!r}, this capgate reads {SUMMARY_SCHEMA!r} "
                         f"(per-cell stabilised noise, paired verdicts); {fix}")
    for part in ("cells", "verdicts", "gates"):
        items = d.get(part)
        if not isinstance(items, list) or not all(isinstance(x, dict) and isinstance(x.get("key"), str) for x in items):
            raise InputError(f"{source}: '{part}' must be a list of objects that each have a string 'key'; {fix}")
    bad = [c["key"] for c in d["cells"] if "mean" not in c]
    if bad:
        raise InputError(f"{source}: cells without a 'mean' (e.g. {bad[0]!r}); {fix}")
    return d


def read_summary(path: str | os.PathLike, *, what: str = "summary", command: str | None = None) -> dict[str, Any]:
    """Read and validate a ``summary.json`` (a baseline or a report's summary); ``command``: the exact
    command that regenerates it, named by every error."""
    p = Path(path)
    regen = (f"regenerate it with: {command}" if command else
             f"regenerate it with `{REGENERATE.format(path=p)}`" if what == "baseline"
             else "regenerate it with `capgate report RESULTS... -o DIR`")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = (f"create it with: {command}" if command else f"create it with `{REGENERATE.format(path=p)}`"
                if what == "baseline" else "pass a summary.json written by `capgate report`")
        raise InputError(f"{p}: {what} not found; {hint}") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise InputError(f"{p}: cannot read the {what} ({exc}); pass a summary.json file") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: {what} is not valid JSON ({exc}); restore it from git or {regen}") from None
    return validate_summary(d, str(p), regenerate=regen)


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def param_ranges(summary: dict[str, Any]) -> dict[tuple[str, str], tuple[float, float]]:
    """Tested parameter range (smallest, largest) per (task, family) of a summary's cells."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for c in summary["cells"]:
        p = _num(c.get("params"))
        if p is not None:
            k = (str(c.get("task")), str(c.get("family")))
            lo, hi = out.get(k, (math.inf, -math.inf))
            out[k] = (min(lo, p), max(hi, p))
    return out


def gate_interval(g: dict[str, Any], ranges: dict[tuple[str, str], tuple[float, float]]) -> tuple[float, float] | None:
    """Where a gate may lie, in parameters. ``gate``: from its rung below to its first helping rung,
    widened by the bootstrap range (an open end: 0 / infinity); ``no_gate_in_range``: above its lower
    bound (default the largest tested size); ``helps_everywhere``: below its upper bound (default the
    smallest tested size); ``undetermined``: None."""
    status, lo, hi = g.get("status"), _num(g.get("ci_low")), _num(g.get("ci_high"))
    tested = ranges.get((str(g.get("task")), str(g.get("family"))))
    if status == "gate":
        # an open bootstrap end (null) lies outside the tested range: 0 / infinity
        below, at = _num(g.get("below_params")), _num(g.get("gate_params"))
        low = 0.0 if lo is None else min(x for x in (below, at, lo) if x is not None)
        high = math.inf if hi is None else max(x for x in (below, at, hi) if x is not None)
        return (low, high)
    if status == "no_gate_in_range":
        lo = lo if lo is not None else (tested[1] if tested else None)
        return None if lo is None else (lo, math.inf)
    if status == "helps_everywhere":
        hi = hi if hi is not None else (tested[0] if tested else None)
        return None if hi is None else (0.0, hi)
    return None
