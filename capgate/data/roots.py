"""Where a dataset named in a spec lies on disk: the synthetic world, or a path with ``${VAR}``s.

A spec's dataset ``root`` is either :data:`SYNTHETIC` (the tiny world capgate generates, one
sub-folder per format) or a path that may use ``${ENV_VAR}``. Only this module reads the
environment for dataset paths; it is called when data is opened, never for a plain dry run.
On a cluster the driver resolves every root once and the mapping travels with each trial
(``roots``), so a worker never reads its own environment for them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from collections.abc import Mapping
from typing import Protocol

from capgate.errors import SpecError

__all__ = ["SYNTHETIC", "resolve_root", "missing_variables"]

#: The ``root`` value that means "the synthetic tiny world".
SYNTHETIC = "synthetic"


class _Ref(Protocol):
    format: str
    root: str


def missing_variables(root: str) -> list[str]:
    """The ``${VAR}`` names in ``root`` that the environment does not set."""
    return [v for v in re.findall(r"\$\{(\w+)\}", root) if v not in os.environ]


def resolve_root(ref: _Ref, world_root: Path | None, roots: Mapping[str, str] | None = None) -> Path:
    """The dataset's root folder: the synthetic world's sub-folder, ``roots[ref.root]`` when the
    driver resolved it, or the path with ``${VAR}``s expanded. ``ref`` is anything with ``format``
    and ``root`` (a spec's ``DatasetRef``). Raises :class:`SpecError` naming the variable when it
    is not set."""
    if ref.root == SYNTHETIC:
        if world_root is None:
            raise SpecError(f"dataset {ref.format} uses the synthetic world but no world root was given")
        return Path(world_root) / ref.format
    if roots and ref.root in roots:
        return Path(roots[ref.root])
    missing = missing_variables(ref.root)
    if missing:
        raise SpecError(f"dataset root {ref.root!r} needs environment variable(s) {', '.join(missing)}; "
                        f"set them to the dataset folder (e.g. export {missing[0]}=/data/{ref.format})")
    return Path(os.path.expandvars(ref.root)).expanduser()
