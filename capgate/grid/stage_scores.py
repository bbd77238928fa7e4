"""Did a pretraining stage learn anything? The line the driver logs when a stage is ready, and the gate
that stops a grid before its runs fine-tune from a stage below the spec's ``min_stage_score``.

A stage's held-out score is ``quality`` in its ``stage.json`` (:func:`capgate.train.pretrain.stage_quality`):
a classification stage's top-1 on its corpus's ``val`` split against chance ``1 / classes``, a detection
stage's COCO mAP against chance 0. The rule:

* **AT CHANCE**: score < chance + :data:`AT_CHANCE_MARGIN` of the stage's kind (top-1: 2 pp; mAP: 0.005).
  The ready line is then a WARNING and the grid goes on: runs fine-tuned from such a stage test an
  untrained start. (The report's pretraining section uses a wider "near chance" band,
  :data:`capgate.report.pretraining.NEAR_CHANCE`.)
* **below the minimum**: with ``min_stage_score: {classification: 0.1, detection: 0.02}`` in the spec, a
  stage the runs still to train start from whose score is below its kind's minimum stops the grid before
  any trial (:class:`~capgate.errors.StageScoreError`, exit 1), naming the stage, its score, the minimum
  and the fix.
* A stage without a score (its corpus has no ``val`` split) is said to be unscored and is never refused:
  its score is unknown, not low. A stage given as a ``checkpoint`` file has no score.

Runs in the driver: reads ``stage.json`` files only (local folder or object store), imports neither torch nor ray.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

from capgate.errors import StageScoreError
from capgate.spec.model import PretrainSpec, RunSpec, StudySpec, stages_needed_by
from capgate.store.location import Location

__all__ = ["AT_CHANCE_MARGIN", "StageScore", "stage_score", "ready_line", "log_stage_ready", "weak_stages",
           "refusal_message", "check_stage_scores"]

log = logging.getLogger("capgate.grid")

#: A stage whose held-out score is below chance + this (the metric's own 0..1 units) is AT CHANCE.
AT_CHANCE_MARGIN = {"classification": 0.02, "detection": 0.005}


@dataclass(frozen=True)
class StageScore:
    """One stage's held-out score: ``value`` None when it is unscored (``error`` says why)."""

    stage_id: str
    name: str
    kind: str
    metric: str
    value: float | None
    chance: float
    error: str | None = None

    @property
    def at_chance(self) -> bool:
        """Scored, and below chance + :data:`AT_CHANCE_MARGIN` of its kind."""
        return self.value is not None and self.value < self.chance + AT_CHANCE_MARGIN[self.kind]

    def text(self) -> str:
        """``top1 0.033 vs chance 0.033``, or ``not scored (why)``."""
        if self.value is None:
            return f"{self.metric} not scored ({self.error or 'no held-out split'})"
        return f"{self.metric} {self.value:.3f} vs chance {self.chance:.3g}"


def stage_score(stage: PretrainSpec, info: dict) -> StageScore:
    """The score of ``stage`` from its ``stage.json`` content ``info``; detection's chance is 0."""
    q = info.get("quality") or {}
    chance = q.get("chance")
    metric = q.get("metric") or ("top1" if stage.kind == "classification" else "map")
    return StageScore(stage.stage_id, stage.name, stage.kind, metric,
                      None if q.get("value") is None else float(q["value"]),
                      0.0 if chance is None else float(chance), q.get("error"))


def _read(root: Location, study: str, stage: PretrainSpec) -> StageScore | None:
    """The stored stage's score; None for a checkpoint-file stage or one without ``stage.json``."""
    path = root / study / "pretrain" / stage.stage_id / "stage.json"
    if stage.checkpoint or not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return StageScore(stage.stage_id, stage.name, stage.kind, "?", None, 0.0, f"stage.json unreadable: {exc}")
    return stage_score(stage, info)


