"""Checks a dry run can make without training: datasets and local weights files.

:func:`preflight` returns the problems (each names the file or variable and the fix); the
driver refuses to start when there is one, and ``run-grid --dry-run`` lists them (exit 2). A root
whose ``${VAR}`` is unset cannot be checked: a dry run lists it as unchecked (a dry run works
without any data), the driver refuses to start. Every dataset split the spec names must use a split, modality and domain
its format's reader accepts (the readers' own constants; a synthetic DomainNet's domains are the
world's); roots of real data must exist and hold the files the format's reader opens first for that
split (a typo or an empty folder fails here, not inside every trial); a local weights file (an init's or a stage's ``checkpoint``) must exist,
load with ``torch.load(weights_only=True)`` and cover enough of each rung's backbone. Only that
last check imports torch, and only when the spec names a weights file.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from capgate.data.coco import coco_split_paths
from capgate.data.domainnet import DOMAINNET_DOMAINS, DOMAINNET_SPLITS
from capgate.data.flir import FLIR_MODALITIES, FLIR_SPLITS, V1_SPLIT_FOLDERS, detect_flir_version, flir_v2_folder
from capgate.data.imagenet import IMAGENET_SPLITS, imagenet_image_root
from capgate.data.llvip import LLVIP_FOLDERS, LLVIP_SPLITS
from capgate.data.roots import SYNTHETIC, missing_variables, resolve_root
from capgate.errors import CapgateError, DataError
from capgate.grid.plan import GridPlan
from capgate.spec.model import DatasetRef

__all__ = ["preflight", "raise_on_unusable_data"]


#: What each format's reader accepts, from the readers' own constants (``None``: any value).
_VALID: dict[str, dict[str, tuple[str, ...] | None]] = {
    "llvip": {"split": LLVIP_SPLITS, "modality": tuple(LLVIP_FOLDERS)},
    **{f: {"split": FLIR_SPLITS, "modality": FLIR_MODALITIES} for f in ("flir", "flir_v1", "flir_v2")},
    "coco": {"split": None},
    "imagenet": {"split": IMAGENET_SPLITS},
    "domainnet": {"split": DOMAINNET_SPLITS, "domain": DOMAINNET_DOMAINS},
}
#: The layout a format's root must hold (the fix a missing file's message names).
_LAYOUT = {
    "llvip": "Annotations/, visible/{train,test}/ and infrared/{train,test}/",
    "flir": "the FLIR ADAS v2 folders images_{rgb,thermal}_{train,val}/ (or v1's train/thermal_annotations.json)",
    "coco": "annotations/instances_<split>.json and the <split>/ image folder",
    "imagenet": "train/<class>/ and val/ (class folders, or flat with LOC_val_solution.csv)",
    "domainnet": "<domain>/<class>/ folders and <domain>_{train,test}.txt split files",
}


def _dataset_refs(plan: GridPlan) -> list[tuple[DatasetRef, str]]:
    """Every dataset split the spec names, with the spec key that names it."""
    out = []
    for i, ts in enumerate(plan.study.train_sets):
        out.append((ts.data, f"train_sets[{i}]"))
        out += [(e.data, f"train_sets[{i}].eval[{j}]") for j, e in enumerate(ts.evals)]
    out += [(st.data, f"pretraining.{st.name}") for st in plan.study.stages if st.data is not None]
    return out


def _value_problems(ref: DatasetRef, key: str, world: dict) -> list[str]:
    """A split, modality or domain the format's reader would refuse (``rbg``, ``clipartt``)."""
    problems = []
    for field, valid in _VALID.get(ref.format, {}).items():
        value = getattr(ref, field)
        if field == "domain" and ref.root == SYNTHETIC:
            valid = _world_domains(world)
        if valid is None or (value is None and field == "modality"):  # modality defaults to rgb
            continue
        if value is None:
            problems.append(f"spec key '{key}.{field}' is missing: format {ref.format} needs a {field}; "
                            f"add one of: {', '.join(valid)}")
        elif value not in valid:
            close = difflib.get_close_matches(str(value), valid, n=1)
            problems.append(f"spec key '{key}.{field}' = {value!r} is not a {ref.format} {field}; valid: "
                            f"{', '.join(valid)}" + (f"; did you mean {close[0]!r}?" if close else ""))
    return problems


def _world_domains(world: dict) -> tuple[str, ...]:
    from capgate.data.synth_world import WorldConfig

    try:
        return tuple(WorldConfig.from_dict(world.get("config") or {}).domainnet_domains)
    except (CapgateError, TypeError, ValueError):
        return DOMAINNET_DOMAINS


def _missing_file(ref: DatasetRef, path: Path) -> Path | None:
    """The first file or folder the format's reader needs under ``path`` that is not there."""
    fmt, split, modality = ref.format, ref.split, ref.modality or "rgb"
    if fmt == "llvip":
        need = [path / "Annotations", path / LLVIP_FOLDERS[modality] / split]
    elif fmt.startswith("flir"):
        try:
            version = fmt[5:] or detect_flir_version(path)
        except CapgateError:
            return path / "images_rgb_train"
        need = ([flir_v2_folder(path, split, modality) / "coco.json"] if version == "v2"
                else [path / V1_SPLIT_FOLDERS[split] / "thermal_annotations.json"])
    elif fmt == "coco":
        need = list(coco_split_paths(path, split))
    elif fmt == "imagenet":
        need = [imagenet_image_root(path) / split]
    elif fmt == "domainnet":
        need = [path / str(ref.domain), path / f"{ref.domain}_{split}.txt"]
    else:
        return None
    missing = next((p for p in need if not p.exists()), None)
    if missing is None and need[-1].is_dir() and not any(need[-1].iterdir()):
        return need[-1] / "*"  # the folder is there but empty
    return missing


