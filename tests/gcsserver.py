"""A GCS-compatible server for the tests: gcp-storage-emulator (the JSON API of Google Cloud Storage,
in memory) on 127.0.0.1, in its own process. pyarrow's GCS client talks to it over HTTP exactly as
to Google Cloud Storage, pointed there by ``STORAGE_EMULATOR_HOST``."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from localserver import free_port, local_server


@contextmanager
def gcs_server(bucket: str | None = None) -> Iterator[tuple[dict[str, str], str]]:
    """Start the emulator with a default bucket (``bucket``, else a fresh name); yields ``(environment, bucket)``."""
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is in the dev extra: pip install -e '.[dev]'")
    port, bucket = free_port(), bucket or f"cg-{uuid.uuid4().hex[:10]}"
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "-H", "127.0.0.1", "--port", str(port),
            "--in-memory", "--default-bucket", bucket, "-q"]
    with local_server(argv, port, "gcp-storage-emulator"):
        yield {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}, bucket
