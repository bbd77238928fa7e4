"""Training as plain functions: one epoch, evaluation, one whole run, pretraining stages.

Knows nothing of Ray; :mod:`capgate.grid` wraps :func:`train_one_run` in Tune trials.
"""

from __future__ import annotations

from capgate.train.fit import fit
from capgate.train.loop import (EpochStats, classification_loss, detection_loss, evaluate_classification,
                                evaluate_detection, train_one_epoch)
from capgate.train.metrics import classification_scores, coco_map
from capgate.train.pretrain import StageResult, ensure_stage, ensure_world_once, world_root
from capgate.train.recipe import make_optimizer, make_scheduler, pick_device, seed_everything
from capgate.train.run import run_dir, train_one_run

__all__ = [
    "EpochStats", "StageResult", "classification_loss", "classification_scores", "coco_map",
    "detection_loss", "ensure_stage", "ensure_world_once", "evaluate_classification",
    "evaluate_detection", "fit", "make_optimizer", "make_scheduler", "pick_device", "run_dir",
    "seed_everything", "train_one_epoch", "train_one_run", "world_root",
]
