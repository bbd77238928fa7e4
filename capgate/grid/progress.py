"""Progress a person can follow: done / running / failed / remaining and an ETA, via logging.

Per epoch: a stage or trial logs ``epoch k: loss L (s steps, d of T, Ns)`` (``train.fit``) into its
log in the store (``<study>/runs/<run_id>/trial.log``, ``<study>/pretrain/<stage_id>/stage.log``).
The driver reads the newest such line of each one in flight every :data:`POLL_SECONDS`
(:class:`EpochWatch`) and logs one line when it advanced, so hours-long stages and trials show a
heartbeat; ``-q`` (warnings only) quiets it like every other progress line. On a terminal the
CLI shows these as one live status line of bars instead (:mod:`capgate.grid.live`).

The grid's ETA counts each running trial's remaining epochs at its own pace plus its evaluation after
the last epoch (eval sets, COCO eval): the mean measured on finished trials (from the poll that saw
their last epoch to their end, so short by up to one poll), else one epoch of the running trials'
mean pace as a floor. It never reads 0s while anything runs: a trial evaluating longer than expected
has an unknown remainder, and when only such trials are left the ETA reads ``finishing``. A stage's
or trial's own line reads ``evaluating`` instead of ``ETA 0s`` after its last epoch.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray.tune import Callback

from capgate.grid.live import bar, finished, live_extra

__all__ = ["GridProgress", "format_eta", "FINISHING", "EVALUATING", "EpochProgress", "parse_epoch", "format_epoch", "EpochWatch",
           "POLL_SECONDS", "stage_watch", "STAGE_LOG"]

#: A pretraining stage's log, in its folder ``<study>/pretrain/<stage_id>/`` of the store.
STAGE_LOG = "stage.log"
#: How often the driver reads the logs of the stages and trials in flight.
POLL_SECONDS = 10.0
#: The grid's ETA when only trials past their expected end are left (their remainder is unknown).
FINISHING = "finishing"
#: A stage's or trial's ETA after its last epoch: it evaluates (held-out score, eval sets).
EVALUATING = "evaluating"
_EPOCH = re.compile(r"epoch (\d+): loss (\S+) \((\d+) steps, (\d+) of (\d+), ([\d.]+)s\)")

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


@dataclass(frozen=True)
class EpochProgress:
    """The newest epoch line of a log: epoch number, its mean loss, optimizer steps done of the
    total, and the epoch's seconds."""

    epoch: int
    loss: float
    done: int
    total: int
    seconds: float

    @property
    def epochs(self) -> int:
        """Epochs of the whole fit (steps per epoch from the epochs so far)."""
        return max(self.epoch, math.ceil(self.total * self.epoch / self.done)) if self.done else self.epoch

    @property
    def remaining_seconds(self) -> float:
        """Seconds left at the last epoch's pace."""
        per_step = self.seconds / max(1, self.done / self.epoch)
        return max(0, self.total - self.done) * per_step

    @property
    def fitted(self) -> bool:
        """The fit's last step is done: what is left is evaluation."""
        return self.done >= self.total

    def eta_words(self) -> str:
        """``ETA 1m00s`` while it trains, :data:`EVALUATING` after its last epoch (never ``ETA 0s``)."""
        return EVALUATING if self.fitted else f"ETA {format_eta(self.remaining_seconds)}"


def parse_epoch(text: str) -> EpochProgress | None:
    """The last ``epoch k: loss ...`` line of a log (``train.fit``'s format), or None."""
    found = None
    for m in _EPOCH.finditer(text):
        found = m
    if found is None:
        return None
    e, loss, _, done, total, secs = found.groups()
    return EpochProgress(int(e), float(loss), int(done), int(total), float(secs))


def format_epoch(what: str, p: EpochProgress, where: str | None = None) -> str:
    """``[grid] stage imagenet (efficientnet/B-3): epoch 3/8 (38%), loss 1.2345, 12.0s/epoch, ETA 1m00s | log P``."""
    line = (f"[grid] {what}: epoch {p.epoch}/{p.epochs} ({100 * min(p.done, p.total) // max(1, p.total)}%), "
            f"loss {p.loss:.4g}, {p.seconds:.1f}s/epoch, {p.eta_words()}")
    return line + (f" | log {where}" if where else "")


