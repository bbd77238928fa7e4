"""The one atomic writer: every file capgate writes goes through here.

Guarantee: a reader sees either the old file or the whole new one, never a torn write. The data
goes to a uniquely named temp file in the destination's own folder (so ``os.replace`` is a rename
on one filesystem), is flushed and fsynced, and replaces the destination; on any failure the temp
file is removed. Files honour the umask (``tempfile.mkstemp`` alone would make them 0600).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["file_mode", "atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json"]


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_umask_mode = file_mode


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any], *, fsync: bool = True,
                 exclusive: bool = False) -> Path:
    """Call ``write(fileobj)`` on a temp file beside ``path``, then move it over ``path``.

    ``write`` receives a binary file object. Parent folders are created. Returns ``path``.
    ``exclusive=True`` creates ``path`` only if it is absent (a hard link, atomic on POSIX
    filesystems) and raises ``FileExistsError`` otherwise: a second writer never replaces it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, _umask_mode())
        if exclusive:
            os.link(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(data), fsync=fsync)


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = True) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 1, allow_nan: bool = True,
                      fsync: bool = True) -> Path:
    """Write ``obj`` as JSON (keys in insertion order) to ``path`` atomically; ``allow_nan=False``
    refuses NaN/inf (strict JSON for files other tools read)."""
    text = json.dumps(obj, indent=indent, allow_nan=allow_nan, default=str)
    return atomic_write_text(path, text + "\n", fsync=fsync)
