"""Content hashes: the one canonical JSON text every id in capgate is taken of.

``run_id``, ``spec_hash``, pretraining ``stage_id``, the synthetic world's folder and cache keys
are all :func:`short_hash` of plain data. Changing :func:`canonical_json` changes every id, so it
is kept here, alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["canonical_json", "short_hash", "file_sha256"]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the text every hash in capgate is taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 12) -> str:
    """First ``n`` hex digits of the sha256 of ``canonical_json(obj)``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:n]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (checkpoints, results tables: what a report or a load names)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
