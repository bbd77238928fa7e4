"""Progress a person can follow: done / running / failed / remaining and an ETA, via logging."""

from __future__ import annotations

import logging
import time
from typing import Any

from ray.tune import Callback

__all__ = ["GridProgress", "format_eta"]

log = logging.getLogger("capgate.grid")


def format_eta(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s`` or ``?``."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class GridProgress(Callback):
    """A Tune callback counting trials by state and logging a line on every start and finish.

    ``total`` counts the trials of this invocation (runs already stored are reported once at
    the start and not counted again). ``slots`` is the number of trials that can run at once,
    for the ETA (remaining x mean trial seconds / slots).
    """

    def __init__(self, total: int, slots: int, skipped: int = 0) -> None:
        self.total, self.slots, self.skipped = total, max(1, slots), skipped
        self.t0 = time.monotonic()
        self.running: dict[str, float] = {}
        self.durations: list[float] = []
        self.statuses: dict[str, int] = {"ok": 0, "diverged": 0, "failed": 0}
        self.errored = 0  # trials Ray itself lost (worker or node died) after all retries

    @property
    def done(self) -> int:
        return sum(self.statuses.values()) + self.errored

    def eta(self) -> float | None:
        if not self.durations:
            return None
        remaining = self.total - self.done
        mean = sum(self.durations) / len(self.durations)
        in_flight = sum(min(mean, time.monotonic() - t) for t in self.running.values())
        return max(0.0, (remaining * mean - in_flight) / self.slots)

    def line(self) -> str:
        failed = self.statuses["failed"] + self.errored
        return (f"[grid] done {self.done}/{self.total} (ok {self.statuses['ok']}, diverged "
                f"{self.statuses['diverged']}, failed {failed}) | running {len(self.running)} | "
                f"remaining {self.total - self.done} | elapsed {format_eta(time.monotonic() - self.t0)} | "
                f"ETA {format_eta(self.eta())}")

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running[trial.trial_id] = time.monotonic()

    def on_trial_restore(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running[trial.trial_id] = time.monotonic()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        status = result.get("status")
        if status in self.statuses:
            self.statuses[status] += 1
            start = self.running.pop(trial.trial_id, None)
            self.durations.append(float(result.get("busy_seconds") or
                                        (time.monotonic() - start if start else 0.0)))
            log.info("%s | %s %s seed %s -> %s%s", self.line(), result.get("backbone", "?"),
                     result.get("init", "?"), result.get("seed", "?"), status,
                     "" if result.get("skipped") is not True else " (already stored)")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.pop(trial.trial_id, None)
        self.errored += 1
        log.warning("%s | trial %s lost after its retries: %s", self.line(), trial.trial_id,
                    (getattr(trial, "error_msg", None) or "see the Tune error file").splitlines()[0][:300])
