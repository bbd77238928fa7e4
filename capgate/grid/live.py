"""On a terminal, the per-epoch progress of stages and trials is one live status line under the log.

A progress record (``log.info(line, extra=live_extra(key, bar))`` from
:class:`capgate.grid.progress.EpochWatch`) carries the stage or trial it is about and a short bar.
In a log file or a pipe it is an ordinary line. On a terminal, :class:`LiveStatusHandler` (installed
by the CLI when stderr is a TTY) keeps the newest bar of each one in flight on a single bottom line,
redrawn in place; every other record is printed above it as usual. :func:`finished` drops a bar
when its stage or trial ends. Nothing here imports ray or torch.
"""

from __future__ import annotations

import logging
import shutil
import sys
from typing import Any, TextIO

__all__ = ["LIVE_KEY", "LIVE_BAR", "live_extra", "bar", "LiveStatusHandler", "use_live_status", "finished"]

#: Log-record attributes of a progress record: which stage or trial, and its short bar.
LIVE_KEY = "capgate_live"
LIVE_BAR = "capgate_bar"
_CLEAR = "\r\x1b[K"


def live_extra(key: str, text: str) -> dict[str, str]:
    """The ``extra`` of a progress record."""
    return {LIVE_KEY: key, LIVE_BAR: text}


def bar(label: str, fraction: float, tail: str = "", width: int = 10) -> str:
    """``label [####......] tail``: ``fraction`` (0..1) of ``width`` cells filled (rounded down: a
    bar never shows more than is done)."""
    filled = max(0, min(width, int(fraction * width)))
    return f"{label} [{'#' * filled}{'.' * (width - filled)}]" + (f" {tail}" if tail else "")


class LiveStatusHandler(logging.StreamHandler):
    """A stream handler that shows progress records as one status line redrawn at the bottom."""

    def __init__(self, stream: TextIO | None = None, columns: int | None = None) -> None:
        super().__init__(stream)
        self.status: dict[str, str] = {}
        self.columns = columns
        self.drawn = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._clear()
            key = getattr(record, LIVE_KEY, None)
            if key is None:
                super().emit(record)
            else:
                self.status[key] = getattr(record, LIVE_BAR, "") or record.getMessage()
            self._draw()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)

    def drop(self, key: str) -> None:
        if self.status.pop(key, None) is not None:
            self._clear()
            self._draw()

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write(_CLEAR)
            self.drawn = False

    def _draw(self) -> None:
        if self.status:
            columns = self.columns or shutil.get_terminal_size((100, 20)).columns
            text = " | ".join(self.status.values())
            self.stream.write(text if len(text) < columns else text[:columns - 2] + "…")
            self.drawn = True
        self.flush()


def use_live_status(stream: TextIO | None = None) -> LiveStatusHandler | None:
    """Replace the root logger's stream handler on ``stream`` (stderr) by a :class:`LiveStatusHandler`
    with the same level and format, when that stream is a terminal; returns it (None otherwise)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    root = logging.getLogger()
    for h in list(root.handlers):
        if type(h) is logging.StreamHandler and h.stream is stream:
            live = LiveStatusHandler(stream)
            live.setLevel(h.level)
            live.setFormatter(h.formatter)
            root.removeHandler(h)
            root.addHandler(live)
            return live
    return None


def finished(key: Any) -> None:
    """Drop the live bar of ``key`` (its stage or trial ended) from every live handler."""
    for h in logging.getLogger().handlers:
        if isinstance(h, LiveStatusHandler):
            h.drop(str(key))
