"""The study store: one JSON file of result records per run, keyed by run_id.

``<storage>/<study>/runs/<run_id>.json`` = ``{"run_id", "spec", "records": [row, ...]}``,
written whole (atomically on a local filesystem, one PUT on object storage; see
:mod:`capgate.store.location`), so a crash can never leave a half-written record that reads as a
result. ``storage`` is a local path or an ``s3://``/``gs://``/... URI. Records are **written once**: a new record is created only if
absent, and a run stored with a final status (``ok``, ``diverged``) is never replaced: a second
write (a retried or duplicated trial) is logged and dropped. Only a ``failed`` record is replaced,
by the retry that trains the run again. :meth:`Store.collect` turns the store into the results
table (parquet + CSV) of the current spec's runs and lists their ids in ``current_runs.json``, so that
``capgate report <study folder>`` reads the same runs (older specs' records stay in ``runs/`` and
are read only with ``report --all-runs``). This module imports neither torch nor ray.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
import io
from pathlib import Path
from typing import Any

import pandas as pd

from capgate.store.location import Location, location
from capgate.errors import ResultsError
from capgate.schema import CURRENT_RUNS, FINAL_STATUSES, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, TASK_METRICS

__all__ = ["Store", "FINAL_STATUSES"]

log = logging.getLogger(__name__)

_BATCH = 2000  # records turned into one frame at a time by Store.table


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


class Store:
    """Records of one study under ``<storage>/<study>``."""

    def __init__(self, storage: Path | str | Location, study: str) -> None:
        self.storage = location(storage)
        self.root = self.storage / study
        self.runs = self.root / "runs"

    def path(self, run_id: str) -> Location:
        return self.runs / f"{run_id}.json"

    def write(self, run_id: str, spec: dict[str, Any], records: list[dict[str, Any]]) -> bool:
        """Store a run's records once; returns False when a final record was already stored (this
        write is then logged and dropped). A stored ``failed`` record is replaced."""
        if not records:
            raise ResultsError(f"run {run_id}: no records to store; a run writes one per eval set")
        for r in records:
            if r.get("run_id") != run_id:
                raise ResultsError(f"run {run_id}: a record carries run_id {r.get('run_id')!r}")
        path = self.path(run_id)
        data = (json.dumps({"run_id": run_id, "spec": spec, "records": records}, indent=1, sort_keys=True,
                           default=_json_default, allow_nan=True) + "\n").encode()
        for _ in range(3):
            previous = self.status(run_id)
            if previous in FINAL_STATUSES:
                log.warning("run %s is already stored as %s in %s; this second write (status %s) is dropped",
                            run_id, previous, path, records[0].get("status"))
                return False
            try:
                path.write_bytes(data, exclusive=previous is None and not path.is_file())
                return True
            except FileExistsError:  # another writer created it meanwhile: look again
                log.info("run %s: another writer stored %s first; looking again", run_id, path)
                continue
        raise ResultsError(f"{path}: could not store run {run_id} (three writers raced); rerun the grid")

    def read(self, run_id: str) -> dict[str, Any] | None:
        """A run's stored document, or None when absent or unreadable (then it is retrained)."""
        path = self.path(run_id)
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("record %s is unreadable (%s); the run will be trained again", path, exc)
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("records"), list) or not doc["records"]:
            log.warning("record %s has no records; the run will be trained again", path)
            return None
        return doc

    def status(self, run_id: str) -> str | None:
        """``ok``, ``diverged``, ``failed`` (worst over the run's records) or None if not stored."""
        doc = self.read(run_id)
        if doc is None:
            return None
        statuses = {r.get("status") for r in doc["records"]}
        for s in ("failed", "diverged", "ok"):
            if s in statuses:
                return s
        return "failed"

    def stored_ids(self) -> list[str]:
        """Run ids with a record file (readable or not)."""
        return [f.name[:-len(".json")] for f in self.runs.files(".json")]

    def done(self, run_ids: list[str]) -> set[str]:
        """The ``run_ids`` already stored with a final status (skipped on a rerun)."""
        return {rid for rid in run_ids if self.status(rid) in FINAL_STATUSES}

    def table(self, run_ids: list[str] | None = None, task: str | None = None) -> pd.DataFrame:
        """All stored records (of ``run_ids`` when given) as one frame, columns in contract order."""
        ids = self.stored_ids() if run_ids is None else run_ids
        frames, rows = [], []
        for i, rid in enumerate(ids):
            doc = self.read(rid)
            if doc is not None:  # repeated strings (study, backbone, versions, ...) are kept once
                rows.extend({k: sys.intern(v) if isinstance(v, str) else v for k, v in r.items()}
                            for r in doc["records"])
            if len(rows) >= _BATCH or i == len(ids) - 1:  # record dicts are transient, a batch at a time
                frames.append(pd.DataFrame(rows))
                rows = []
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0] if frames else pd.DataFrame()
        metrics = list(TASK_METRICS.get(task, ())) if task else []
        for col in list(REQUIRED_COLUMNS) + metrics:
            if col not in df.columns:
                df[col] = math.nan
        first = list(REQUIRED_COLUMNS) + metrics
        rest = [c for c in OPTIONAL_COLUMNS if c in df.columns] + \
            [c for c in df.columns if c not in first and c not in OPTIONAL_COLUMNS]
        df = df[first + rest]
        if not df.empty:
            df = df.sort_values(["run_id", "eval_set"], kind="stable").reset_index(drop=True)
        return df

    def collect(self, run_ids: list[str] | None = None, task: str | None = None) -> tuple[pd.DataFrame, Path | Location]:
        """Write the results table as ``results.parquet`` and ``results.csv`` beside ``runs/``
        (atomically), and return it with the parquet file (a Path on a local store)."""
        df = self.table(run_ids, task)
        if df.empty:
            raise ResultsError(f"{self.runs}: no run records stored yet; run the grid first")
        dup = df.duplicated(["run_id", "eval_set"])
        if dup.any():  # impossible by construction (one file per run_id); checked anyway
            raise ResultsError(f"{self.runs}: duplicated (run_id, eval_set) rows {df.loc[dup, 'run_id'].tolist()[:5]}")
        if run_ids is not None:  # which runs this table holds: `capgate report STUDY_FOLDER` reads the same
            current = {"study": self.root.name, "run_ids": list(run_ids), "written_at": time.strftime(
                "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
            (self.root / CURRENT_RUNS).write_bytes((json.dumps(current, indent=1) + "\n").encode())
        parquet = self.root / "results.parquet"
        for target, write in ((parquet, df.to_parquet), (self.root / "results.csv", df.to_csv)):
            buf = io.BytesIO()  # one copy of the file's bytes (CSV: written a chunk of rows at a time)
            write(buf, index=False)
            target.write_bytes(buf.getbuffer())
        return df, parquet.local if parquet.local is not None else parquet
