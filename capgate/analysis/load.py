"""Reading and validating a results table (the contract of docs/architecture.md and :mod:`capgate.schema`).

A results table comes from a parquet file, a CSV file, or a study store: a folder holding
``runs/*.json`` record files (each ``{"run_id": ..., "records": [ {row}, ... ]}``). The table is
validated once, here, at the entry of the analysis; every error names the column, the first
offending rows and the fix.
"""

from __future__ import annotations

import io
import json
import logging
import math
import posixpath
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from capgate.schema import (
    CURRENT_RUNS,
    COLUMN_KINDS,
    METRIC_COLUMNS,
    OPTIONAL_COLUMNS,
    PRIMARY_METRIC,
    REQUIRED_COLUMNS,
    SHIFTS,
    STATUSES,
    TASKS,
    metrics_for,
)
from capgate.errors import ResultsError

__all__ = ["load_results", "read_table", "table_name", "validate", "metrics_for", "study_selection"]

log = logging.getLogger(__name__)

_MAX_LISTED = 5


def read_table(path: str | Path, all_runs: bool = False) -> pd.DataFrame:
    """The rows of a results file or study store, as stored (not mapped, not validated).

    ``path`` is a local path or an object-store URI (``s3://bucket/prefix/study``, ``gs://...``;
    see :mod:`capgate.store.location`). A folder is read as a study store: ``<path>/runs/*.json``, or
    ``<path>/*.json`` when the folder is the ``runs`` folder itself, or ``<path>/*/runs/*.json``
    for a storage root holding several studies. A study folder holds the records of every spec
    ever run into it; by default only the runs of the spec ``run-grid`` last ran are read (the
    run ids it lists in ``current_runs.json``, the same rows as its ``results.parquet``), and
    ``all_runs=True`` reads every record (:func:`study_selection` says which).
    """
    from capgate.store.location import is_remote, location

    if is_remote(path):
        loc = location(path)
        if loc.is_file():
            return _read_file(io.BytesIO(loc.read_bytes()), str(path), posixpath.splitext(loc.path)[1].lower())
        if loc.is_dir():
            return _read_store(loc, str(path), all_runs)
        raise ResultsError(f"{path}: no such object or folder; pass a results .parquet/.csv file or a "
                           f"study store folder (check the bucket, prefix and AWS_ENDPOINT_URL)")
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path}: no such file or folder; pass a results .parquet/.csv file or a study store folder")
    if path.is_dir():
        return _read_store(location(path), str(path), all_runs)
    return _read_file(path, str(path), path.suffix.lower())


def table_name(path: str | Path) -> str:
    """The study name a table file gives when it has no ``study`` column: its file name, less the suffix."""
    name = posixpath.basename(str(path).rstrip("/").split("?", 1)[0])
    return name.rsplit(".", 1)[0] if "." in name else name


