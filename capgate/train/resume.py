"""Per-epoch training state, so that a killed or preempted run resumes where it stopped.

After every epoch :func:`capgate.train.fit.fit` saves one file, ``train_state.pt``: the model's,
optimizer's, scheduler's and grad scaler's state dicts, every random state training draws from
(python's ``random``, numpy's global RNG, torch's global CPU RNG, the CUDA RNGs, and the data
generator that orders and augments batches), the epoch and optimizer-step counters and the
per-epoch history. A fit that finds the file loads it and continues from the next epoch, so on
CPU a run killed after epoch k and resumed ends with bitwise the same weights and metrics as an
uninterrupted run (``tests/test_train_resume.py``). A kill mid-epoch loses only that epoch.

The target is a local :class:`~pathlib.Path` (written atomically) or any object with
``read_bytes()`` (raising ``FileNotFoundError`` when absent) and ``write_bytes(data)``, such
as a :class:`capgate.store.location.Location` on object storage.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from capgate.store.atomic import atomic_write_bytes

if TYPE_CHECKING:
    import torch

    from capgate.train.loop import EpochStats

__all__ = ["STATE_NAME", "StateTarget", "save_state", "load_state"]

log = logging.getLogger(__name__)

#: File name of the per-epoch training state inside a run's or a stage's folder.
STATE_NAME = "train_state.pt"


class StateTarget(Protocol):
    def read_bytes(self) -> bytes: ...

    def write_bytes(self, data: bytes) -> Any: ...


def _rng_states(gen: torch.Generator | None) -> dict[str, Any]:
    import numpy as np
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    # plain python values, so the state loads with weights_only=True (no pickled numpy objects)
    numpy_state = [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "generator": gen.get_state() if gen is not None else None}


def _set_rng_states(states: dict[str, Any], gen: torch.Generator | None) -> None:
    import numpy as np
    import torch

    random.setstate(states["python"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if gen is not None and states["generator"] is not None:
        gen.set_state(states["generator"])


def save_state(target: Path | StateTarget, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: Any, scaler: Any, gen: torch.Generator | None, epoch: int, steps: int,
               history: list[EpochStats], rows: list[list[Any]]) -> None:
    """Write the training state after ``epoch`` (``steps`` optimizer steps done; ``rows`` the
    metrics CSV rows so far) to ``target``."""
    import torch

    state = {"epoch": epoch, "steps": steps, "history": [dataclasses.asdict(s) for s in history], "rows": rows,
             "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict() if scheduler is not None else None,
             "scaler": scaler.state_dict() if scaler is not None else None, "rng": _rng_states(gen)}
    buf = io.BytesIO()
    torch.save(state, buf)
    if isinstance(target, Path):
        atomic_write_bytes(target, buf.getvalue())
    else:
        target.write_bytes(buf.getvalue())


def load_state(target: Path | StateTarget, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: Any, scaler: Any, gen: torch.Generator | None, device: torch.device,
               ) -> tuple[int, int, list[EpochStats], list[list[Any]]] | None:
    """Load a saved state into the given objects; ``(epoch, steps, history, rows)`` or None when there is
    none (or it is unreadable: the fit then starts from the beginning, and says so)."""
    import torch

    from capgate.train.loop import EpochStats

    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return None
    try:
        # tensors and plain python values only: a file from a shared store cannot run code on load
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        rng["torch"] = rng["torch"].cpu()
        rng["cuda"] = [s.cpu() for s in rng["cuda"]]
        if rng["generator"] is not None:
            rng["generator"] = rng["generator"].cpu()
        _set_rng_states(rng, gen)
    except Exception as exc:  # a torn or foreign file: train from the start rather than fail
        log.warning("training state %s is unreadable (%s); training starts from epoch 1", target, exc)
        return None
    history = [EpochStats(**h) for h in state["history"]]
    log.info("resuming from %s after epoch %d (%d steps)", target, state["epoch"], state["steps"])
    return int(state["epoch"]), int(state["steps"]), history, list(state["rows"])
