"""The files written beside a report: ``model.json``, ``model_frame.csv``, ``gains.csv``, ``summary.json``.

``model_frame.csv`` holds all models in one file, a ``model`` column naming which model each row
belongs to. Every write is atomic (:mod:`capgate.store.atomic`); every float in JSON is finite or null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from capgate.store.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from capgate.analysis.result import GAINS_COLUMNS, Analysis
from capgate.analysis.summary import build_summary, jsonable

__all__ = ["write_outputs", "frame_csv", "MODEL_SCHEMA"]

MODEL_SCHEMA = "capgate-model/2"


def write_outputs(a: Analysis, outdir: str | Path, summary: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write model.json, model_frame.csv, gains.csv and summary.json into ``outdir``; returns their paths.

    ``summary``: the already built summary of ``a`` (built here when None).
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("model.json", "model_frame.csv", "gains.csv", "summary.json")}
    model_doc = {"schema": MODEL_SCHEMA, "verdict_rule": a.methods.get("verdict_rule"), "models": a.models,
                 "methods": a.methods}
    atomic_write_json(paths["model.json"], jsonable(model_doc), indent=2, allow_nan=False)
    frames = [f.assign(model=name)[["model", *f.columns]] for name, f in a.model_frames.items()]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model"])
    atomic_write_bytes(paths["model_frame.csv"], frame_csv(frame))
    atomic_write_text(paths["gains.csv"], a.gains[[*GAINS_COLUMNS, "key"]].to_csv(index=False))
    atomic_write_json(paths["summary.json"], build_summary(a) if summary is None else summary, indent=2,
                      allow_nan=False)
    return paths


def frame_csv(frame: pd.DataFrame) -> bytes:
    """``frame`` as CSV bytes, written by Arrow (6x faster than pandas on 300k rows): the same numbers in
    shortest round-trip form (a whole float as ``0``, not ``0.0``), text fields quoted, missing values empty."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="needed"))
    return sink.getvalue().to_pybytes()
