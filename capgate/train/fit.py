"""``fit``: the recipe's whole training schedule around :func:`train_one_epoch`, with the
per-epoch metrics CSV. Shared by grid runs and pretraining stages, so both follow one recipe."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from capgate.spec import Recipe
from capgate.train.loop import EpochStats, train_one_epoch
from capgate.train.recipe import make_optimizer, make_scheduler, total_steps

__all__ = ["fit", "METRICS_COLUMNS"]

log = logging.getLogger(__name__)

METRICS_COLUMNS = ("epoch", "steps", "images", "loss", "lr", "seconds")


def fit(model: torch.nn.Module, batches: Callable[[], Iterable[Any]], steps_per_epoch: int, recipe: Recipe,
        device: torch.device, loss_fn: Callable[..., Any], metrics_csv: Path | None = None,
        ) -> list[EpochStats]:
    """Train ``model`` in place under ``recipe``; ``batches()`` yields one epoch's batches.

    Runs ``recipe.epochs`` epochs, or exactly ``recipe.steps`` optimizer steps when set (epochs
    then repeat as needed). Appends one row per epoch to ``metrics_csv``. Non-finite losses
    raise :class:`~capgate.errors.DivergedError` (from :func:`train_one_epoch`).
    """
    model.to(device)
    opt = make_optimizer(list(model.parameters()), recipe)
    steps = total_steps(recipe, steps_per_epoch)
    sched = make_scheduler(opt, recipe, steps)
    history: list[EpochStats] = []
    writer = None
    fh = None
    if metrics_csv is not None:
        metrics_csv.parent.mkdir(parents=True, exist_ok=True)
        fh = open(metrics_csv, "w", newline="")
        writer = csv.writer(fh)
        writer.writerow(METRICS_COLUMNS)
    try:
        done, epoch = 0, 0
        while done < steps:
            epoch += 1
            lr = opt.param_groups[0]["lr"]
            stats = train_one_epoch(model, batches(), opt, sched, device, loss_fn=loss_fn,
                                    grad_clip=recipe.grad_clip, max_steps=steps - done)
            if stats.steps == 0:
                break
            done += stats.steps
            history.append(stats)
            log.debug("epoch %d: loss %.4f (%d steps, %.1fs)", epoch, stats.loss, stats.steps, stats.seconds)
            if writer is not None:
                writer.writerow([epoch, done, stats.images, f"{stats.loss:.6g}", f"{lr:.6g}", f"{stats.seconds:.3f}"])
                fh.flush()
    finally:
        if fh is not None:
            fh.close()
    return history
