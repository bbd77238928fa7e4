"""Study specs as frozen dataclasses, and their expansion into run and pretraining specs.

A :class:`StudySpec` (validated from YAML by :mod:`capgate.spec.load`) names the task, the
train sets and the eval sets each is scored on (each tagged with its shift), the backbone rungs,
the initializations (chains of pretraining stages, or a local checkpoint), the seeds, the
per-trial resources and ONE training recipe shared by every cell. :func:`expand` turns it into
the frozen :class:`PretrainSpec` and :class:`RunSpec` lists before Ray starts, so ``--dry-run``
needs no data. Every spec round-trips to JSON; ``run_id`` and ``stage_id`` are hashes of it.

Loading and validating YAML is :mod:`capgate.spec.load`'s job (``load_study``); hashing is
:mod:`capgate._hash`'s; dataset roots are :mod:`capgate.data.roots`'. This module imports neither
torch nor ray.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from capgate._hash import canonical_json, short_hash
from capgate.data.roots import SYNTHETIC
from capgate.errors import SpecError
from capgate.models.ladder import Rung, get_rung

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
    "fields_of",
    "SYNTHETIC",
    # homes elsewhere, kept importable from here: capgate._hash and capgate.data.roots
    "canonical_json",
    "short_hash",
]

#: Mixed precision of training (``recipe.amp``): ``auto`` is bf16 on a CUDA device that supports it,
#: fp16 (with a GradScaler) on one that does not, and off on CPU; resolved in capgate.train.recipe.
AMP_MODES = ("off", "auto", "bf16", "fp16")

def fields_of(cls: type) -> tuple[str, ...]:
    """Field names of a spec dataclass, in order (the valid keys of its YAML section)."""
    return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Recipe:
    """The one training recipe of a study (or of a pretraining stage).

    ``epochs`` passes over the train set, or a fixed number of ``steps`` when set (steps wins).
    ``hflip`` is the horizontal-flip probability, ``brightness`` the +-fraction of a random
    brightness change, ``grayscale`` the probability of replacing an image by its luminance (a
    standard colour augmentation, which also lets an RGB-trained model see infrared-like input); ``max_train_images``/``max_eval_images`` cap the splits (small budgets).
    ``amp`` is the mixed precision of training (one of ``AMP_MODES``) and ``channels_last`` the
    memory format of the model and its inputs; both are off by default (plain fp32, NCHW).
    ``memory_budget_mb`` (default ``capgate.train.recipe.DEFAULT_MEMORY_BUDGET_MB``): a split whose
    decoded size exceeds it is streamed from disk by DataLoader workers instead of held in memory.
    """

    optimizer: str = "adamw"
    lr: float = 0.003
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_steps: int = 20
    epochs: int = 10
    steps: int | None = None
    batch_size: int = 16
    resolution: int = 64
    hflip: float = 0.5
    brightness: float = 0.0
    grayscale: float = 0.0
    grad_clip: float | None = 10.0
    max_train_images: int | None = None
    max_eval_images: int | None = None
    amp: str = "off"
    channels_last: bool = False
    memory_budget_mb: int | None = None


@dataclass(frozen=True)
class DatasetRef:
    """One split of one dataset: ``root`` is ``synthetic`` (the tiny world) or a path that may
    use ``${ENV_VAR}`` (expanded only when the data is opened, never for a dry run)."""

    format: str
    root: str
    split: str
    modality: str | None = None
    domain: str | None = None
    drop_invalid: bool = False  # detection formats: drop zero-area/out-of-image boxes, counted in the record


@dataclass(frozen=True)
class EvalSet:
    """An evaluation set, named as in the results table (``flir/rgb``), with its shift tag."""

    name: str
    data: DatasetRef
    shift: str


@dataclass(frozen=True)
class TrainSet:
    """A training set and the eval sets its models are scored on."""

    name: str
    data: DatasetRef
    evals: tuple[EvalSet, ...]

    @property
    def datasets(self) -> list[DatasetRef]:
        """The train split and every eval split."""
        return [self.data, *(e.data for e in self.evals)]


@dataclass(frozen=True)
class StageDef:
    """A pretraining stage: classification on an ImageNet-layout corpus or detection on a
    COCO-layout corpus, with its own recipe; or a local ``checkpoint`` file used instead. A
    ``{rung}`` in the checkpoint's path is replaced by each rung's name (one file per standard model)."""

    name: str
    kind: str
    data: DatasetRef | None
    recipe: Recipe
    checkpoint: str | None = None


@dataclass(frozen=True)
class InitDef:
    """An initialization: ``scratch`` (no stages), a chain of stage names, or a checkpoint."""

    name: str
    stages: tuple[str, ...] = ()
    checkpoint: str | None = None


@dataclass(frozen=True)
class Resources:
    """Ray resources of one trial (fractional GPUs let small trials share a GPU)."""

    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True)
class Adaptive:
    """The spec's ``adaptive`` section: ``run-grid SPEC`` runs the ``--until-resolved`` loop with these
    values (command-line flags override each one). ``plan`` is the analysis plan's resolved path; a
    field left ``None`` takes the library default (the plan's ``sequential.max_seeds``; 10 rounds; no
    budget of runs per round)."""

    plan: str | None = None
    max_seeds: int | None = None
    max_rounds: int | None = None
    max_runs: int | None = None


@dataclass(frozen=True)
class StudySpec:
    """A whole validated study.

    ``rung_defs`` holds the definitions (``Rung.to_dict()``) of the spec's own rungs, those a
    fresh process cannot rebuild from the name alone; they travel inside every run spec.
    ``adaptive`` (None: a fixed grid) is how run-grid grows seeds; it is in no run or stage id.
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
        neutral = _NEUTRAL_DEFAULTS.get(type(obj).__name__, {})
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
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        return cls.from_dict(json.loads(text))


