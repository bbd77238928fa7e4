"""Loading a study spec: YAML -> validated :class:`~capgate.spec.StudySpec`.

Precedence is fixed: library :data:`DEFAULTS` < the YAML file < ``--set`` overrides. Every error
is a :class:`SpecError` that names the file, the key path (``train_sets[0].eval[1].shift``), the
bad value and the fix (the valid choices); a YAML syntax error names the file and the line. Rung
names are checked against the ladder here, so ``--dry-run`` catches them. This module imports
neither torch nor ray.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from capgate.data.world_version import GENERATOR_VERSION, IDS_WITHOUT_GENERATOR
from capgate.data.registry import CLASSIFICATION_FORMATS, DETECTION_FORMATS
from capgate.spec.adaptive import parse_adaptive
from capgate.spec.checks import _choice, _keys, _num, _seed_list, _str
from capgate.errors import SpecError
from capgate.spec.classes import resolve_classes
from capgate.models.ladder import FAMILIES, STANDARD_FAMILY, Rung, get_rung, rung_names, standard_names
from capgate.schema import SHIFTS, TASKS
from capgate.spec.model import (AMP_MODES, DatasetRef, EvalSet, InitDef, MinStageScore, Recipe, Resources, StageDef,
                                StudySpec, TrainSet, fields_of)

__all__ = ["DEFAULTS", "load_study", "study_from_dict", "parse_override", "study_to_dict", "read_yaml"]

OPTIMIZERS = ("sgd", "adamw", "adam")
SCHEDULES = ("cosine", "constant", "step")
STAGE_KINDS = ("classification", "detection")
STAGE_FORMATS = {"classification": ("imagenet",), "detection": ("coco",)}
BUILTIN_INITS = ("scratch", "imagenet", "imagenet_coco")
#: Rungs every process knows (registered when the ladder is imported); others travel in the run spec.
_SHIPPED_RUNGS = frozenset(rung_names()) | frozenset(standard_names())  # named alone, no rung_def
_CUSTOM_RUNG = re.compile(r"^[a-z0-9_]+@w[0-9.e-]+d[0-9.e-]+$")

DEFAULTS: dict[str, Any] = {
    "task": "detection",
    "world": {"seed": 0, "config": {}},
    "seeds": [0, 1, 2],
    "stage_seeds": [0],  # pretraining replicates: each (rung, init) stage chain is trained once per stage seed
    "recipe": {},
    "resources": {"cpu": 1, "gpu": 0},
    "stage_resources": {"cpu": 1, "gpu": 0},
    "inits": {"scratch": {}},
    "pretraining": {},
    "classes": None,  # the study's class list; may be left out when every train set declares its own
    "class_map": None,
    "adaptive": None,  # {plan, max_seeds, max_rounds, max_runs}: run-grid runs the --until-resolved loop
    "min_stage_score": None,  # {classification: top-1, detection: mAP}: a stage below it stops the grid
}
TOP_KEYS_REQUIRED = ("study", "datasets", "train_sets", "rungs")
TOP_KEYS_OPTIONAL = tuple(DEFAULTS)

# ---------------------------------------------------------------------------------------------
# Reading files and overrides.


def read_yaml(path: str | Path, what: str = "spec file") -> Any:
    """Parse a YAML file; a syntax error names the file, the line and the column."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{what} {path} does not exist; pass a path such as experiments/demo.yaml") from None
    except OSError as exc:
        raise SpecError(f"{what} {path} cannot be read ({exc.strerror}); check the path and its permissions") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise SpecError(f"{where}: {what} is not valid YAML ({problem}); fix the syntax at line "
                        f"{mark.line + 1 if mark else '?'}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: {what} is not valid YAML ({exc})") from None


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
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"spec file {path} must hold a mapping at its top level (study: ..., datasets: ...), "
                        f"got {type(raw).__name__}")
    try:
        return study_from_dict(raw, overrides, base_dir=path.parent)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def study_from_dict(raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), *,
                    base_dir: str | Path | None = None) -> StudySpec:
    """Validate a spec given as a dict (see :func:`load_study`); ``base_dir`` (default: the working
    directory) is where a relative ``adaptive.plan`` is looked up."""
    d = _deep_merge(DEFAULTS, raw)
    for text in overrides:
        keys, value = parse_override(text)
        node = d
        for i, k in enumerate(keys[:-1]):
            if not isinstance(node.get(k), dict):
                if node.get(k) is None:  # absent, or an optional section left empty (adaptive: null)
                    node[k] = {}
                else:
                    raise SpecError(f"override {text!r}: '{'.'.join(keys[:i + 1])}' is not a mapping")
            node = node[k]
        node[keys[-1]] = value
    _keys(d, "spec", TOP_KEYS_REQUIRED, TOP_KEYS_OPTIONAL)
    return _build_study(d, Path(base_dir) if base_dir is not None else Path.cwd())


