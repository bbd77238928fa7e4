"""A spec's ``classes``: the names listed, or ``from_data``, the first train set's class list read
from its dataset's class index file at load (Tiny ImageNet: the 200 wnids of ``wnids.txt``, in
file order, rather than pasting them). The root must be set (``${VAR}`` exported) and hold the
dataset; else a :class:`SpecError` names the variable or file and the fix (exit 2).
"""

from __future__ import annotations

from typing import Any

from capgate.data.registry import dataset_classes
from capgate.data.roots import SYNTHETIC, resolve_root
from capgate.errors import DataError, SpecError
from capgate.spec.sections import DatasetRef

__all__ = ["FROM_DATA", "check_classes", "classes_from_data"]

#: The ``classes`` value that reads the class list from the data.
FROM_DATA = "from_data"


def check_classes(raw: Any) -> None:
    """``raw`` is a non-empty list of names or :data:`FROM_DATA`."""
    if raw != FROM_DATA and (not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw)):
        raise SpecError(f"spec key 'classes' must be a non-empty list of class names or {FROM_DATA!r}, got {raw!r}")


def classes_from_data(ref: DatasetRef) -> list[str]:
    """The class list of ``ref``'s dataset, from its class index (:func:`~capgate.data.registry.dataset_classes`)."""
    if ref.root == SYNTHETIC:
        raise SpecError(f"spec key 'classes' = {FROM_DATA} reads a dataset on disk, but the train set's "
                        f"{ref.format} root is 'synthetic' (generated at run time); fix: list the class names")
    try:
        return list(dataset_classes(ref.format, resolve_root(ref, None)))
    except (DataError, SpecError) as exc:
        raise SpecError(f"spec key 'classes' = {FROM_DATA}: {exc}") from None
