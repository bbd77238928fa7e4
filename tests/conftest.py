"""Suite-wide hygiene: what the tests leave outside pytest's own tmp_path is removed at the end."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _ray_dirs() -> set[Path]:
    from capgate.grid.driver import RAY_TMP_PARENT, RAY_TMP_PREFIX

    return set(Path(RAY_TMP_PARENT).glob(f"{RAY_TMP_PREFIX}*"))  # the driver's temp dirs for a local Ray


def _in_use(path: Path) -> bool:
    """Whether a running process names ``path`` on its command line (a live Ray's raylet, GCS and
    workers are started with their session folder as an argument)."""
    needle = str(path).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


@pytest.fixture(scope="session", autouse=True)
def _no_scratch_left_behind() -> Iterator[None]:
    """Grids on object storage train in a per-store scratch folder under the temp dir (a cache kept
    for the next run of that store, see ``capgate.grid.trial``); the tests' buckets are throwaway,
    so the scratch folders they created go when the session ends. So do the Ray temp dirs of the
    drivers the fault tests kill with SIGKILL (a driver that ends removes its own)."""
    scratch = Path(tempfile.gettempdir()) / "capgate-scratch"
    before = set(scratch.iterdir()) if scratch.is_dir() else set()
    ray_before = _ray_dirs()
    yield
    for p in (set(scratch.iterdir()) if scratch.is_dir() else set()) - before:
        shutil.rmtree(p, ignore_errors=True)
    for p in _ray_dirs() - ray_before:
        if not _in_use(p):
            shutil.rmtree(p, ignore_errors=True)