def _roots(plan: GridPlan, unset: list[str]) -> list[str]:
    """Each dataset's split/modality/domain against its reader's values, its root against the
    filesystem and the files its format needs (one problem per root or split, first key named)."""
    problems, seen_roots, seen_refs, seen_files = [], set(), set(), set()
    for ref, key in _dataset_refs(plan):
        if ref in seen_refs:
            continue
        seen_refs.add(ref)
        values = _value_problems(ref, key, plan.study.world)
        problems += values
        if ref.root == SYNTHETIC:
            continue
        missing = missing_variables(ref.root)
        if missing:
            if (ref.format, ref.root) not in seen_roots:
                unset.append(f"spec key '{key}': dataset root {ref.root!r} ({ref.format}) needs environment variable "
                             f"{', '.join(missing)}; export {missing[0]}=/path/to/{ref.format} before the command")
            seen_roots.add((ref.format, ref.root))
            continue
        path = resolve_root(ref, None)
        if not path.is_dir():
            if (ref.format, ref.root) not in seen_roots:
                problems.append(f"spec key '{key}': dataset root {path} ({ref.format}, from {ref.root!r}) does not exist; point "
                                f"the spec's datasets root (or its environment variable) at the {ref.format} folder")
            seen_roots.add((ref.format, ref.root))
            continue
        seen_roots.add((ref.format, ref.root))
        gone = None if values else _missing_file(ref, path)
        if gone is not None and gone not in seen_files:  # an empty root: its first missing folder, once
            seen_files.add(gone)
            what = "holds no files" if gone.name == "*" else "is missing"
            layout = _LAYOUT["flir" if ref.format.startswith("flir") else ref.format]
            problems.append(f"spec key '{key}': {gone.parent if gone.name == '*' else gone} {what}, so the {ref.format} "
                            f"split {ref.split!r} cannot be read from {path} (from {ref.root!r}); fix: point the "
                            f"dataset's root at the folder that holds {layout}")
    return problems


def _weights(plan: GridPlan, unset: list[str]) -> list[str]:
    files: dict[str, str] = {}
    for init in plan.study.inits:
        if init.checkpoint:
            files.setdefault(init.checkpoint, f"inits.{init.name}.checkpoint")
    rungs: dict[str, set[str] | None] = {text: None for text in files}  # None: every rung
    for st in plan.stages:  # expanded: a ``{rung}`` in the path is that rung's own file
        if st.checkpoint:
            files.setdefault(st.checkpoint, f"pretraining.{st.name}.checkpoint")
            rungs.setdefault(st.checkpoint, set())
            if rungs[st.checkpoint] is not None:
                rungs[st.checkpoint].add(st.rung)
    problems = []
    for text, key in files.items():
        if missing := missing_variables(text):
            unset.append(f"spec key '{key}': weights file {text!r} needs environment variable "
                         f"{', '.join(missing)}; export {missing[0]}=/path/to/the/weights before the command")
            continue
        path = Path(os.path.expandvars(text)).expanduser()
        if not path.is_file():
            problems.append(f"spec key '{key}': weights file {path} does not exist; fix the path or train "
                            f"the weights with a pretraining stage instead")
            continue
        problems += _check_weights(path, key, plan, rungs[text])
    return problems


def _check_weights(path: Path, key: str, plan: GridPlan, only: set[str] | None = None) -> list[str]:
    """Load ``path`` safely and initialize each rung's model (those in ``only`` when given) from it
    (nothing is kept)."""
    from capgate.models import initialize
    from capgate.models.checkpoint import read_weights
    from capgate.train.task import get_task

    try:
        read_weights(path)  # torch.load(weights_only=True) or safetensors
    except CapgateError as exc:
        return [f"spec key '{key}': {exc}"]
    task = get_task(plan.study.task)
    problems, seen = [], set()
    for run in plan.runs:
        if run.rung in seen or (only is not None and run.rung not in only):
            continue
        seen.add(run.rung)
        model = task.build_model(run.build_rung(), len(run.classes), run.recipe.resolution)
        try:
            initialize(model, path, part="backbone")
        except CapgateError as exc:
            problems.append(f"spec key '{key}': weights file {path} does not fit rung {run.rung}: {exc}")
    return problems


def preflight(plan: GridPlan, strict: bool = True) -> tuple[list[str], list[str]]:
    """``(problems, unchecked)``: every problem found in the plan's dataset roots and weights files,
    and the roots that could not be checked because their ``${VAR}`` is not set. ``strict`` (the
    driver about to start) counts an unset variable as a problem; a dry run only lists it."""
    unset: list[str] = []
    problems = _roots(plan, unset) + _weights(plan, unset)
    return (problems + unset, []) if strict else (problems, unset)


#: Error names (``train.run`` records ``"<name>: <message>"``) that a retry cannot fix: the input is unusable.
INPUT_ERRORS = ("DataError", "CheckpointError", "SpecError", "InputError")


def raise_on_unusable_data(failed: list[tuple[str, str]], n_runs: int, where: object) -> None:
    """After a grid: raise :class:`DataError` (exit 2) when failed runs ``(run_id, error)`` failed on
    unusable data or weights, naming each error (the fix) instead of a retry hint that cannot help."""
    bad = [(rid, err.strip().splitlines()[0][:300]) for rid, err in failed
           if err.strip().split(":", 1)[0] in INPUT_ERRORS]
    if bad:
        raise DataError(f"{len(bad)} of {n_runs} runs failed on unusable data or weights (recorded in {where}); "
                        f"rerunning cannot help: fix what each error names, then run the same command again:\n"
                        + "\n".join(f"  {rid}: {err}" for rid, err in bad))
