"""Checks a dry run can make without training: dataset roots and local weights files.

:func:`preflight` returns the problems (each names the file or variable and the fix); the
driver refuses to start when there is one, and ``run-grid --dry-run`` lists them (exit 2). A root
whose ``${VAR}`` is unset cannot be checked: a dry run lists it as unchecked (a dry run works
without any data), the driver refuses to start. Dataset roots
of real data must exist; a local weights file (an init's or a stage's ``checkpoint``) must exist,
load with ``torch.load(weights_only=True)`` and cover enough of each rung's backbone. Only that
last check imports torch, and only when the spec names a weights file.
"""

from __future__ import annotations

import os
from pathlib import Path

from capgate.data.roots import SYNTHETIC, missing_variables, resolve_root
from capgate.errors import CapgateError
from capgate.grid.plan import GridPlan

__all__ = ["preflight"]


def _roots(plan: GridPlan, unset: list[str]) -> list[str]:
    refs = {}
    for ts in plan.study.train_sets:
        for ref in ts.datasets:
            refs.setdefault((ref.format, ref.root), (ref, f"train set {ts.name}"))
    for st in plan.study.stages:
        if st.data is not None:
            refs.setdefault((st.data.format, st.data.root), (st.data, f"pretraining stage {st.name}"))
    problems = []
    for (fmt, root), (ref, user) in refs.items():
        if root == SYNTHETIC:
            continue
        missing = missing_variables(root)
        if missing:
            unset.append(f"{user}: dataset root {root!r} ({fmt}) needs environment variable "
                         f"{', '.join(missing)}; export {missing[0]}=/path/to/{fmt} before the command")
            continue
        path = resolve_root(ref, None)
        if not path.is_dir():
            problems.append(f"{user}: dataset root {path} ({fmt}, from {root!r}) does not exist; point the "
                            f"spec's datasets root (or its environment variable) at the {fmt} folder")
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
        model = task.build_model(run.build_rung(), len(plan.study.classes), run.recipe.resolution)
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
