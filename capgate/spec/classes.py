"""A spec's class lists: the study's ``classes`` and each train set's own ``classes``.

Each is a list of names, or ``from_data``: the class list read from a dataset's class index file at
load (Tiny ImageNet: the 200 wnids of ``wnids.txt``, in file order, rather than pasting them). The
study's ``from_data`` reads the FIRST train set's dataset; a train set's ``from_data`` reads its own.
A train set without ``classes`` uses the study's; the study's may be left out only when every train set
declares its own. A run's heads, its class check and the scoring of its eval sets use its train set's
list (``RunSpec.classes``), so one study can hold CIFAR-10, CIFAR-100 and Tiny ImageNet. The root of a
``from_data`` dataset must be set (``${VAR}`` exported, even for ``--dry-run``: the names are part of the
run ids) and hold the dataset; else a :class:`SpecError` names the key, the variable or file and the fix
(exit 2).
"""

from __future__ import annotations

from typing import Any

from capgate.data.registry import dataset_classes
from capgate.data.roots import SYNTHETIC, resolve_root
from capgate.errors import DataError, SpecError
from capgate.spec.sections import DatasetRef, TrainSet

__all__ = ["FROM_DATA", "check_classes", "classes_from_data", "resolve_classes"]

#: The ``classes`` value that reads the class list from the data.
FROM_DATA = "from_data"


def check_classes(raw: Any, key: str = "classes") -> None:
    """``raw`` (the value of spec key ``key``) is a non-empty list of names or :data:`FROM_DATA`."""
    if raw != FROM_DATA and (not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw)):
        raise SpecError(f"spec key '{key}' must be a non-empty list of class names or {FROM_DATA!r}, got {raw!r}")


def classes_from_data(ref: DatasetRef, key: str = "classes") -> list[str]:
    """The class list of ``ref``'s dataset, from its class index (:func:`~capgate.data.registry.dataset_classes`)."""
    if ref.root == SYNTHETIC:
        raise SpecError(f"spec key '{key}' = {FROM_DATA} reads a dataset on disk, but the train set's "
                        f"{ref.format} root is 'synthetic' (generated at run time); fix: list the class names")
    try:
        return list(dataset_classes(ref.format, resolve_root(ref, None)))
    except (DataError, SpecError) as exc:
        raise SpecError(f"spec key '{key}' = {FROM_DATA}: {exc}") from None


def _resolved(raw: Any, key: str, ref: DatasetRef) -> tuple[str, ...]:
    check_classes(raw, key)
    return tuple(classes_from_data(ref, key) if raw == FROM_DATA else raw)


def resolve_classes(top: Any, raw_train_sets: list[dict[str, Any]], train_sets: tuple[TrainSet, ...],
                    class_map: Any = None) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """``(study classes, per-train-set classes)`` of a spec: ``top`` is the top-level ``classes`` (None when
    absent), ``raw_train_sets`` the YAML entries of ``train_sets`` (with their optional ``classes``).

    The study's list is ``()`` when absent; the per-train-set tuple is ``()`` when no train set declares
    its own (every run uses the study's list, as before per-train-set lists existed), else one list per
    train set in ``train_sets`` order. A dict ``class_map``'s targets must equal every list in use.
    """
    study = () if top is None else _resolved(top, "classes", train_sets[0].data)
    own = [t.get("classes") for t in raw_train_sets]
    missing = [ts.name for ts, c in zip(train_sets, own) if c is None]
    if top is None and missing:
        raise SpecError(f"spec key 'classes' is missing and train set(s) {', '.join(missing)} declare no "
                        f"'classes' of their own; fix: add a top-level 'classes: [...]' (or 'classes: {FROM_DATA}') "
                        f"or give each train set its own 'classes'")
    per_set = () if len(missing) == len(own) else tuple(
        study if c is None else _resolved(c, f"train_sets[{i}].classes", ts.data)
        for i, (ts, c) in enumerate(zip(train_sets, own)))
    if isinstance(class_map, dict):
        for names in per_set or (study,):
            if list(class_map) != list(names):
                raise SpecError(f"spec key 'class_map' targets {list(class_map)} must equal 'classes' {list(names)}")
    return study, per_set