class EpochWatch:
    """Logs a line each time a watched log (a stage's or a trial's, in the store) shows a new epoch.

    ``read(target)`` returns the log's text (``Location.read_text``; a missing file is no
    progress yet). :meth:`poll` reads at most every ``interval`` seconds (``clock`` is
    ``time.monotonic`` unless a test passes its own); ``seen[key]`` is when its newest epoch was first read."""

    def __init__(self, interval: float | None = None, echo: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = POLL_SECONDS if interval is None else interval
        self.echo, self.clock = echo, clock  # None: the log (a live bar on a terminal)
        self.watched: dict[str, tuple[str, Any]] = {}
        self.latest: dict[str, EpochProgress] = {}
        self.seen: dict[str, float] = {}
        self.last_poll = -math.inf

    def watch(self, key: str, what: str, target: Any) -> None:
        self.watched[key] = (what, target)

    def forget(self, key: str) -> None:
        self.watched.pop(key, None)
        self.latest.pop(key, None)
        self.seen.pop(key, None)
        finished(key)

    def _read(self, key: str) -> str | None:
        what, target = self.watched[key]
        try:
            p = parse_epoch(target.read_text())
        except (OSError, UnicodeDecodeError):  # not written yet, or mid-upload: no progress to show
            return None
        if p is None or (key in self.latest and p.epoch <= self.latest[key].epoch):
            return None
        self.latest[key] = p
        self.seen[key] = self.clock()
        line = format_epoch(what, p, str(target))
        if self.echo is None:  # on a terminal (grid.live) a bar on the status line, else this line
            short = bar(what.split(" (")[0], min(p.done, p.total) / max(1, p.total),
                        f"{p.epoch}/{p.epochs} {p.eta_words()}")
            log.info(line, extra=live_extra(key, short))
        else:
            self.echo(line)
        return line

    def poll(self) -> list[str]:
        """Read every watched log (when ``interval`` has passed) and log the ones that advanced."""
        now = self.clock()
        if now - self.last_poll < self.interval:
            return []
        self.last_poll = now
        return [line for key in list(self.watched) if (line := self._read(key)) is not None]

    def final(self, key: str) -> str | None:
        """Read one log a last time (its last epoch, if not shown yet), then stop watching it."""
        line = self._read(key) if key in self.watched else None
        self.forget(key)
        return line


def stage_watch(stages: list[Any], pretrain: Any) -> EpochWatch:
    """An :class:`EpochWatch` of the ``stages`` (PretrainSpecs) about to train, whose logs are
    ``pretrain / <stage_id> / stage.log``; logs where each log is."""
    watch = EpochWatch()
    for s in stages:
        target = pretrain / s.stage_id / STAGE_LOG
        watch.watch(s.stage_id, f"stage {s.name} {s.stage_id} ({s.family}/{s.rung})", target)
        log.info("[grid] stage %s %s (%s/%s) | log %s", s.name, s.stage_id, s.family, s.rung, target)
    return watch


class GridProgress(Callback):
    """A Tune callback counting trials by state and logging a line on every start and finish.

    ``total`` counts the trials of this invocation (runs already stored are reported once at
    the start and not counted again). ``slots`` is the number of trials that can run at once,
    for the ETA. With ``runs`` (the RunSpecs of the trials) and ``store``, a trial's start names
    its ``trial.log`` in the store and an :class:`EpochWatch` logs its epochs.
    """

    def __init__(self, total: int, slots: int, skipped: int = 0, runs: list[Any] | None = None,
                 store: Any = None, watch: EpochWatch | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.slots, self.skipped = total, max(1, slots), skipped
        self.clock = clock  # the watch's clock too: its ``seen`` times are compared with it
        self.t0 = clock()
        self.running: dict[str, float] = {}
        self.run_of: dict[str, str] = {}  # trial id -> run id
        self.labels = {r.run_id: f"{r.family}/{r.rung} {r.init} seed {r.seed}" for r in runs or ()}
        self.store = store
        self.watch = watch or EpochWatch(clock=clock)
        self.durations: list[float] = []
        self.eval_seconds: list[float] = []  # finished trials: from their last epoch seen to their end
        self.statuses: dict[str, int] = {"ok": 0, "diverged": 0, "failed": 0}
        self.errored = 0  # trials Ray itself lost (worker or node died) after all retries

    @property
    def done(self) -> int:
        return sum(self.statuses.values()) + self.errored

    def _progress(self, trial_id: str) -> EpochProgress | None:
        return self.watch.latest.get(self.run_of.get(trial_id, ""))

    def eval_guess(self) -> float | None:
        """Seconds a trial evaluates after its last epoch: the mean measured on finished trials, else
        one epoch at the running trials' mean pace (a floor), else None."""
        if self.eval_seconds:
            return sum(self.eval_seconds) / len(self.eval_seconds)
        paces = [p.seconds for t in self.running if (p := self._progress(t)) is not None]
        return sum(paces) / len(paces) if paces else None

    def _left(self, trial_id: str, started: float, mean: float | None, now: float) -> float | None:
        """A running trial's seconds left: its epochs left at its own pace plus its evaluation, else
        the mean's rest. None (unknown) once it has run longer than expected: past the mean without
        an epoch line, or evaluating longer than :meth:`eval_guess`."""
        p = self._progress(trial_id)
        if p is None:
            rest = None if mean is None else mean - (now - started)
        else:
            evaluation = self.eval_guess() or 0.0
            if not p.fitted:
                return p.remaining_seconds + evaluation
            rest = evaluation - (now - self.watch.seen.get(self.run_of[trial_id], now))
        return rest if rest is not None and rest > 0 else None

    def _estimate(self) -> tuple[float | None, bool]:
        """``(seconds left, whether any pace is known)``: the slowest running trial's time left, or
        all the work left spread over the slots if longer."""
        now = self.clock()
        mean = sum(self.durations) / len(self.durations) if self.durations else None
        left = {t: self._left(t, s, mean, now) for t, s in self.running.items()}
        known = [x for x in left.values() if x is not None]
        if mean is None:  # no trial finished: a run's whole duration from the epochs seen so far (at
            # least its time so far where its remainder is unknown)
            paces = [now - self.running[t] + (x or 0.0) for t, x in left.items()
                     if x is not None or self._progress(t) is not None]
            mean = sum(paces) / len(paces) if paces else None
        if mean is None:
            return None, False
        queued = max(0, self.total - self.done - len(self.running))
        return max(max(known, default=0.0), (queued * mean + sum(known)) / self.slots), True

    def eta(self) -> float | None:
        """Seconds left; None before anything has a pace (``?``) and while anything runs with under
        a second estimated (:data:`FINISHING`): never 0 while a trial trains or evaluates."""
        eta, _ = self._estimate()
        return None if eta is None or (eta < 1 and self.running) else eta

    def eta_text(self) -> str:
        """``1m05s``, :data:`FINISHING` (only trials past their expected end are left) or ``?``."""
        eta, paced = self._estimate()
        if eta is not None and (eta >= 1 or not self.running):
            return format_eta(eta)
        return FINISHING if paced else "?"

    def line(self) -> str:
        failed = self.statuses["failed"] + self.errored
        return (f"[grid] done {self.done}/{self.total} (ok {self.statuses['ok']}, diverged "
                f"{self.statuses['diverged']}, failed {failed}) | running {len(self.running)} | "
                f"remaining {self.total - self.done} | elapsed {format_eta(self.clock() - self.t0)} | "
                f"ETA {self.eta_text()}")

    def _started(self, trial: Any) -> None:
        self.running[trial.trial_id] = self.clock()
        rid = (getattr(trial, "config", None) or {}).get("run")
        if rid is None or self.store is None:
            return
        self.run_of[trial.trial_id] = rid
        path = self.store.runs / rid / "trial.log"
        self.watch.watch(rid, f"run {rid} ({self.labels.get(rid, '?')})", path)
        log.info("[grid] run %s (%s) started | log %s", rid, self.labels.get(rid, "?"), path)

    def _ended(self, trial: Any, measure: bool = False) -> float | None:
        """Stop following a trial; ``measure``: it finished, so the time since its last epoch (when
        that was seen) is a measured evaluation. Returns when it started."""
        rid = self.run_of.pop(trial.trial_id, "")
        p, seen = self.watch.latest.get(rid), self.watch.seen.get(rid)
        if measure and p is not None and p.fitted and seen is not None:
            self.eval_seconds.append(self.clock() - seen)
        self.watch.forget(rid)
        return self.running.pop(trial.trial_id, None)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._started(trial)

    def on_trial_restore(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._started(trial)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.watch.poll()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        status = result.get("status")
        if status in self.statuses:
            self.statuses[status] += 1
            start = self._ended(trial, measure=True)
            self.durations.append(float(result.get("busy_seconds") or
                                        (self.clock() - start if start else 0.0)))
            log.info("%s | %s %s seed %s -> %s%s", self.line(), result.get("backbone", "?"),
                     result.get("init", "?"), result.get("seed", "?"), status,
                     "" if result.get("skipped") is not True else " (already stored)")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial)
        self.errored += 1
        log.warning("%s | trial %s lost after its retries: %s", self.line(), trial.trial_id,
                    (getattr(trial, "error_msg", None) or "see the Tune error file").splitlines()[0][:300])
