"""A Weights & Biases runs export -> one wide row per run (``config.*``, ``metrics.*``, ``status``, ...).

Three layouts are read, the ones W&B users make:

- **JSON** from ``wandb.Api().runs(...)`` dumped as a list (or ``{"runs": [...]}``) of
  ``{"id", "name", "state", "config": {...}, "summary": {...}}``: ``config`` keys become
  ``config.<key>`` (nested keys joined with ``.``), ``summary`` keys ``metrics.<key>``; keys
  starting with ``_`` (``_step``, ``_runtime``, ``_wandb``) are W&B's own and left out.
- **CSV of that dump** (W&B's documented recipe: a DataFrame with ``summary``, ``config`` and
  ``name`` columns written with ``to_csv``): each cell holds a dict as JSON or as Python's repr.
- **flat CSV**, as the runs table's "Export as CSV" writes it: ``Name``, ``State``, ... then one
  column per config key and per summary key under its own name. A column named like a metric of
  an eval set (``<eval set>/<metric>`` or ``<metric>/<eval set>``) is read as ``metrics.<name>``.

``id`` becomes ``run_id``, ``name`` ``run_name``, ``state`` ``status`` (finished -> ok; failed and
crashed -> failed; running and killed runs are dropped and counted by the mapping).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from capgate.analysis.columns import METRICS_STAR, metric_key
from capgate.errors import ResultsError

__all__ = ["read_wandb_export"]

_TOP = {"id": "run_id", "name": "run_name", "state": "status", "created_at": "started_at", "created": "started_at"}


def _flat(prefix: str, obj: Mapping[str, Any], out: dict[str, Any]) -> None:
    for k, v in obj.items():
        if str(k).startswith("_"):
            continue
        if isinstance(v, Mapping):
            _flat(f"{prefix}{k}.", v, out)
        else:
            out[f"{prefix}{k}"] = v


def _dict_cell(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if value is None or (isinstance(value, float) and value != value):
        return {}
    try:
        return dict(json.loads(value))
    except (TypeError, ValueError):
        try:
            got = ast.literal_eval(str(value))
        except (ValueError, SyntaxError):
            got = None
        if isinstance(got, Mapping):
            return dict(got)
    raise ResultsError(f"{where}: cannot read {str(value)[:60]!r} as a dict of config or summary values; "
                       "export the runs as JSON (a list of {id, name, state, config, summary})")


def _nested_row(run: Mapping[str, Any], where: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for k, v in run.items():
        key = str(k).lower()
        if key in ("config", "summary"):
            _flat("config." if key == "config" else "metrics.", _dict_cell(v, f"{where} {k}"), row)
        elif key in _TOP:
            row[_TOP[key]] = v
        elif not str(k).startswith("_") and not isinstance(v, (Mapping, list)):
            row[str(k)] = v
    return row


def _flat_table(df: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    star = any(src == METRICS_STAR for src in mapping.values())
    renamed = {}
    for c in df.columns:
        name = str(c)
        if name.lower() in _TOP:
            renamed[c] = _TOP[name.lower()]
        elif metric_key(name, mapping) and not star:
            renamed[c] = f"metrics.{name}"
    return df.rename(columns=renamed)


def read_wandb_export(path: str | Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The runs of a W&B export (JSON or CSV, see the module docstring) as one wide row per run.
    ``mapping`` (``{COLUMN: SOURCE}``) names the metrics a flat CSV's columns may carry."""
    path = Path(path)
    mapping = dict(mapping or {})
    if not path.is_file():
        raise ResultsError(f"{path}: no such file; pass a W&B runs export (.json or .csv)")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            raise ResultsError(f"{path}: not valid JSON ({exc}); pass the runs dumped as a JSON list") from None
        runs = doc.get("runs") if isinstance(doc, dict) else doc
        if not isinstance(runs, list) or not all(isinstance(r, Mapping) for r in runs):
            raise ResultsError(f"{path}: expected a list of runs ({{id, name, state, config, summary}}) "
                               "or {\"runs\": [...]}")
        return pd.DataFrame([_nested_row(r, f"{path} run {i}") for i, r in enumerate(runs)])
    if path.suffix.lower() != ".csv":
        raise ResultsError(f"{path}: unknown export format {path.suffix!r}; pass a W&B runs export .json or .csv")
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # pandas raises several types for a broken file
        raise ResultsError(f"{path}: cannot read CSV ({exc}); check the file is a complete CSV") from exc
    df = df.drop(columns=[c for c in df.columns if str(c).startswith("Unnamed: ")])  # to_csv's index
    if {"config", "summary"} & {str(c).lower() for c in df.columns}:
        return pd.DataFrame([_nested_row(r, f"{path} row {i}") for i, r in enumerate(df.to_dict("records"))])
    return _flat_table(df, mapping)