def study_to_dict(study: StudySpec) -> dict[str, Any]:
    """The resolved study as plain data (what ``--dry-run`` prints as YAML)."""
    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x
    return plain(asdict(study))


# ---------------------------------------------------------------------------------------------
# Building the study, one section at a time.


def _recipe(d: Any, where: str) -> Recipe:
    _keys(d, where, (), fields_of(Recipe))
    out: dict[str, Any] = {}
    for k, v in d.items():
        w = f"{where}.{k}"
        if k == "optimizer":
            out[k] = _choice(v, w, OPTIMIZERS)
        elif k == "schedule":
            out[k] = _choice(v, w, SCHEDULES)
        elif k in ("lr", "momentum", "weight_decay"):
            out[k] = _num(v, w, float, 0.0)
        elif k in ("hflip", "brightness", "grayscale"):
            out[k] = _num(v, w, float, 0.0, 1.0)
        elif k == "grad_clip":
            out[k] = None if v is None else _num(v, w, float, 0.0)
        elif k in ("steps", "max_train_images", "max_eval_images", "memory_budget_mb"):
            out[k] = None if v is None else _num(v, w, int, 1)
        elif k == "amp":
            if v is False:  # YAML 1.1 reads a bare `off` as false
                v = "off"
            elif v is True:
                raise SpecError(f"spec key '{w}' = true is ambiguous; valid choices: {', '.join(AMP_MODES)}")
            out[k] = _choice(v, w, AMP_MODES)
        elif k == "warmup_steps":
            out[k] = _num(v, w, int, 0)
        elif k == "resolution":
            out[k] = _num(v, w, int, 32, 4096)
        elif k in ("epochs", "batch_size"):
            out[k] = _num(v, w, int, 1)
        else:  # a field without its own rule: checked against its default's type
            out[k] = _like_default(v, w, _RECIPE_DEFAULTS[k])
    return Recipe(**out)


_RECIPE_DEFAULTS = {f: getattr(Recipe(), f) for f in fields_of(Recipe)}


