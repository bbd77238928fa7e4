"""How the driver runs one Tune experiment: short trial names, Tune's SIGINT handler and default
per-trial loggers off, and the memory a finished experiment freed handed back to the OS.

Runs in the driver; imports neither torch nor timm (Tune's TensorBoard logger would, through
tensorboardX: it is one of the loggers turned off here).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
from typing import Any

__all__ = ["fit", "release_freed_memory", "trial_name"]


class _NoTuneFiles(logging.Filter):
    """Drops Tune's 'Failed to fetch metrics' warning: capgate turns off Tune's per-trial result
    files (the store holds every result), so its result grid finds none to read."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to fetch metrics")


def trial_name(trial: Any) -> str:
    """Short trial names (Tune's default puts the whole run spec into the folder name)."""
    return f"trial_{trial.trial_id}"


def fit(tuner: Any) -> Any:
    """``tuner.fit()`` with Tune's own SIGINT handler off (it would stop quietly and print a
    ``Tuner.restore(...)`` hint; without it Ctrl-C raises KeyboardInterrupt, which run_grid turns
    into GridInterrupted) and Tune's default per-trial CSV/JSON/TensorBoard loggers off (the store
    holds every result; the TensorBoard one would import torch, through tensorboardX)."""
    settings = {"TUNE_DISABLE_SIGINT_HANDLER": "1", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    previous = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    quiet = _NoTuneFiles()  # without those files Tune's result grid warns once per trial
    logging.getLogger("ray.tune.analysis.experiment_analysis").addFilter(quiet)
    try:
        return tuner.fit()
    finally:
        logging.getLogger("ray.tune.analysis.experiment_analysis").removeFilter(quiet)
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def release_freed_memory() -> None:
    """Hand the memory a finished Tune experiment freed back to the OS: glibc keeps freed heap
    pages mapped, so without this the driver's RSS would creep up by each experiment's scattered
    leftovers and the results-table phase would start from the trial phase's high-water mark.
    A no-op where there is no glibc."""
    gc.collect()  # Tune's trials sit in reference cycles
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
