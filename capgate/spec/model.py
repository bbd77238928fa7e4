"""Study specs as frozen dataclasses, and their expansion into run and pretraining specs.

A :class:`StudySpec` (validated from YAML by :mod:`capgate.spec.load`) names the task, the
train sets and the eval sets each is scored on (each tagged with its shift), the backbone rungs,
the initializations (chains of pretraining stages, or a local checkpoint), the seeds, the
per-trial resources and ONE training recipe shared by every cell. :func:`expand` turns it into
the frozen :class:`PretrainSpec` and :class:`RunSpec` lists before Ray starts, so ``--dry-run``
needs no data. Every spec round-trips to JSON; ``run_id`` and ``stage_id`` are hashes of it.

Pretraining replicates (``stage_seeds``, default ``[0]``): a pretraining run is itself a random draw,
so each (rung, init) stage chain is trained once per stage seed, every trained stage of replicate
``s`` with seed ``s`` and started from replicate ``s``'s parent (``imagenet_coco``'s COCO stage of
replicate ``s`` starts from the ImageNet stage of replicate ``s``). Fine-tuning seeds are NESTED in
the replicates, never crossed: the run with seed ``i`` starts from replicate
``stage_seeds[i % len(stage_seeds)]`` (:func:`stage_seed_for`), so a study costs the same number of
runs whatever the number of replicates, consecutive seeds spread evenly over them, and the runs of
every init still pair with scratch by seed. Its ``init_stage`` (the replicate's last stage id) is
part of its ``run_id``. A chain whose last stage is a checkpoint file is not replicated (it is one
fixed set of weights). With the default ``[0]`` no id changes: stage seed 0 is what every stage was
trained with before, and a run's ``stage_seed`` enters its JSON only when it is not 0.

Loading and validating YAML is :mod:`capgate.spec.load`'s job (``load_study``); hashing is
:mod:`capgate._hash`'s; dataset roots are :mod:`capgate.data.roots`'. This module imports neither
torch nor ray.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from capgate._hash import canonical_json, short_hash
from capgate.data.roots import SYNTHETIC
from capgate.errors import SpecError
from capgate.models.ladder import Rung, get_rung
from capgate.spec.sections import (AMP_MODES, Adaptive, DatasetRef, EvalSet, InitDef, MinStageScore,  # noqa: F401
                                   Recipe, Resources, StageDef, TrainSet, fields_of)

__all__ = [
    "Recipe",
    "DatasetRef",
    "EvalSet",
    "TrainSet",
    "StageDef",
    "InitDef",
    "Resources",
    "Adaptive",
    "StudySpec",
    "PretrainSpec",
    "RunSpec",
    "expand",
    "stages_needed_by",
    "reseed",
    "stage_seed_for",
    "chain_of",
    "fields_of",
    "SYNTHETIC",
    "AMP_MODES",
    # homes elsewhere, kept importable from here: capgate._hash and capgate.data.roots
    "canonical_json",
    "short_hash",
]

@dataclass(frozen=True)
class StudySpec:
    """A whole validated study.

    ``rung_defs`` holds the definitions (``Rung.to_dict()``) of the spec's own rungs, those a
    fresh process cannot rebuild from the name alone; they travel inside every run spec.
    ``adaptive`` (None: a fixed grid) is how run-grid grows seeds; ``min_stage_score`` (None: no minimum)
    is the score a pretraining stage must reach before runs fine-tune from it; neither is in any run or stage id.
    ``classes`` is the study's class list (``()`` when every train set declares its own); ``train_classes``
    holds each train set's list in ``train_sets`` order, or ``()`` when every one uses ``classes``
    (:mod:`capgate.spec.classes`). A run carries its train set's list (:meth:`classes_of`).
    """

    study: str
    task: str
    classes: tuple[str, ...]
    class_map: Any  # a data class-map preset name or {target: [source names]}, or None
    world: dict[str, Any]
    train_sets: tuple[TrainSet, ...]
    rungs: tuple[tuple[str, str], ...]  # (family, rung name)
    inits: tuple[InitDef, ...]
    stages: tuple[StageDef, ...]
    seeds: tuple[int, ...]
    recipe: Recipe
    resources: Resources
    stage_resources: Resources
    rung_defs: dict[str, dict[str, Any]] = field(default_factory=dict)
    adaptive: Adaptive | None = None
    stage_seeds: tuple[int, ...] = (0,)  # pretraining replicates (see the module doc)
    min_stage_score: MinStageScore | None = None
    train_classes: tuple[tuple[str, ...], ...] = ()

    def classes_of(self, index: int) -> tuple[str, ...]:
        """The class list of train set ``train_sets[index]``: its own, else the study's."""
        return self.train_classes[index] if self.train_classes else self.classes