def _like_default(value: Any, where: str, default: Any) -> Any:
    if default is None:  # an optional field with no default: any YAML value, checked where used
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SpecError(f"spec key '{where}' must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        return _num(value, where, type(default))
    if isinstance(default, str):
        return _str(value, where)
    return value


class _Datasets:
    """Resolves ``{dataset, split, modality, domain}`` entries against the ``datasets`` section."""

    def __init__(self, datasets: Any, task: str) -> None:
        if not isinstance(datasets, dict) or not datasets:
            raise SpecError("spec key 'datasets' must map dataset names to {format, root}")
        self.datasets = datasets
        self.formats = tuple(DETECTION_FORMATS if task == "detection" else CLASSIFICATION_FORMATS)

    def ref(self, entry: Any, where: str, allowed: tuple[str, ...] | None = None) -> DatasetRef:
        e = _keys(entry, where, ("dataset", "split"), ("modality", "domain", "name", "shift"))
        name = e["dataset"]
        if name not in self.datasets:
            raise SpecError(f"spec key '{where}.dataset' = {name!r} is not defined under 'datasets'; "
                            f"defined: {', '.join(self.datasets)}")
        ds = _keys(self.datasets[name], f"datasets.{name}", ("format", "root"), ("drop_invalid",))
        fmt = _choice(ds["format"], f"datasets.{name}.format", allowed or self.formats)
        drop = ds.get("drop_invalid", False)
        if not isinstance(drop, bool):
            raise SpecError(f"spec key 'datasets.{name}.drop_invalid' must be true or false, got {drop!r}")
        if drop and fmt not in DETECTION_FORMATS:
            raise SpecError(f"spec key 'datasets.{name}.drop_invalid' applies to detection formats "
                            f"({', '.join(DETECTION_FORMATS)}), not {fmt!r}; remove it")
        return DatasetRef(format=fmt, root=_str(str(ds["root"]), f"datasets.{name}.root"),
                          split=_str(e["split"], f"{where}.split"), modality=e.get("modality"),
                          domain=e.get("domain"), drop_invalid=drop)

    @staticmethod
    def set_name(entry: dict, r: DatasetRef) -> str:
        return entry.get("name") or f"{entry['dataset']}/{r.modality or r.domain or r.split}"


def _train_sets(raw: Any, ds: _Datasets) -> tuple[TrainSet, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError("spec key 'train_sets' must be a non-empty list")
    out = []
    for i, t in enumerate(raw):
        where = f"train_sets[{i}]"
        _keys(t, where, ("dataset", "split", "eval"), ("modality", "domain", "name", "classes"))
        tref = ds.ref({k: v for k, v in t.items() if k not in ("eval", "classes")}, where)
        if not isinstance(t["eval"], list) or not t["eval"]:
            raise SpecError(f"spec key '{where}.eval' must be a non-empty list of eval sets")
        evals = []
        for j, e in enumerate(t["eval"]):
            ew = f"{where}.eval[{j}]"
            eref = ds.ref(e, ew)
            if "shift" not in e:
                raise SpecError(f"spec key '{ew}.shift' is missing; valid choices: {', '.join(SHIFTS)}")
            evals.append(EvalSet(ds.set_name(e, eref), eref, _choice(e["shift"], f"{ew}.shift", SHIFTS)))
        names = [e.name for e in evals]
        if len(set(names)) != len(names):
            raise SpecError(f"spec key '{where}.eval' names an eval set twice: {names}; give each a distinct 'name'")
        out.append(TrainSet(ds.set_name(t, tref), tref, tuple(evals)))
    return tuple(out)


def _rung(fam: str, entry: Any, where: str) -> Rung:
    """One entry of ``rungs.<family>``: a rung name, or the spec's own ``{name, width, depth}``."""
    if isinstance(entry, dict):
        _keys(entry, where, ("width", "depth"), ("name", "note"))
        try:
            return Rung.from_dict({"family": fam, **entry})
        except SpecError as exc:
            raise SpecError(f"spec key '{where}': {exc}") from None
    name = _str(entry, where)
    try:
        rung = get_rung(name)
    except SpecError as exc:
        raise SpecError(f"spec key '{where}' = {name!r}: {exc}") from None
    if rung.family != fam:
        raise SpecError(f"spec key '{where}' = {name!r} is a {rung.family} rung; move it under "
                        f"'rungs.{rung.family}'")
    return rung


def _rungs(raw: Any) -> tuple[tuple[tuple[str, str], ...], dict[str, dict[str, Any]]]:
    families = [*FAMILIES, STANDARD_FAMILY]  # standard: full-size models named by model name
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"spec key 'rungs' must map a family ({', '.join(families)}) to a list of rung names")
    rungs, defs = [], {}
    for fam, entries in raw.items():
        _choice(fam, f"rungs.{fam}", families)
        if not isinstance(entries, list) or not entries:
            raise SpecError(f"spec key 'rungs.{fam}' must be a non-empty list of rung names "
                            f"(e.g. {', '.join(rung_names()[:2])}), got {entries!r}")
        for k, entry in enumerate(entries):
            rung = _rung(fam, entry, f"rungs.{fam}[{k}]")
            name = rung.name if isinstance(entry, dict) else entry
            if isinstance(entry, dict) or (name not in _SHIPPED_RUNGS and not _CUSTOM_RUNG.match(name)):
                defs[name] = rung.to_dict()
            rungs.append((fam, name))
    return tuple(rungs), defs


def _stages(raw: Any, ds: _Datasets) -> tuple[StageDef, ...]:
    if not isinstance(raw, dict):
        raise SpecError(f"spec key 'pretraining' must map stage names to {{kind, dataset}}, got {raw!r}")
    stages = []
    for name, s in raw.items():
        w = f"pretraining.{name}"
        _keys(s, w, ("kind",), ("dataset", "split", "recipe", "checkpoint"))
        kind = _choice(s["kind"], f"{w}.kind", STAGE_KINDS)
        if s.get("checkpoint"):
            stages.append(StageDef(name, kind, None, Recipe(), _str(s["checkpoint"], f"{w}.checkpoint")))
            continue
        if "dataset" not in s:
            raise SpecError(f"spec key '{w}.dataset' is missing (or give '{w}.checkpoint')")
        data = ds.ref({"dataset": s["dataset"], "split": s.get("split", "train")}, w, STAGE_FORMATS[kind])
        stages.append(StageDef(name, kind, data, _recipe(s.get("recipe") or {}, f"{w}.recipe")))
    return tuple(stages)


def _inits(raw: Any, stage_names: set[str]) -> tuple[InitDef, ...]:
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"spec key 'inits' must map init names (e.g. {', '.join(BUILTIN_INITS)}) to definitions")
    inits = []
    for name, i in raw.items():
        w = f"inits.{name}"
        i = _keys(i or {}, w, (), ("stages", "checkpoint"))
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
    return tuple(inits)


