"""Study specs: YAML -> validated frozen dataclasses -> expanded run and pretraining specs.

A study spec (``experiments/*.yaml``) names the task, the datasets, the train sets and the eval
sets each is scored on (each tagged with its shift), the backbone ladder rungs, the
initializations (chains of pretraining stages, or a local checkpoint), the seeds, the per-trial
resources and ONE training recipe shared by every cell. :func:`load_study` validates it
(defaults < YAML < ``--set`` overrides) and :func:`expand` turns it into the frozen
:class:`PretrainSpec` and :class:`RunSpec` lists before Ray starts, so ``--dry-run`` needs no data.

This module imports neither torch nor ray.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from capgate.errors import SpecError
from capgate.schema import SHIFTS, TASKS

__all__ = [
    "Recipe",
    "DatasetRef",
    "EvalSet",
    "TrainSet",
    "StageDef",
    "InitDef",
    "Resources",
    "StudySpec",
    "PretrainSpec",
    "RunSpec",
    "load_study",
    "study_from_dict",
    "expand",
    "parse_override",
    "canonical_json",
    "short_hash",
    "resolve_root",
]

from capgate.models.ladder import FAMILIES  # noqa: E402  (the family registry, name -> FamilyInfo; its keys are the valid families)
OPTIMIZERS = ("sgd", "adamw", "adam")
SCHEDULES = ("cosine", "constant", "step")
#: Mixed precision of training (``recipe.amp``): ``auto`` is bf16 on a CUDA device that supports it,
#: fp16 (with a GradScaler) on one that does not, and off on CPU; resolved in capgate.train.recipe.
AMP_MODES = ("off", "auto", "bf16", "fp16")
DETECTION_FORMATS = ("llvip", "flir", "coco")
CLASSIFICATION_FORMATS = ("imagenet", "domainnet")
STAGE_KINDS = ("classification", "detection")
BUILTIN_INITS = ("scratch", "imagenet", "imagenet_coco")
SYNTHETIC = "synthetic"


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the text every hash in capgate is taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 12) -> str:
    """First ``n`` hex digits of the sha256 of ``canonical_json(obj)``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:n]


# ---------------------------------------------------------------------------------------------
# Validation helpers: every error names the key path, the bad value and the valid choices.


