"""Collecting data problems, refusing paths that escape a dataset root, and checking boxes.

Readers collect every problem they find into a :class:`ProblemLog` instead of stopping at
the first; a reader then raises one :class:`~capgate.errors.DataError` listing them, and
``verify`` reports them all. Each problem names the file, what is wrong and the fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from capgate.errors import DataError

__all__ = ["Problem", "ProblemLog", "safe_join", "check_boxes", "BoxCheck", "log_dropped"]

log = logging.getLogger(__name__)

# Boxes overshooting the image by at most this many pixels (rounding in real annotation
# tools) are clipped and counted instead of being called invalid.
CLIP_TOLERANCE_PX = 1.0
_MAX_LISTED = 10


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: the file, what is wrong, and how to fix it."""

    file: str
    problem: str
    fix: str
    kind: str = "error"

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}" + (f"; fix: {self.fix}" if self.fix else "")


@dataclass
class ProblemLog:
    """An ordered list of problems; ``raise_if_any`` turns them into one DataError."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, file: Path | str, problem: str, fix: str, kind: str = "error") -> None:
        self.problems.append(Problem(str(file), problem, fix, kind))

    def __len__(self) -> int:
        return len(self.problems)

    def __bool__(self) -> bool:
        return bool(self.problems)

    @property
    def errors(self) -> list[Problem]:
        """Problems that make the data unusable (dropped boxes are only reported)."""
        return [p for p in self.problems if p.kind == "error"]

    def raise_if_any(self, what: str) -> None:
        """Raise a DataError naming ``what`` and listing the first errors, if there are any."""
        errors = self.errors
        if not errors:
            return
        n = len(errors)
        lines = [str(p) for p in errors[:_MAX_LISTED]]
        more = f"\n  ... and {n - _MAX_LISTED} more (run `capgate data verify` to list all)" if n > _MAX_LISTED else ""
        raise DataError(f"{what}: {n} problem(s):\n  " + "\n  ".join(lines) + more)


def safe_join(root: Path, rel: str, source: Path | str, problems: ProblemLog) -> Path | None:
    """``root / rel`` if ``rel`` is a relative path that stays inside ``root``, else log a problem
    (naming ``source``, the file that contained ``rel``) and return None."""
    if not isinstance(rel, str) or not rel:
        problems.add(source, f"image path {rel!r} is empty or not a string", "give a relative path under the dataset root")
        return None
    posix, win = PurePosixPath(rel), PureWindowsPath(rel)
    if posix.is_absolute() or win.is_absolute() or win.drive:
        problems.add(
            source,
            f"image path {rel!r} is absolute; absolute paths are refused",
            f"make it relative to {root}",
        )
        return None
    parts = rel.replace("\\", "/").split("/")
    depth = 0
    for part in parts:
        if part == "..":
            depth -= 1
        elif part not in ("", "."):
            depth += 1
        if depth < 0:
            problems.add(
                source,
                f"image path {rel!r} escapes the dataset root {root} ('..'); such paths are refused",
                "keep images inside the dataset root and use paths relative to it",
            )
            return None
    return root.joinpath(*[p for p in parts if p not in ("", ".")])


@dataclass
class BoxCheck:
    """Counts from :func:`check_boxes`, accumulated over a dataset and recorded in ``meta``."""

    invalid: int = 0
    dropped: int = 0
    clipped: int = 0
    dropped_by_file: dict[str, int] = field(default_factory=dict)

    def as_meta(self) -> dict[str, Any]:
        return {"invalid_boxes": self.invalid, "dropped_boxes": self.dropped, "clipped_boxes": self.clipped,
                "dropped_by_file": dict(sorted(self.dropped_by_file.items()))}


def check_boxes(
    boxes: np.ndarray,
    width: int,
    height: int,
    source: Path | str,
    problems: ProblemLog,
    counts: BoxCheck,
    drop_invalid: bool,
) -> np.ndarray:
    """Validate ``(N, 4)`` xyxy boxes against the image size; return the keep mask.

    Boxes overshooting the image by at most ``CLIP_TOLERANCE_PX`` are clipped in place.
    Boxes with zero/negative area or outside the image are invalid: counted, and dropped
    when ``drop_invalid`` (logged as a warning problem), otherwise logged as errors.
    """
    keep = np.ones(len(boxes), dtype=bool)
    if len(boxes) == 0:
        return keep
    finite = np.isfinite(boxes).all(axis=1)
    tol = CLIP_TOLERANCE_PX
    lo_ok = (boxes[:, 0] >= -tol) & (boxes[:, 1] >= -tol)
    hi_ok = (boxes[:, 2] <= width + tol) & (boxes[:, 3] <= height + tol)
    inside = finite & lo_ok & hi_ok
    clipped = boxes.copy()
    clipped[:, 0] = np.clip(boxes[:, 0], 0, width)
    clipped[:, 2] = np.clip(boxes[:, 2], 0, width)
    clipped[:, 1] = np.clip(boxes[:, 1], 0, height)
    clipped[:, 3] = np.clip(boxes[:, 3], 0, height)
    changed = inside & (np.abs(clipped - boxes) > 0).any(axis=1)
    counts.clipped += int(changed.sum())
    boxes[inside] = clipped[inside]
    positive = finite & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    for i in np.flatnonzero(~(inside & positive)):
        b = [round(float(v), 2) for v in boxes[i]]
        what = "has zero or negative area" if inside[i] else f"lies outside the {width}x{height} image"
        counts.invalid += 1
        if drop_invalid:
            counts.dropped += 1
            counts.dropped_by_file[str(source)] = counts.dropped_by_file.get(str(source), 0) + 1
            problems.add(source, f"box {b} (xyxy) {what}; dropped", "none needed (drop_invalid=True)", kind="dropped")
        else:
            problems.add(
                source,
                f"box {b} (xyxy) {what}",
                "fix the annotation, or drop such boxes: `capgate data verify --drop-invalid` shows what is "
                "dropped, `drop_invalid: true` on the spec's dataset (drop_invalid=True in Python) drops them",
            )
        keep[i] = False
    return keep


def log_dropped(meta: dict, source: Path | str) -> None:
    """Warn once per dataset about boxes dropped under ``drop_invalid``."""
    if meta.get("dropped_boxes"):
        log.warning("%s: dropped %d invalid box(es) (drop_invalid=True)", source, meta["dropped_boxes"])
