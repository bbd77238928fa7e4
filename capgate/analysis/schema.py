"""The results table: the contract between the grid and the analysis (see DESIGN.md).

One row per trained model x evaluation set. The grid writes rows with exactly these
columns (plus any extra metric columns); the analysis validates a table once, at its entry.
This module imports neither torch nor ray.
"""

from __future__ import annotations

__all__ = [
    "ID_COLUMNS",
    "DETECTION_METRICS",
    "CLASSIFICATION_METRICS",
    "METRIC_COLUMNS",
    "PROVENANCE_COLUMNS",
    "REQUIRED_COLUMNS",
    "STATUSES",
    "SHIFTS",
    "TASKS",
]

TASKS = ("detection", "classification")
SHIFTS = ("in_domain", "cross_dataset", "cross_modality", "cross_domain")
STATUSES = ("ok", "diverged", "failed")

#: Identifying and design columns, with their dtype kind ("str", "int", "float").
ID_COLUMNS: dict[str, str] = {
    "study": "str",
    "task": "str",
    "run_id": "str",
    "family": "str",
    "width": "float",
    "depth": "float",
    "resolution": "int",
    "backbone": "str",
    "params": "int",
    "macs": "int",
    "init": "str",
    "init_source": "str",
    "train_set": "str",
    "eval_set": "str",
    "shift": "str",
    "seed": "int",
    "status": "str",
}

#: Metrics on a 0..1 scale. Detection: COCO mAP@[.5:.95], AP50, AP75; classification: top-1
#: (top-5 and macro-F1 are written too where the task is classification).
DETECTION_METRICS = ("map", "ap50", "ap75")
CLASSIFICATION_METRICS = ("top1", "top5", "macro_f1")
METRIC_COLUMNS = DETECTION_METRICS + CLASSIFICATION_METRICS

#: Provenance columns (strings unless noted).
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

#: Every table has these; metric columns of the other task may be absent or all-NaN.
REQUIRED_COLUMNS: tuple[str, ...] = tuple(ID_COLUMNS) + tuple(PROVENANCE_COLUMNS)

#: Columns the grid writes when it can, and the analysis uses when present.
OPTIONAL_COLUMNS: dict[str, str] = {
    "backbone_params": "int",
    "latency_ms": "float",
    "size_bytes": "int",
    "peak_mem_bytes": "int",
    "rung": "str",
    "class_map": "str",
    "data_variant": "str",
    "epochs": "int",
}
__all__.append("OPTIONAL_COLUMNS")