def _check_keys(d: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
    if not isinstance(d, dict):
        raise SpecError(f"spec key '{where}' must be a mapping, got {d!r}")
    valid = required + optional
    for k in d:
        if k not in valid:
            raise SpecError(
                f"spec key '{where}.{k}' is unknown; valid keys under '{where}': {', '.join(valid)}")
    for k in required:
        if k not in d:
            raise SpecError(f"spec key '{where}.{k}' is missing; it is required")
    return d


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SpecError(f"spec key '{where}' has invalid value {value!r}; valid choices: {', '.join(choices)}")
    return value


def _num(value: Any, where: str, kind: type, lo: float | None = None, hi: float | None = None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise SpecError(f"spec key '{where}' must be a {kind.__name__}, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise SpecError(f"spec key '{where}' = {value!r} is out of range [{lo}, {hi}]")
    return kind(value)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"spec key '{where}' must be a non-empty string, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Spec dataclasses (frozen; JSON round-trip via to_dict / from_dict).


@dataclass(frozen=True)
class Recipe:
    """The one training recipe of a study (or of a pretraining stage).

    ``epochs`` passes over the train set, or a fixed number of ``steps`` when set (steps wins).
    ``hflip`` is the horizontal-flip probability, ``brightness`` the +-fraction of a random
    brightness change; ``max_train_images``/``max_eval_images`` cap the splits (small budgets).
    ``amp`` is the mixed precision of training (one of ``AMP_MODES``) and ``channels_last`` the
    memory format of the model and its inputs; both are off by default (plain fp32, NCHW).
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
    grad_clip: float | None = 10.0
    max_train_images: int | None = None
    max_eval_images: int | None = None
    amp: str = "off"
    channels_last: bool = False

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "Recipe":
        names = tuple(f.name for f in fields(cls))
        _check_keys(d, where, (), names)
        out: dict[str, Any] = {}
        for k, v in d.items():
            w = f"{where}.{k}"
            if k == "optimizer":
                out[k] = _choice(v, w, OPTIMIZERS)
            elif k == "schedule":
                out[k] = _choice(v, w, SCHEDULES)
            elif k == "amp":
                if v is False:  # YAML 1.1 reads a bare `off` as false
                    v = "off"
                elif v is True:
                    raise SpecError(f"spec key '{w}' = true is ambiguous; valid choices: {', '.join(AMP_MODES)}")
                out[k] = _choice(v, w, AMP_MODES)
            elif k == "channels_last":
                if not isinstance(v, bool):
                    raise SpecError(f"spec key '{w}' must be true or false, got {v!r}")
                out[k] = v
            elif k in ("lr", "momentum", "weight_decay"):
                out[k] = _num(v, w, float, 0.0)
            elif k in ("hflip", "brightness"):
                out[k] = _num(v, w, float, 0.0, 1.0)
            elif k in ("grad_clip",):
                out[k] = None if v is None else _num(v, w, float, 0.0)
            elif k in ("steps", "max_train_images", "max_eval_images"):
                out[k] = None if v is None else _num(v, w, int, 1)
            elif k == "warmup_steps":
                out[k] = _num(v, w, int, 0)
            elif k == "resolution":
                out[k] = _num(v, w, int, 32, 4096)
            else:  # epochs, batch_size
                out[k] = _num(v, w, int, 1)
        return cls(**out)


@dataclass(frozen=True)
class DatasetRef:
    """One split of one dataset: ``root`` is ``synthetic`` (the tiny world) or a path that may
    use ``${ENV_VAR}`` (expanded only when the data is opened, never for a dry run)."""

    format: str
    root: str
    split: str
    modality: str | None = None
    domain: str | None = None

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "DatasetRef":
        _check_keys(d, where, ("format", "root", "split"), ("modality", "domain"))
        _choice(d["format"], f"{where}.format", DETECTION_FORMATS + CLASSIFICATION_FORMATS)
        return cls(format=d["format"], root=_str(str(d["root"]), f"{where}.root"),
                   split=_str(d["split"], f"{where}.split"), modality=d.get("modality"),
                   domain=d.get("domain"))


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


@dataclass(frozen=True)
class StageDef:
    """A pretraining stage: classification on an ImageNet-layout corpus or detection on a
    COCO-layout corpus, with its own recipe; or a local ``checkpoint`` file used instead."""

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
class StudySpec:
    """A whole validated study."""

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

    @property
    def stage_id(self) -> str:
        return f"{self.name}-{self.rung}-{short_hash(_plain(self))}"

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PretrainSpec":
        d = dict(d)
        d["data"] = None if d.get("data") is None else DatasetRef(**d["data"])
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

    @property
    def run_id(self) -> str:
        return short_hash(self.to_dict(), 16)

    @property
    def spec_hash(self) -> str:
        """Hash of the run spec without its seed: the cell all seeds of a run share."""
        d = self.to_dict()
        d.pop("seed")
        return short_hash(d, 16)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
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
    def from_json(cls, text: str) -> "RunSpec":
        return cls.from_dict(json.loads(text))


def _plain(obj: Any) -> Any:
    """A dataclass as plain JSON-able data (tuples become lists)."""
    return json.loads(canonical_json(asdict(obj)))


# ---------------------------------------------------------------------------------------------
# Loading: defaults < YAML < --set overrides.

DEFAULTS: dict[str, Any] = {
    "task": "detection",
    "world": {"seed": 0, "config": {}},
    "seeds": [0, 1, 2],
    "recipe": {},
    "resources": {"cpu": 1, "gpu": 0},
    "stage_resources": {"cpu": 1, "gpu": 0},
    "inits": {"scratch": {}},
    "pretraining": {},
    "class_map": None,
}

TOP_KEYS_REQUIRED = ("study", "datasets", "train_sets", "rungs", "classes")
TOP_KEYS_OPTIONAL = tuple(DEFAULTS)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``key.path=value`` (value in YAML syntax: ``1e-3``, ``[0, 1]``, ``adamw``)."""
    if "=" not in text:
        raise SpecError(f"override {text!r} is not of the form key.path=value (e.g. recipe.lr=0.01)")
    key, _, raw = text.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise SpecError(f"override {text!r} has an empty key; use e.g. recipe.lr=0.01")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise SpecError(f"override {text!r}: value {raw!r} is not valid YAML ({exc})") from exc
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value):
        value = float(value)  # YAML 1.1 reads 1e6 as a string
    return path, value


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_study(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> StudySpec:
    """Read and validate a study spec YAML, applying ``--set`` overrides last."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise SpecError(f"spec file {path} does not exist; pass a path such as experiments/demo.yaml") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"spec file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"spec file {path} must hold a mapping at its top level, got {type(raw).__name__}")
    try:
        return study_from_dict(raw, overrides)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def study_from_dict(raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> StudySpec:
    """Validate a spec given as a dict (see :func:`load_study`)."""
    d = _deep_merge(DEFAULTS, raw)
    for text in overrides:
        keys, value = parse_override(text)
        node = d
        for i, k in enumerate(keys[:-1]):
            if not isinstance(node.get(k), dict):
                if k not in node:
                    node[k] = {}
                else:
                    raise SpecError(f"override {text!r}: '{'.'.join(keys[:i + 1])}' is not a mapping")
            node = node[k]
        node[keys[-1]] = value
    _check_keys(d, "spec", TOP_KEYS_REQUIRED, TOP_KEYS_OPTIONAL)
    return _build_study(d)


def _build_study(d: dict[str, Any]) -> StudySpec:
    study = _str(d["study"], "study")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", study):
        raise SpecError(f"spec key 'study' = {study!r} may only use letters, digits, '_', '.', '-'")
    task = _choice(d["task"], "task", TASKS)
    classes = d["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise SpecError(f"spec key 'classes' must be a non-empty list of class names, got {classes!r}")
    class_map = d["class_map"]
    if class_map is not None and not isinstance(class_map, (str, dict)):
        raise SpecError(f"spec key 'class_map' must be a preset name (e.g. person) or a mapping "
                        f"{{target: [source names]}}, got {class_map!r}")
    if isinstance(class_map, dict) and list(class_map) != list(classes):
        raise SpecError(f"spec key 'class_map' targets {list(class_map)} must equal 'classes' {classes}")
    world = _check_keys(d["world"], "world", (), ("seed", "config"))
    world = {"seed": _num(world.get("seed", 0), "world.seed", int, 0), "config": dict(world.get("config") or {})}

    datasets = d["datasets"]
    if not isinstance(datasets, dict) or not datasets:
        raise SpecError("spec key 'datasets' must map dataset names to {format, root}")
    formats = DETECTION_FORMATS if task == "detection" else CLASSIFICATION_FORMATS

    def ref(entry: Any, where: str, allowed: tuple[str, ...] = formats) -> DatasetRef:
        e = _check_keys(entry, where, ("dataset", "split"), ("modality", "domain", "name", "shift"))
        name = e["dataset"]
        if name not in datasets:
            raise SpecError(f"spec key '{where}.dataset' = {name!r} is not defined under 'datasets'; "
                            f"defined: {', '.join(datasets)}")
        ds = _check_keys(datasets[name], f"datasets.{name}", ("format", "root"), ())
        _choice(ds["format"], f"datasets.{name}.format", allowed)
        return DatasetRef.from_dict({"format": ds["format"], "root": ds["root"], "split": e["split"],
                                     "modality": e.get("modality"), "domain": e.get("domain")}, where)

    def set_name(entry: dict, r: DatasetRef) -> str:
        return entry.get("name") or f"{entry['dataset']}/{r.modality or r.domain or r.split}"

    train_sets = []
    if not isinstance(d["train_sets"], list) or not d["train_sets"]:
        raise SpecError("spec key 'train_sets' must be a non-empty list")
    for i, t in enumerate(d["train_sets"]):
        where = f"train_sets[{i}]"
        _check_keys(t, where, ("dataset", "split", "eval"), ("modality", "domain", "name"))
        tref = ref({k: v for k, v in t.items() if k != "eval"}, where)
        evals = []
        if not isinstance(t["eval"], list) or not t["eval"]:
            raise SpecError(f"spec key '{where}.eval' must be a non-empty list of eval sets")
        for j, e in enumerate(t["eval"]):
            ew = f"{where}.eval[{j}]"
            eref = ref(e, ew)
            if "shift" not in e:
                raise SpecError(f"spec key '{ew}.shift' is missing; valid choices: {', '.join(SHIFTS)}")
            evals.append(EvalSet(set_name(e, eref), eref, _choice(e["shift"], f"{ew}.shift", SHIFTS)))
        names = [e.name for e in evals]
        if len(set(names)) != len(names):
            raise SpecError(f"spec key '{where}.eval' names an eval set twice: {names}")
        train_sets.append(TrainSet(set_name(t, tref), tref, tuple(evals)))

    rungs = []
    if not isinstance(d["rungs"], dict) or not d["rungs"]:
        raise SpecError(f"spec key 'rungs' must map a family ({', '.join(FAMILIES)}) to a list of rung names")
    for fam, names in d["rungs"].items():
        _choice(fam, f"rungs.{fam}", FAMILIES)
        if not isinstance(names, list) or not names:
            raise SpecError(f"spec key 'rungs.{fam}' must be a non-empty list of rung names, got {names!r}")
        rungs += [(fam, _str(n, f"rungs.{fam}")) for n in names]

    stages = []
    for name, s in (d["pretraining"] or {}).items():
        w = f"pretraining.{name}"
        _check_keys(s, w, ("kind",), ("dataset", "split", "recipe", "checkpoint"))
        kind = _choice(s["kind"], f"{w}.kind", STAGE_KINDS)
        if s.get("checkpoint"):
            stages.append(StageDef(name, kind, None, Recipe(), _str(s["checkpoint"], f"{w}.checkpoint")))
            continue
        allowed = ("imagenet",) if kind == "classification" else ("coco",)
        if "dataset" not in s:
            raise SpecError(f"spec key '{w}.dataset' is missing (or give '{w}.checkpoint')")
        data = ref({"dataset": s["dataset"], "split": s.get("split", "train")}, w, allowed)
        stages.append(StageDef(name, kind, data, Recipe.from_dict(s.get("recipe") or {}, f"{w}.recipe")))
    stage_names = {s.name for s in stages}

    inits = []
    if not isinstance(d["inits"], dict) or not d["inits"]:
        raise SpecError(f"spec key 'inits' must map init names (e.g. {', '.join(BUILTIN_INITS)}) to definitions")
    for name, i in d["inits"].items():
        w = f"inits.{name}"
        i = _check_keys(i or {}, w, (), ("stages", "checkpoint"))
        chain = tuple(i.get("stages") or ())
        for s in chain:
            if s not in stage_names:
                raise SpecError(f"spec key '{w}.stages' names stage {s!r} not defined under 'pretraining'; "
                                f"defined: {', '.join(sorted(stage_names)) or '(none)'}")
        if chain and i.get("checkpoint"):
            raise SpecError(f"spec key '{w}' gives both 'stages' and 'checkpoint'; use one")
        if name != "scratch" and not chain and not i.get("checkpoint"):
            raise SpecError(f"spec key '{w}' needs 'stages' (a chain of pretraining stages) or 'checkpoint'")
        inits.append(InitDef(name, chain, i.get("checkpoint")))

    seeds = d["seeds"]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise SpecError(f"spec key 'seeds' must be a count or a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"spec key 'seeds' repeats a seed: {seeds!r}")

    def resources(x: Any, w: str) -> Resources:
        x = _check_keys(x, w, (), ("cpu", "gpu"))
        return Resources(_num(x.get("cpu", 1), f"{w}.cpu", float, 0.0),
                         _num(x.get("gpu", 0), f"{w}.gpu", float, 0.0))

    return StudySpec(
        study=study, task=task, classes=tuple(classes), class_map=class_map, world=world, train_sets=tuple(train_sets),
        rungs=tuple(rungs), inits=tuple(inits), stages=tuple(stages), seeds=tuple(seeds),
        recipe=Recipe.from_dict(d["recipe"] or {}, "recipe"),
        resources=resources(d["resources"], "resources"),
        stage_resources=resources(d["stage_resources"], "stage_resources"))


# ---------------------------------------------------------------------------------------------
# Expansion.


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
            for init in study.inits:
                parent: str | None = None
                for seq, sname in enumerate(init.stages):
                    sd = stage_defs[sname]
                    ps = PretrainSpec(name=sname, kind=sd.kind, family=fam, rung=rung, data=sd.data,
                                      recipe=sd.recipe, world=study.world if sd.data and sd.data.root == SYNTHETIC else {},
                                      parent=parent, checkpoint=sd.checkpoint)
                    stages.setdefault(ps.stage_id, ps)
                    parent = ps.stage_id
                for seed in study.seeds:
                    runs.append(RunSpec(
                        study=study.study, task=study.task, classes=study.classes,
                        class_map=study.class_map, family=fam,
                        rung=rung, init=init.name, init_stage=parent, init_checkpoint=init.checkpoint,
                        train_set=ts, recipe=study.recipe, world=study.world, seed=seed))
    ordered = sorted(stages.values(), key=lambda s: _depth(s, stages))
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise SpecError("the spec expands to duplicate runs (a train set, rung or init listed twice)")
    return ordered, runs


def _depth(stage: PretrainSpec, stages: dict[str, PretrainSpec]) -> int:
    return 0 if stage.parent is None else 1 + _depth(stages[stage.parent], stages)


def resolve_root(ref: DatasetRef, world_root: Path | None) -> Path:
    """The dataset's root folder: the synthetic world's sub-folder, or the path with ``${VAR}``s
    expanded. Raises :class:`SpecError` naming the variable when it is not set."""
    if ref.root == SYNTHETIC:
        if world_root is None:
            raise SpecError(f"dataset {ref.format} uses the synthetic world but no world root was given")
        return Path(world_root) / ref.format
    missing = [v for v in re.findall(r"\$\{(\w+)\}", ref.root) if v not in os.environ]
    if missing:
        raise SpecError(f"dataset root {ref.root!r} needs environment variable(s) {', '.join(missing)}; "
                        f"set them to the dataset folder (e.g. export {missing[0]}=/data/{ref.format})")
    return Path(os.path.expandvars(ref.root)).expanduser()
