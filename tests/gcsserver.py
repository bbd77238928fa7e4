"""A GCS-compatible server for the tests: gcp-storage-emulator (the JSON API of Google Cloud Storage,
in memory) on 127.0.0.1, in its own process. pyarrow's GCS client talks to it over HTTP exactly as
to Google Cloud Storage, pointed there by ``STORAGE_EMULATOR_HOST``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gcs_server() -> Iterator[tuple[dict[str, str], str]]:
    """Start the emulator with a fresh default bucket; yields ``(environment, bucket)``."""
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is in the dev extra: pip install -e '.[dev]'")
    port, bucket = _free_port(), f"cg-{uuid.uuid4().hex[:10]}"
    proc = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "-H", "127.0.0.1", "--port",
                             str(port), "--in-memory", "--default-bucket", bucket, "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > 30:
                    raise RuntimeError("gcp-storage-emulator did not start") from None
                time.sleep(0.1)
        yield {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}, bucket
    finally:
        proc.terminate()
        proc.wait(timeout=10)
