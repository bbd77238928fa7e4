"""Suite-wide hygiene: what the tests leave outside pytest's own tmp_path is removed at the end."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _no_scratch_left_behind() -> Iterator[None]:
    """Grids on object storage train in a per-store scratch folder under the temp dir (a cache kept
    for the next run of that store, see ``capgate.grid.trial``); the tests' buckets are throwaway,
    so the scratch folders they created go when the session ends."""
    scratch = Path(tempfile.gettempdir()) / "capgate-scratch"
    before = set(scratch.iterdir()) if scratch.is_dir() else set()
    yield
    for p in (set(scratch.iterdir()) if scratch.is_dir() else set()) - before:
        shutil.rmtree(p, ignore_errors=True)