def _resources(x: Any, w: str) -> Resources:
    x = _keys(x, w, (), ("cpu", "gpu"))
    return Resources(_num(x.get("cpu", 1), f"{w}.cpu", float, 0.0), _num(x.get("gpu", 0), f"{w}.gpu", float, 0.0))


def _min_stage_score(x: Any) -> MinStageScore | None:
    """``min_stage_score: {classification: 0.1, detection: 0.02}`` (each optional, a score in [0, 1])."""
    if x is None:
        return None
    x = _keys(x, "min_stage_score", (), STAGE_KINDS)
    return MinStageScore(**{k: None if v is None else _num(v, f"min_stage_score.{k}", float, 0.0, 1.0)
                            for k, v in x.items()})


def _build_study(d: dict[str, Any], base_dir: Path) -> StudySpec:
    study = _str(d["study"], "study")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", study):
        raise SpecError(f"spec key 'study' = {study!r} may only use letters, digits, '_', '.', '-'")
    task = _choice(d["task"], "task", TASKS)
    class_map = d["class_map"]
    if class_map is not None and not isinstance(class_map, (str, dict)):
        raise SpecError(f"spec key 'class_map' must be a preset name (e.g. person) or a mapping "
                        f"{{target: [source names]}}, got {class_map!r}")
    world = _keys(d["world"], "world", (), ("seed", "config"))
    world = {"seed": _num(world.get("seed", 0), "world.seed", int, 0), "config": dict(world.get("config") or {})}
    if GENERATOR_VERSION != IDS_WITHOUT_GENERATOR:  # which world these runs read is part of their ids
        world["generator"] = GENERATOR_VERSION
    ds = _Datasets(d["datasets"], task)
    train_sets = _train_sets(d["train_sets"], ds)
    classes, train_classes = resolve_classes(d["classes"], d["train_sets"], train_sets, class_map)
    stages = _stages(d["pretraining"] or {}, ds)
    rungs, rung_defs = _rungs(d["rungs"])
    if task != "classification" and any(fam == STANDARD_FAMILY for fam, _ in rungs):
        raise SpecError(f"spec key 'rungs.{STANDARD_FAMILY}': standard models are classifiers with their own head; "
                        f"a {task} study names rungs of the ladder's families ({', '.join(FAMILIES)})")
    return StudySpec(
        study=study, task=task, classes=classes, class_map=class_map, world=world,
        train_sets=train_sets, train_classes=train_classes, rungs=rungs,
        inits=_inits(d["inits"], {s.name for s in stages}),
        stages=stages, seeds=_seed_list(d["seeds"], "seeds"), recipe=_recipe(d["recipe"] or {}, "recipe"),
        resources=_resources(d["resources"], "resources"),
        stage_resources=_resources(d["stage_resources"], "stage_resources"), rung_defs=rung_defs,
        adaptive=parse_adaptive(d["adaptive"], base_dir), stage_seeds=_seed_list(d["stage_seeds"], "stage_seeds"),
        min_stage_score=_min_stage_score(d["min_stage_score"]))
