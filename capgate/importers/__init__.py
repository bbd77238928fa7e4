"""Results from other trackers: MLflow (:mod:`capgate.importers.mlflow`, a tracking server's REST API)
and Weights & Biases (:mod:`capgate.importers.wandb`, a runs export). Each reader returns the runs as
one wide row per run (``metrics.*``, ``params.*``/``config.*``, ``tags.*``, ``status``, ``run_id``);
:func:`to_results` maps that onto the results table (:mod:`capgate.analysis.columns`), validates it,
and :func:`write_results` writes it as parquet or CSV for ``capgate report`` and ``capgate check``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from capgate.analysis.columns import Mapped, map_columns
from capgate.analysis.load import validate
from capgate.errors import ResultsError
from capgate.schema import COLUMN_KINDS, METRIC_COLUMNS
from capgate.store.atomic import atomic_write

__all__ = ["to_results", "write_results"]


def to_results(raw: pd.DataFrame, mapping: Mapping[str, str] | None = None, *, source: str, study: str,
               shift_labels: Sequence[str] = ()) -> Mapped:
    """The validated results table of a tracker's wide run table, keeping only the table's own
    columns (``study`` is the default study name), and the mapping's notes."""
    if raw.empty:
        raise ResultsError(f"{source}: no runs found; check the experiment or project name")
    mapped = map_columns(raw, mapping, source=source, default_study=study)
    table = validate(mapped.table, source=source, shift_labels=tuple(shift_labels))
    known = {*COLUMN_KINDS, *METRIC_COLUMNS}
    keep = [c for c in mapped.table.columns if c in known]
    return Mapped(table[keep], mapped.notes)


def write_results(table: pd.DataFrame, out: str | Path) -> Path:
    """Write ``table`` to ``out`` (``.parquet`` or ``.csv``) in one atomic step."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ResultsError(f"{out}: unknown output format {suffix!r}; name the file *.parquet or *.csv")
    if suffix == ".parquet":
        return atomic_write(out, lambda f: table.to_parquet(f, index=False))
    return atomic_write(out, lambda f: f.write(table.to_csv(index=False).encode()))
