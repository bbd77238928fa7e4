"""Where a dataset named in a spec lies on disk: the synthetic world, or a path with ``${VAR}``s.

A spec's dataset ``root`` is either :data:`SYNTHETIC` (the tiny world capgate generates, one
sub-folder per format) or a path that may use ``${ENV_VAR}``. A synthetic root of a benchmark format
(CIFAR-10/100, Tiny ImageNet: :data:`BENCHMARK_FORMATS`) is the benchmark world of
:mod:`capgate.data.synth_benchmark` instead (default config, the tiny world's seed 0), generated on
first use beside the tiny world (``<world root>-benchmark``), so the tiny world's bytes and ids
stay as they were. Only this module reads the
environment for dataset paths; it is called when data is opened, never for a plain dry run (a
spec's ``classes: from_data`` opens the class index when the spec is loaded).
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

__all__ = ["SYNTHETIC", "BENCHMARK_FORMATS", "resolve_root", "missing_variables"]

#: The ``root`` value that means "the synthetic tiny world".
SYNTHETIC = "synthetic"
#: Formats whose synthetic root is the benchmark world: format -> the world's dataset folder.
BENCHMARK_FORMATS: dict[str, str] = {"cifar10": "cifar10", "cifar100": "cifar100", "cifar100_coarse": "cifar100",
                                     "tinyimagenet": "tinyimagenet"}


class _Ref(Protocol):
    format: str
    root: str


def missing_variables(root: str) -> list[str]:
    """The ``${VAR}`` names in ``root`` that the environment does not set."""
    return [v for v in re.findall(r"\$\{(\w+)\}", root) if v not in os.environ]


def resolve_root(ref: _Ref, world_root: Path | None, roots: Mapping[str, str] | None = None) -> Path:
    """The dataset's root folder: the synthetic world's sub-folder (the benchmark world's for a
    benchmark format), ``roots[ref.root]`` when the
    driver resolved it, or the path with ``${VAR}``s expanded. ``ref`` is anything with ``format``
    and ``root`` (a spec's ``DatasetRef``). Raises :class:`SpecError` naming the variable when it
    is not set."""
    if ref.root == SYNTHETIC:
        if world_root is None:
            raise SpecError(f"dataset {ref.format} uses the synthetic world but no world root was given")
        if ref.format in BENCHMARK_FORMATS:
            from capgate.data.synth_benchmark import ensure_benchmark_world

            bench = ensure_benchmark_world(Path(f"{world_root}-benchmark"))  # a no-op once it is complete
            return bench.dataset_root(BENCHMARK_FORMATS[ref.format])
        return Path(world_root) / ref.format
    if roots and ref.root in roots:
        return Path(roots[ref.root])
    missing = missing_variables(ref.root)
    if missing:
        raise SpecError(f"dataset root {ref.root!r} needs environment variable(s) {', '.join(missing)}; "
                        f"set them to the dataset folder (e.g. export {missing[0]}=/data/{ref.format})")
    return Path(os.path.expandvars(ref.root)).expanduser()