def ready_line(stage_id: str, score: StageScore | None, how: str, seconds: float, left: int,
               longer: str = "epochs=N") -> tuple[int, str]:
    """``(logging level, message)`` of the driver's "stage ... ready" line: the score against chance,
    and a WARNING saying AT CHANCE (with the fix, ``recipe.<longer>``) when the stage is at chance."""
    head = f"[grid] stage {stage_id} ready ({how}, {seconds:.1f}s)"
    tail = f" | {left} stages left"
    if score is None:
        return logging.INFO, f"{head}: no stage.json, not scored{tail}"
    if not score.at_chance:
        return logging.INFO, f"{head}: {score.text()}{tail}"
    margin = AT_CHANCE_MARGIN[score.kind]
    return logging.WARNING, (f"{head}: {score.text()}: AT CHANCE (within {margin:g} of chance): runs fine-tuned "
                             f"from it test an untrained start; train it longer (--set pretraining.{score.name}"
                             f".recipe.{longer}){tail}")


def log_stage_ready(root: Location, study: str, stage: PretrainSpec, out: dict, left: int) -> None:
    """Log the :func:`ready_line` of a stage task's result ``out`` (``trained``, ``seconds``)."""
    level, msg = ready_line(stage.stage_id, _read(root, study, stage), "trained" if out["trained"] else "found",
                            out["seconds"], left, "steps=N" if stage.recipe.steps else "epochs=N")
    log.log(level, "%s", msg)


def weak_stages(scores: list[StageScore], minimum: dict[str, float | None]) -> list[tuple[StageScore, float]]:
    """``(score, minimum)`` of each scored stage below its kind's minimum (``minimum[kind]`` None: none)."""
    out = []
    for s in scores:
        lo = minimum.get(s.kind)
        if lo is not None and s.value is not None and s.value < lo:
            out.append((s, lo))
    return out


def refusal_message(weak: list[tuple[StageScore, float]], stages: dict[str, PretrainSpec]) -> str:
    """The :class:`StageScoreError` text: each stage, its score and the minimum, then the two fixes
    (train it longer: twice its epochs or steps; or lower the minimum to at most its score)."""
    lines = [f"{len(weak)} pretraining stage(s) ended below min_stage_score; no run fine-tunes from them:"]
    for s, lo in weak:
        lines.append(f"  {s.stage_id} (pretraining.{s.name}): {s.text()}, below the minimum {lo:g}"
                     + (" (AT CHANCE)" if s.at_chance else ""))
    s, lo = weak[0]
    r = stages[s.stage_id].recipe
    longer = f"steps={2 * r.steps}" if r.steps else f"epochs={2 * r.epochs}"
    lower = math.floor(s.value * 100) / 100
    lines.append(f"fix: train the stage longer (--set pretraining.{s.name}.recipe.{longer}) and rerun, or lower "
                 f"the minimum (--set min_stage_score.{s.kind}={lower:g})")
    return "\n".join(lines)


def check_stage_scores(study: StudySpec, stages: list[PretrainSpec], todo: list[RunSpec], root: Location) -> None:
    """Before the trials: warn once about every stage the ``todo`` runs start from that is AT CHANCE,
    and raise :class:`StageScoreError` when one is below the spec's ``min_stage_score``."""
    scores = [s for s in (_read(root, study.study, st) for st in stages_needed_by(stages, todo)) if s is not None]
    low = [s for s in scores if s.at_chance]
    if low:
        log.warning("[grid] %d of %d pretraining stages the runs start from are AT CHANCE: %s", len(low),
                    len(scores), "; ".join(f"{s.stage_id} {s.text()}" for s in low))
    if study.min_stage_score is None:
        return
    weak = weak_stages(scores, {"classification": study.min_stage_score.classification,
                                "detection": study.min_stage_score.detection})
    if weak:
        raise StageScoreError(refusal_message(weak, {s.stage_id: s for s in stages}))