def _rung_of(name: str, rung_def: dict[str, Any] | None) -> Rung:
    return Rung.from_dict(rung_def) if rung_def is not None else get_rung(name)


#: Fields added after capgate 0.1 whose default reproduces the old behaviour: left out of a spec's
#: JSON while at that default, so adding them changed no run_id or stage_id (stores stay valid).
_NEUTRAL_DEFAULTS: dict[str, dict[str, Any]] = {
    "Recipe": {"amp": "off", "channels_last": False, "memory_budget_mb": None, "grayscale": 0.0},
    "DatasetRef": {"drop_invalid": False},
    "RunSpec": {"rung_def": None},
    "PretrainSpec": {"rung_def": None},
}


def _plain(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        neutral = {**_NEUTRAL_DEFAULTS.get(type(obj).__name__, {}), **getattr(obj, "_implied", dict)()}
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)
                if not (f.name in neutral and getattr(obj, f.name) == neutral[f.name])}
    if isinstance(obj, (list, tuple)):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _to_dict(obj: Any) -> dict[str, Any]:
    """A spec as plain JSON-able data (tuples become lists); fields at a neutral default
    (:data:`_NEUTRAL_DEFAULTS`) are left out, so the ids of existing runs do not depend on them."""
    return json.loads(canonical_json(_plain(obj)))


def _dataset(d: dict[str, Any] | None) -> DatasetRef | None:
    return None if d is None else DatasetRef(**d)


@dataclass(frozen=True)
class PretrainSpec:
    """One pretraining stage for one rung; ``parent`` is the stage it starts from (or None).

    ``stage_id`` is a content hash of everything that determines the checkpoint (the stage's
    kind, corpus, recipe, rung, world and parent stage id).
    """

    name: str
    kind: str
    family: str
    rung: str
    data: DatasetRef | None
    recipe: Recipe
    world: dict[str, Any]
    parent: str | None
    checkpoint: str | None = None
    seed: int = 0
    rung_def: dict[str, Any] | None = None

    @property
    def stage_id(self) -> str:
        return f"{self.name}-{self.rung}-{short_hash(self.to_dict())}"

    def build_rung(self) -> Rung:
        """The stage's rung, from its own definition when it carries one."""
        return _rung_of(self.rung, self.rung_def)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainSpec:
        d = dict(d)
        d["data"] = _dataset(d.get("data"))
        d["recipe"] = Recipe(**d["recipe"])
        return cls(**d)


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one trained model: the ``run_id`` is a hash of it (seed
    included). Resources and storage are not part of it: they do not change the result."""

    study: str
    task: str
    classes: tuple[str, ...]
    class_map: Any
    family: str
    rung: str
    init: str
    init_stage: str | None  # stage_id of the last pretraining stage, if any
    init_checkpoint: str | None
    train_set: TrainSet
    recipe: Recipe
    world: dict[str, Any]
    seed: int
    rung_def: dict[str, Any] | None = None  # set for a spec's own rungs (see StudySpec.rung_defs)
    #: The pretraining replicate (stage seed) of the chain the run starts from: an int when ``init_stage``
    #: is set (0 when not given), None otherwise. Left out of the JSON at 0, so ids made before
    #: replicates existed stay valid.
    stage_seed: int | None = None

    def __post_init__(self) -> None:
        if self.init_stage is not None and self.stage_seed is None:
            object.__setattr__(self, "stage_seed", 0)
        assert self.init_stage is not None or self.stage_seed is None, "a stage seed without a stage chain"

    def _implied(self) -> dict[str, Any]:
        """The ``stage_seed`` a spec without that key means (left out of the JSON)."""
        return {"stage_seed": 0 if self.init_stage is not None else None}

    @property
    def run_id(self) -> str:
        return short_hash(self.to_dict(), 16)

    @property
    def spec_hash(self) -> str:
        """Hash of the run spec without its seed: the cell all seeds of a run share."""
        d = self.to_dict()
        d.pop("seed")
        return short_hash(d, 16)

    @property
    def uses_world(self) -> bool:
        """True when a train or eval split lies in the synthetic world."""
        return any(d.root == SYNTHETIC for d in self.train_set.datasets)

    def build_rung(self) -> Rung:
        """The run's rung, from its own definition when it carries one (so a Ray worker on
        another node builds a rung only the driver registered)."""
        return _rung_of(self.rung, self.rung_def)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = dict(d)
        ts = d["train_set"]
        d["train_set"] = TrainSet(
            name=ts["name"], data=DatasetRef(**ts["data"]),
            evals=tuple(EvalSet(name=e["name"], data=DatasetRef(**e["data"]), shift=e["shift"])
                        for e in ts["evals"]))
        d["recipe"] = Recipe(**d["recipe"])
        d["classes"] = tuple(d["classes"])
        return cls(**d)  # a missing stage_seed is implied by __post_init__

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        return cls.from_dict(json.loads(text))


def stage_seed_for(seed: int, stage_seeds: tuple[int, ...]) -> int:
    """The stage seed of the replicate a fine-tuning ``seed`` starts from: ``stage_seeds[seed % k]``."""
    return stage_seeds[seed % len(stage_seeds)]


def _replicated(study: StudySpec, init: InitDef) -> bool:
    """True when the init's weights come from a stage capgate trains (its last stage is no file)."""
    stage_defs = {s.name: s for s in study.stages}
    return bool(init.stages) and not stage_defs[init.stages[-1]].checkpoint


