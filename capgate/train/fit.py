"""``fit``: the recipe's whole training schedule around :func:`train_one_epoch`, with the
per-epoch metrics CSV. Shared by grid runs and pretraining stages, so both follow one recipe.

``fit`` also applies the recipe's device settings: the model is moved to the device (and to
channels_last when ``recipe.channels_last``), ``recipe.amp`` is resolved to an autocast dtype
with a GradScaler for fp16 (:func:`capgate.train.recipe.resolve_amp`); on CUDA, cudnn benchmark
mode is switched on and batches are pinned so that their copies to the device are asynchronous.
The CUDA peak memory of training is measured from the start of the fit
(``EpochStats.peak_mem_bytes``; None off CUDA), and the run's record carries it.

With ``state`` (a path or store location, see :mod:`capgate.train.resume`) the whole training
state is saved after every epoch, and a fit that finds a saved state resumes after its epoch:
a run killed or preempted mid-way continues, with the same result as an uninterrupted run on CPU.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from capgate.spec.model import Recipe
from capgate.train.loop import EpochStats, pinned_batches, train_one_epoch
from capgate.train.resume import StateTarget, load_state, save_state
from capgate.train.recipe import (make_grad_scaler, make_optimizer, make_scheduler, peak_memory, prepare_device,
                                  prepare_model, reset_peak_memory, resolve_amp, total_steps)

__all__ = ["fit", "METRICS_COLUMNS", "run_peak_memory"]

log = logging.getLogger(__name__)

METRICS_COLUMNS = ("epoch", "steps", "images", "loss", "lr", "seconds")


def run_peak_memory(history: list[EpochStats]) -> int | None:
    """The CUDA peak bytes of a whole fit (its last epoch's running peak); None off CUDA."""
    peaks = [s.peak_mem_bytes for s in history if s.peak_mem_bytes is not None]
    return max(peaks) if peaks else None


def fit(model: torch.nn.Module, batches: Callable[[], Iterable[Any]], steps_per_epoch: int, recipe: Recipe,
        device: torch.device, loss_fn: Callable[..., Any], metrics_csv: Path | None = None,
        state: Path | StateTarget | None = None, generator: torch.Generator | None = None,
        ) -> list[EpochStats]:
    """Train ``model`` in place under ``recipe``; ``batches()`` yields one epoch's batches.

    Runs ``recipe.epochs`` epochs, or exactly ``recipe.steps`` optimizer steps when set (epochs
    then repeat as needed). Appends one row per epoch to ``metrics_csv``. Non-finite losses
    raise :class:`~capgate.errors.DivergedError` (from :func:`train_one_epoch`). ``state`` saves
    (and resumes from) the training state every epoch; ``generator`` is the data generator
    ``batches`` draws from, whose state is saved with it.
    """
    device = torch.device(device)
    prepare_device(device)
    prepare_model(model, recipe, device)
    amp_dtype = resolve_amp(recipe.amp, device)
    scaler = make_grad_scaler(amp_dtype, device)
    if recipe.channels_last:
        loss_fn = functools.partial(loss_fn, channels_last=True)
    reset_peak_memory(device)
    opt = make_optimizer(list(model.parameters()), recipe)
    steps = total_steps(recipe, steps_per_epoch)
    sched = make_scheduler(opt, recipe, steps)
    history: list[EpochStats] = []
    rows: list[list[Any]] = []
    done, epoch = 0, 0
    if state is not None:
        resumed = load_state(state, model=model, optimizer=opt, scheduler=sched, scaler=scaler, gen=generator,
                             device=device)
        if resumed is not None:
            epoch, done, history, rows = resumed
    writer = None
    fh = None
    if metrics_csv is not None:
        metrics_csv.parent.mkdir(parents=True, exist_ok=True)
        fh = open(metrics_csv, "w", newline="")
        writer = csv.writer(fh)
        writer.writerow(METRICS_COLUMNS)
        writer.writerows(rows)
    try:
        while done < steps:
            epoch += 1
            lr = opt.param_groups[0]["lr"]
            epoch_batches = pinned_batches(batches()) if device.type == "cuda" else batches()
            stats = train_one_epoch(model, epoch_batches, opt, sched, device, loss_fn=loss_fn,
                                    grad_clip=recipe.grad_clip, max_steps=steps - done,
                                    amp_dtype=amp_dtype, scaler=scaler)
            stats = dataclasses.replace(stats, peak_mem_bytes=peak_memory(device))
            if stats.steps == 0:
                break
            done += stats.steps
            history.append(stats)
            log.info("epoch %d: loss %.4f (%d steps, %d of %d, %.1fs)", epoch, stats.loss, stats.steps, done, steps,
                     stats.seconds)
            rows.append([epoch, done, stats.images, f"{stats.loss:.6g}", f"{lr:.6g}", f"{stats.seconds:.3f}"])
            if writer is not None:
                writer.writerow(rows[-1])
                fh.flush()
            if state is not None:
                save_state(state, model=model, optimizer=opt, scheduler=sched, scaler=scaler, gen=generator,
                           epoch=epoch, steps=done, history=history, rows=rows)
    finally:
        if fh is not None:
            fh.close()
    return history
