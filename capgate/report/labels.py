"""Readable labels and the display order of design factors (shared by figures and tables)."""

from __future__ import annotations

from capgate.schema import SHIFTS

__all__ = ["pair_label", "shift_order"]


def pair_label(train_set: str, eval_set: str) -> str:
    """``llvip/rgb`` -> ``flir/rgb`` as one readable label (``train → eval``)."""
    return f"{train_set} → {eval_set}"


def shift_order(shift: str) -> int:
    """Sort key putting the known shifts in design order (in-domain first), unknown ones last."""
    return SHIFTS.index(shift) if shift in SHIFTS else len(SHIFTS)