def chain_of(study: StudySpec, family: str, rung: str, init: InitDef, stage_seed: int) -> list[PretrainSpec]:
    """The stage chain of one (rung, init) for one replicate, parents first (empty for scratch or a
    checkpoint init). Trained stages carry ``stage_seed``; a stage given as a checkpoint file keeps seed 0."""
    stage_defs = {s.name: s for s in study.stages}
    rung_def = study.rung_defs.get(rung)
    chain: list[PretrainSpec] = []
    parent: str | None = None
    for sname in init.stages:
        sd = stage_defs[sname]
        world = study.world if sd.data and sd.data.root == SYNTHETIC else {}
        ps = PretrainSpec(name=sname, kind=sd.kind, family=family, rung=rung, data=sd.data, recipe=sd.recipe,
                          world=world, parent=parent,
                          checkpoint=sd.checkpoint.replace("{rung}", rung) if sd.checkpoint else None,
                          seed=0 if sd.checkpoint else stage_seed, rung_def=rung_def)
        chain.append(ps)
        parent = ps.stage_id
    return chain


def reseed(study: StudySpec, run: RunSpec, seed: int) -> RunSpec:
    """``run`` with another fine-tuning seed, started from that seed's replicate (:func:`stage_seed_for`);
    the adaptive loop's new seeds are made this way."""
    init = next(i for i in study.inits if i.name == run.init)
    if not _replicated(study, init):
        return replace(run, seed=seed)
    ss = stage_seed_for(seed, study.stage_seeds)
    chain = chain_of(study, run.family, run.rung, init, ss)
    return replace(run, seed=seed, init_stage=chain[-1].stage_id, stage_seed=ss)


def expand(study: StudySpec) -> tuple[list[PretrainSpec], list[RunSpec]]:
    """All pretraining stages (deduplicated, parents before children) and all runs.

    Runs are ordered train set > rung > init > seed; stages by chain position, so a stage's
    parent always comes earlier in the list. Each (rung, init) chain is expanded once per stage seed
    and each seed's run starts from its replicate (see the module doc).
    """
    stages: dict[str, PretrainSpec] = {}
    runs: list[RunSpec] = []
    for t, ts in enumerate(study.train_sets):
        for fam, rung in study.rungs:
            rung_def = study.rung_defs.get(rung)
            for init in study.inits:
                replicated = _replicated(study, init)
                ends: dict[int, str | None] = {}
                for ss in (study.stage_seeds if replicated else (0,)):
                    chain = chain_of(study, fam, rung, init, ss)
                    for ps in chain:
                        stages.setdefault(ps.stage_id, ps)
                    ends[ss] = chain[-1].stage_id if chain else None
                for seed in study.seeds:
                    ss = stage_seed_for(seed, study.stage_seeds) if replicated else 0
                    runs.append(RunSpec(
                        study=study.study, task=study.task, classes=study.classes_of(t),
                        class_map=study.class_map, family=fam,
                        rung=rung, init=init.name, init_stage=ends[ss], init_checkpoint=init.checkpoint,
                        train_set=ts, recipe=study.recipe, world=study.world, seed=seed, rung_def=rung_def,
                        stage_seed=ss if ends[ss] is not None else None))
    ordered = sorted(stages.values(), key=lambda s: _depth(s, stages))
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise SpecError("the spec expands to duplicate runs (a train set, rung or init listed twice); "
                        "list each once")
    return ordered, runs


def _depth(stage: PretrainSpec, stages: dict[str, PretrainSpec]) -> int:
    return 0 if stage.parent is None else 1 + _depth(stages[stage.parent], stages)


def stages_needed_by(stages: list[PretrainSpec], runs: list[RunSpec]) -> list[PretrainSpec]:
    """The stages (in ``stages`` order: parents first) that ``runs`` start from, their parents included."""
    by_id = {s.stage_id: s for s in stages}
    needed: set[str] = set()
    for r in runs:
        sid = r.init_stage
        while sid is not None:
            needed.add(sid)
            sid = by_id[sid].parent
    return [s for s in stages if s.stage_id in needed]
