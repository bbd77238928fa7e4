"""The results table: THE contract between the grid (or any other trainer) and the analysis.

One row per trained model x evaluation set. This module is the one home of the table's
vocabulary (tasks, shifts, statuses, the metrics of each task and the primary one, the column
names and their kinds) and of the record builder that every writer of rows calls. It imports
neither torch nor ray.

Columns are split in two:

- **required** (:data:`REQUIRED_COLUMNS`): what an analysis needs to define a cell and its metric.
  A table from another trainer needs only these (plus the metric columns of its task).
- **optional** (:data:`OPTIONAL_COLUMNS`): capacity multipliers, MACs, latency, provenance, ...
  An absent optional column is shown as unknown by the report, never invented.

A missing number is ``None``/NaN, never a sentinel such as -1 or 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CURRENT_RUNS",
    "TASKS",
    "SHIFTS",
    "STATUSES",
    "FINAL_STATUSES",
    "TASK_METRICS",
    "DETECTION_METRICS",
    "CLASSIFICATION_METRICS",
    "METRIC_COLUMNS",
    "PRIMARY_METRIC",
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "PROVENANCE_COLUMNS",
    "COLUMN_KINDS",
    "metrics_for",
    "build_records",
]

TASKS: tuple[str, ...] = ("detection", "classification")
SHIFTS: tuple[str, ...] = ("in_domain", "cross_dataset", "cross_modality", "cross_domain")
STATUSES: tuple[str, ...] = ("ok", "diverged", "failed")
#: Statuses that end a run for good: a rerun of the grid never trains such a run again.
FINAL_STATUSES: tuple[str, ...] = ("ok", "diverged")

#: Metrics on a 0..1 scale. Detection: COCO mAP@[.5:.95], AP50, AP75 on the shared class;
#: classification: top-1, top-5 and macro-F1.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "detection": ("map", "ap50", "ap75"),
    "classification": ("top1", "top5", "macro_f1"),
}
DETECTION_METRICS = TASK_METRICS["detection"]
CLASSIFICATION_METRICS = TASK_METRICS["classification"]
METRIC_COLUMNS: tuple[str, ...] = DETECTION_METRICS + CLASSIFICATION_METRICS
#: The metric an ``ok`` row of each task must carry (an analysis plan may analyse another one).
PRIMARY_METRIC: dict[str, str] = {"detection": "map", "classification": "top1"}

#: What an analysis needs, with each column's kind ("str", "int", "float").
REQUIRED_COLUMNS: dict[str, str] = {
    "study": "str",
    "task": "str",
    "run_id": "str",
    "family": "str",
    "backbone": "str",
    "params": "int",
    "init": "str",
    "train_set": "str",
    "eval_set": "str",
    "shift": "str",
    "seed": "int",
    "status": "str",
}

#: Provenance of a record: versions, hashes, times (written by capgate's grid; optional to readers).
PROVENANCE_COLUMNS: dict[str, str] = {
    "capgate_version": "str",
    "torch_version": "str",
    "timm_version": "str",
    "git_sha": "str",
    "spec_hash": "str",
    "data_fingerprint": "str",
    "started_at": "str",
    "ended_at": "str",
    "wall_seconds": "float",
    "error": "str",
}

#: Columns capgate writes when it can and the analysis uses when present.
OPTIONAL_COLUMNS: dict[str, str] = {
    "width": "float",
    "depth": "float",
    "resolution": "int",
    "macs": "int",
    "init_source": "str",
    "stage_seed": "int",  # the pretraining replicate a run started from; null for scratch and external checkpoints
    "backbone_params": "int",
    "latency_ms": "float",
    "size_bytes": "int",
    "peak_mem_bytes": "int",
    # peak bytes of the CUDA caching allocator over the run's training (torch.cuda.max_memory_allocated);
    # None when the run trained off CUDA. peak_mem_bytes above is the model's batch-1 step, measured once per cell.
    "cuda_peak_mem_bytes": "int",
    "device": "str",  # what the run trained on: "cpu" or "cuda (<device name>)"
    "precision": "str",  # recipe.amp resolved on that device: fp32, bf16 or fp16
    "rung": "str",
    "class_map": "str",
    "data_variant": "str",
    "epochs": "int",
    # invalid boxes dropped by the readers (spec key drop_invalid) from the run's train and eval splits
    "dropped_boxes": "int",
    **PROVENANCE_COLUMNS,
}

#: Kind of every known non-metric column.
COLUMN_KINDS: dict[str, str] = {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}


def metrics_for(task: str) -> tuple[str, ...]:
    """Metric columns of one task; raises ``ValueError`` naming the valid tasks."""
    try:
        return TASK_METRICS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}") from None


def _clean(col: str, value: Any) -> Any:
    """A column value with sentinels refused: a missing number is None, never -1."""
    kind = COLUMN_KINDS.get(col)
    if value is None or kind is None:
        return value
    if kind in ("int", "float"):
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, (int, float)) and value < 0 and col not in ("seed",):
            raise ValueError(f"record column {col!r} = {value!r}: a negative count is a sentinel; use None for unknown")
        return int(value) if kind == "int" else float(value)
    return value


def build_records(
    base: Mapping[str, Any],
    evals: Iterable[tuple[str, str]],
    *,
    status: str,
    scores: Mapping[str, Mapping[str, float]] | None = None,
    **common: Any,
) -> list[dict[str, Any]]:
    """The result records of one run: one dict per ``(eval_set, shift)`` in ``evals``.

    ``base`` holds the run's columns (study, task, run_id, family, backbone, params, init,
    train_set, seed, ... ; unknown numbers as ``None``); ``common`` adds more columns to every
    record (error, times); ``scores[eval_set][metric]`` fills the task's metric columns, NaN where
    absent (a failed run has no scores). Raises ``ValueError`` for an unknown task or status, a
    missing required column, or a negative count standing in for "unknown".
    """
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; valid statuses: {', '.join(STATUSES)}")
    task = base.get("task")
    metrics = metrics_for(str(task))
    scores = scores or {}
    fields = {k: _clean(k, v) for k, v in {**base, **common}.items()}
    records = []
    for eval_set, shift in evals:
        if shift not in SHIFTS:
            raise ValueError(f"unknown shift {shift!r} for eval set {eval_set!r}; valid shifts: {', '.join(SHIFTS)}")
        row = dict(fields, eval_set=eval_set, shift=shift, status=status)
        got = scores.get(eval_set, {})
        for m in metrics:
            v = got.get(m)
            row[m] = math.nan if v is None else float(v)
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"record of run {row.get('run_id')!r} lacks required column(s) {missing}")
        records.append(row)
    return records


#: The file beside a study folder's ``results.parquet`` listing the run ids of the spec
#: ``run-grid`` last ran (``{"study", "run_ids", "written_at"}``): the runs the study holds by
#: default, for ``run-grid``'s table and ``capgate report <study folder>`` alike.
CURRENT_RUNS = "current_runs.json"
