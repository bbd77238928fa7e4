"""THE results loader of the command line: what ``report``, ``check`` and ``next-seeds`` analyse.

Each RESULTS argument is a local file (parquet, CSV), a study folder or an object-store URI
(``s3://``, ``gs://``); several are concatenated into one table. Each is read
(:func:`capgate.analysis.load.read_table`), a foreign table's columns are mapped onto the
results table (``--map COLUMN=SOURCE`` flags over the plan's ``columns:`` block;
:mod:`capgate.analysis.columns`), and the table is validated with the user's own shift labels
(``--shift-labels`` and the plan's ``shift_labels:``). What was read and every change the mapping
made are said on stderr, one line each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from capgate._hash import file_sha256

if TYPE_CHECKING:  # pandas is imported when a table is read, so the CLI starts without it
    import pandas as pd

__all__ = ["LoadedResults", "load_inputs", "mapping_options", "mapping_args"]

MAP_HELP = ("Read results-table column COLUMN from the table's column SOURCE, e.g. --map backbone=model "
            "--map top1=accuracy; METRIC=metrics.* reads every metrics.<eval set> column as METRIC. "
            "Repeatable; over the plan's 'columns:' block.")
SHIFT_LABELS_HELP = ("Shift labels of your own beside in_domain, cross_dataset, cross_modality, cross_domain "
                     "(comma-separated, repeatable), e.g. --shift-labels corruption; also the plan's 'shift_labels:'.")


@dataclass(frozen=True)
class LoadedResults:
    """The concatenated, validated table and one provenance record per input (path, rows, sha256)."""

    table: pd.DataFrame
    inputs: list[dict[str, Any]] = field(default_factory=list)


def mapping_options(f: Callable) -> Callable:
    """The ``--map`` and ``--shift-labels`` options of every command that reads RESULTS."""
    f = click.option("--shift-labels", "shift_labels", multiple=True, metavar="LABEL[,LABEL]",
                     help=SHIFT_LABELS_HELP)(f)
    return click.option("--map", "mapping", multiple=True, metavar="COLUMN=SOURCE", help=MAP_HELP)(f)


def mapping_args(mapping: Sequence[str], shift_labels: Sequence[str]) -> list[str]:
    """The ``--map``/``--shift-labels`` flags as typed (for a command line a message repeats)."""
    return [a for m in mapping for a in ("--map", m)] + [a for s in shift_labels for a in ("--shift-labels", s)]


def _record(arg: str, rows: int) -> dict[str, Any]:
    from capgate.store.location import is_remote

    if is_remote(arg):
        return {"path": arg, "rows": rows, "sha256": "(object store)"}
    p = Path(arg)
    return {"path": str(p), "rows": rows, "sha256": file_sha256(p) if p.is_file() else "(folder)"}


def load_inputs(results: Sequence[str], *, all_runs: bool = False, mapping: Sequence[str] = (),
                shift_labels: Sequence[str] = (), plan: str | None = None) -> LoadedResults:
    """Read, map and validate every RESULTS argument and concatenate them (see the module docstring).

    ``plan`` is the ``--plan`` path (its ``columns:`` and ``shift_labels:`` apply under the flags)."""
    from capgate.analysis.columns import check_shift_labels, map_columns, merge_mappings, parse_mapping
    from capgate.analysis.load import read_table, study_selection, table_name, validate
    from capgate.errors import InputError
    from capgate.store.location import is_remote

    if not results:
        raise InputError("no results given; pass one or more results tables (parquet or CSV) or study folders")
    planned_columns: dict[str, str] = {}
    planned_labels: tuple[str, ...] = ()
    if plan is not None:
        from capgate.analysis import load_plan

        resolved = load_plan(plan)
        planned_columns, planned_labels = resolved.columns, resolved.shift_labels
    columns = merge_mappings(planned_columns, parse_mapping(mapping))
    labels = (*planned_labels, *check_shift_labels(shift_labels))
    tables, inputs = [], []
    for arg in results:
        if not is_remote(arg) and not Path(arg).exists():
            raise InputError(f"{arg}: results not found; pass a results table (parquet or CSV) or a study folder")
        line = study_selection(arg, all_runs)
        if line:
            click.echo(f"reading {line}", err=True)
        mapped = map_columns(read_table(arg, all_runs), columns, source=arg, default_study=table_name(arg))
        for note in mapped.notes:
            click.echo(f"{arg}: {note}", err=True)
        table = validate(mapped.table, source=arg, shift_labels=labels)
        tables.append(table)
        inputs.append(_record(arg, len(table)))
    import pandas as pd

    table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True, sort=False)
    return LoadedResults(table, inputs)
