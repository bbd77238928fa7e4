"""Training as plain functions: one epoch, evaluation, one whole run, pretraining stages.

Knows nothing of Ray; :mod:`capgate.grid` wraps :func:`train_one_run` in Tune trials. Names are
imported on first use, so that the grid driver can use :mod:`capgate.train.pretrain`'s paths and
:func:`capgate.train.run.run_base` without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "fit": "fit",
    "EpochStats": "loop", "classification_loss": "loop", "detection_loss": "loop",
    "evaluate_classification": "loop", "evaluate_detection": "loop", "train_one_epoch": "loop",
    "classification_scores": "metrics", "coco_map": "metrics",
    "StageResult": "pretrain", "ensure_stage": "pretrain", "ensure_world_once": "pretrain", "world_root": "pretrain",
    "make_optimizer": "recipe", "make_scheduler": "recipe", "pick_device": "recipe", "seed_everything": "recipe",
    "run_dir": "run", "train_one_run": "run",
    "Task": "task", "get_task": "task",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"capgate.train.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'capgate.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