def load_results(path: str | Path, all_runs: bool = False, *, columns: dict[str, str] | None = None,
                 shift_labels: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a results table (:func:`read_table`), map a foreign table's columns onto the contract
    (``columns``: ``{COLUMN: SOURCE}``, see :mod:`capgate.analysis.columns`; each change is logged at
    INFO), and validate it (:func:`validate`, ``shift_labels`` the user's own shifts)."""
    from capgate.analysis.columns import map_columns

    mapped = map_columns(read_table(path, all_runs), columns, source=str(path), default_study=table_name(path))
    for note in mapped.notes:
        log.info("%s: %s", path, note)
    return validate(mapped.table, source=str(path), shift_labels=shift_labels)


def _read_file(src: Path | io.BytesIO, name: str, suffix: str) -> pd.DataFrame:
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(src)
        except Exception as exc:  # pyarrow raises many types for a broken file
            raise ResultsError(f"{name}: cannot read parquet ({exc}); rerun `capgate run-grid SPEC` (it rewrites results.parquet from the study store) or pass the study folder") from exc
    if suffix == ".csv":
        try:
            # string columns read as strings: a git sha of digits or an all-hex run id stays text
            str_cols = [c for c, k in COLUMN_KINDS.items() if k == "str"]
            return pd.read_csv(src, dtype={c: str for c in str_cols}, keep_default_na=True)
        except Exception as exc:
            raise ResultsError(f"{name}: cannot read CSV ({exc}); check the file is a complete CSV") from exc
    raise ResultsError(f"{name}: unknown results format {suffix!r}; use .parquet, .csv or a study store folder")


def _study_files(study: Any, all_runs: bool) -> tuple[list[Any], int]:
    """A study folder's record files (the current spec's, unless ``all_runs``) and how many older
    records were left out."""
    files = study.files(".json") if study.name == "runs" else (study / "runs").files(".json")
    if all_runs:
        return files, 0
    marker = (study / CURRENT_RUNS) if study.name != "runs" else None
    try:
        ids = set(json.loads(marker.read_bytes())["run_ids"]) if marker is not None else None
    except (FileNotFoundError, OSError, ValueError, KeyError, TypeError):
        ids = None
    if ids is None:
        return files, 0
    keep = [f for f in files if f.name[:-len(".json")] in ids]
    return keep, len(files) - len(keep)


def study_selection(path: str | Path, all_runs: bool = False) -> str | None:
    """One line saying which records of a study folder :func:`load_results` reads (None for a
    table file or a folder that is not a study store)."""
    from capgate.store.location import is_remote, location

    if not is_remote(path) and not Path(path).is_dir():
        return None
    loc = location(path)
    studies = [loc] if (loc / "runs").is_dir() or loc.name == "runs" else \
        [d for d in loc.folders() if (d / "runs").is_dir()]
    parts = []
    for st in studies:
        files, left = _study_files(st, all_runs)
        if all_runs:
            parts.append(f"{st}: all {len(files)} stored runs (--all-runs)")
        elif left:
            parts.append(f"{st}: the {len(files)} runs of the current spec (as run-grid's results.parquet); "
                         f"{left} older runs left out (capgate report --all-runs reads them)")
        else:
            parts.append(f"{st}: {len(files)} runs")
    return "; ".join(parts) if parts else None


def _read_store(folder: Any, name: str, all_runs: bool = False) -> pd.DataFrame:
    """Rows of every record file of a study folder (``folder`` a :class:`capgate.store.location.Location`)."""
    if folder.name == "runs" or (folder / "runs").is_dir():
        files = _study_files(folder, all_runs)[0]
    else:
        files = [f for f in folder.files(".json") if f.name != CURRENT_RUNS]
        if not files:
            for sub in folder.folders():
                if (sub / "runs").is_dir():
                    files += _study_files(sub, all_runs)[0]
    if not files:
        raise ResultsError(
            f"{name}: no run records found (looked for runs/*.json, *.json, */runs/*.json); "
            "pass the study folder written by the grid, or a results .parquet/.csv"
        )
    rows: list[dict] = []
    for f in files:
        try:
            doc = json.loads(f.read_bytes())
        except (OSError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{f}: not a readable JSON run record ({exc}); delete it and re-run that run") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
            raise ResultsError(f"{f}: expected {{'run_id': ..., 'records': [...]}}; delete it and re-run that run")
        for rec in doc["records"]:
            if not isinstance(rec, dict):
                raise ResultsError(f"{f}: a record is not an object; delete it and re-run that run")
            row = dict(rec)
            row.setdefault("run_id", doc.get("run_id"))
            rows.append(row)
    if not rows:
        raise ResultsError(f"{name}: the run records hold no rows; re-run the grid")
    return pd.DataFrame(rows)


def _rows(table: pd.DataFrame, mask: np.ndarray | pd.Series) -> str:
    """First few offending rows as 'row N (run_id X)'."""
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    parts = []
    for i in idx[:_MAX_LISTED]:
        rid = table["run_id"].iloc[i] if "run_id" in table.columns else "?"
        parts.append(f"row {i} (run_id {rid})")
    more = f" and {len(idx) - _MAX_LISTED} more" if len(idx) > _MAX_LISTED else ""
    return ", ".join(parts) + more


def _is_str_like(s: pd.Series, allow_missing: bool) -> np.ndarray:
    """Boolean mask of cells that are NOT acceptable strings."""
    vals = s.to_numpy(dtype=object)
    bad = np.zeros(len(vals), dtype=bool)
    for i, v in enumerate(vals):
        if isinstance(v, str):
            continue
        if allow_missing and (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA):
            continue
        bad[i] = True
    return bad


def _coerce(table: pd.DataFrame, col: str, kind: str, *, required: bool | pd.Series, source: str) -> None:
    """Type-check one column in place; ``required`` is True (every row), False, or a row mask."""
    s = table[col]
    if kind == "str":
        allow_missing = required is not True
        if s.isna().all() and allow_missing:
            table[col] = s.astype(object)
            return
        bad = _is_str_like(s, allow_missing)
        if bad.any():
            raise ResultsError(
                f"{source}: column {col!r} must hold strings; bad values at {_rows(table, bad)} "
                f"(e.g. {s[bad].iloc[0]!r}); fix the writer or the file"
            )
        return
    num = pd.to_numeric(s, errors="coerce")
    bad_type = num.isna() & s.notna()
    if bad_type.any():
        raise ResultsError(
            f"{source}: column {col!r} must be numeric ({kind}); non-numeric values at {_rows(table, bad_type)} "
            f"(e.g. {s[bad_type].iloc[0]!r}); fix the writer or the file"
        )
    if required is not False:
        need = num.isna() if required is True else (num.isna() & required)
        if need.any():
            raise ResultsError(
                f"{source}: column {col!r} ({kind}) is missing at {_rows(table, need)}; "
                + ("every row needs it" if required is True else "every 'ok' row needs it")
            )
    if kind == "int":
        frac = num.notna() & (num != np.round(num))
        if frac.any():
            raise ResultsError(
                f"{source}: column {col!r} must hold integers; fractional values at {_rows(table, frac)} "
                f"(e.g. {num[frac].iloc[0]!r}); fix the writer or the file"
            )
        table[col] = num.astype("Int64") if num.isna().any() else num.astype("int64")
    else:
        table[col] = num.astype("float64")


def validate(table: pd.DataFrame, *, source: str = "results table", shift_labels: tuple[str, ...] = ()) -> pd.DataFrame:
    """Check a results table against the contract and return a clean, typed copy.

    Raises :class:`~capgate.errors.ResultsError` naming the column, the first offending rows and
    the fix for: a missing column, a wrong type, a duplicated ``(run_id, eval_set)``, a metric out
    of [0, 1], an ``ok`` row without its task's primary metric, an unknown task/status/shift, or a
    run whose design columns disagree between its records. ``failed``/``diverged`` rows are kept.
    ``shift_labels``: shift labels the user declared beside :data:`capgate.schema.SHIFTS` (e.g. ``corruption``).
    """
    if not isinstance(table, pd.DataFrame):
        raise ResultsError(f"{source}: expected a pandas DataFrame, got {type(table).__name__}")
    if table.empty:
        raise ResultsError(f"{source}: the table has no rows; run the grid first")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ResultsError(
            f"{source}: missing required column(s) {missing}; an analysis needs "
            f"{list(REQUIRED_COLUMNS)} plus the task's metric (see docs/architecture.md, 'The results table')"
        )
    t = table.reset_index(drop=True).copy()
    ok_rows = t["status"] == "ok"
    for col, kind in REQUIRED_COLUMNS.items():
        # a failed run may lack numbers it never measured (params of a model never built)
        need: bool | pd.Series = ok_rows if col == "params" else True
        _coerce(t, col, kind, required=need, source=source)
    for col, kind in OPTIONAL_COLUMNS.items():
        if col in t.columns:
            _coerce(t, col, kind, required=False, source=source)
        else:  # unknown, shown as unknown: never invented
            t[col] = pd.Series([None] * len(t), dtype=object) if kind == "str" else np.nan
    shifts = tuple(dict.fromkeys([*SHIFTS, *shift_labels]))
    for col, allowed in (("task", TASKS), ("status", STATUSES), ("shift", shifts)):
        bad = ~t[col].isin(allowed)
        if bad.any():
            found = sorted(set(t.loc[bad, col]))
            own = (f"; a shift label of your own is declared with --shift-labels {','.join(map(str, found))} "
                   "(or `shift_labels:` in the analysis plan)") if col == "shift" else ""
            raise ResultsError(f"{source}: unknown {col} {found} at {_rows(t, bad)}; valid: {list(allowed)}{own}")
    metrics = [c for c in METRIC_COLUMNS if c in t.columns]
    for col in metrics:
        num = pd.to_numeric(t[col], errors="coerce")
        bad_type = num.isna() & t[col].notna()
        if bad_type.any():
            raise ResultsError(f"{source}: metric {col!r} must be numeric; bad values at {_rows(t, bad_type)}")
        t[col] = num.astype("float64")
        out = num.notna() & ((num < 0) | (num > 1) | ~np.isfinite(num))
        if out.any():
            raise ResultsError(
                f"{source}: metric {col!r} out of [0, 1] at {_rows(t, out)} (e.g. {num[out].iloc[0]!r}); "
                + ("metrics are fractions in [0, 1]: divide percentages by 100" if np.isfinite(num[out].iloc[0]) else "record a non-finite metric as NaN with status 'diverged' or 'failed'")
            )
    for task, metric in PRIMARY_METRIC.items():
        ok = (t["task"] == task) & (t["status"] == "ok")
        if not ok.any():
            continue
        if metric not in t.columns:
            raise ResultsError(f"{source}: {task} rows need metric column {metric!r}; it is missing")
        nan = ok & t[metric].isna()
        if nan.any():
            raise ResultsError(
                f"{source}: status 'ok' rows without {metric!r} at {_rows(t, nan)}; "
                "record the metric or mark the run 'failed'"
            )
    dup = t.duplicated(["run_id", "eval_set"], keep=False)
    if dup.any():
        raise ResultsError(
            f"{source}: duplicated (run_id, eval_set) at {_rows(t, dup)}; each run has one record per eval set: "
            "drop the repeated records (collect again from the study store)"
        )
    design = ["study", "task", "backbone", "init", "train_set", "seed", "family"]
    nuniq = t.groupby("run_id")[design].nunique(dropna=False)
    incons = nuniq[(nuniq > 1).any(axis=1)]
    if len(incons):
        cols = [c for c in design if (incons[c] > 1).any()]
        raise ResultsError(
            f"{source}: run_id(s) {list(incons.index[:_MAX_LISTED])} have records that disagree on {cols}; "
            "a run_id names one trained model: regenerate the run ids from the specs"
        )
    return t