def expand(study: StudySpec) -> tuple[list[PretrainSpec], list[RunSpec]]:
    """All pretraining stages (deduplicated, parents before children) and all runs.

    Runs are ordered train set > rung > init > seed; stages by chain position, so a stage's
    parent always comes earlier in the list.
    """
    stage_defs = {s.name: s for s in study.stages}
    stages: dict[str, PretrainSpec] = {}
    runs: list[RunSpec] = []
    for ts in study.train_sets:
        for fam, rung in study.rungs:
            rung_def = study.rung_defs.get(rung)
            for init in study.inits:
                parent: str | None = None
                for sname in init.stages:
                    sd = stage_defs[sname]
                    world = study.world if sd.data and sd.data.root == SYNTHETIC else {}
                    ps = PretrainSpec(name=sname, kind=sd.kind, family=fam, rung=rung, data=sd.data,
                                      recipe=sd.recipe, world=world, parent=parent,
                                      checkpoint=sd.checkpoint.replace("{rung}", rung) if sd.checkpoint else None,
                                      rung_def=rung_def)
                    stages.setdefault(ps.stage_id, ps)
                    parent = ps.stage_id
                for seed in study.seeds:
                    runs.append(RunSpec(
                        study=study.study, task=study.task, classes=study.classes,
                        class_map=study.class_map, family=fam,
                        rung=rung, init=init.name, init_stage=parent, init_checkpoint=init.checkpoint,
                        train_set=ts, recipe=study.recipe, world=study.world, seed=seed, rung_def=rung_def))
    ordered = sorted(stages.values(), key=lambda s: _depth(s, stages))
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise SpecError("the spec expands to duplicate runs (a train set, rung or init listed twice); "
                        "list each once")
    return ordered, runs


def _depth(stage: PretrainSpec, stages: dict[str, PretrainSpec]) -> int:
    return 0 if stage.parent is None else 1 + _depth(stages[stage.parent], stages)
