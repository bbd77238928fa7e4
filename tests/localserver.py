"""A server process on 127.0.0.1 for the tests (the S3 and GCS stand-ins): started, waited for
until its port accepts connections, and stopped when the block ends."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server(argv: list[str], port: int, what: str, timeout: float = 30) -> Iterator[None]:
    """Run ``argv`` (a server that listens on 127.0.0.1:``port``) until the block ends."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"{what} did not start: {' '.join(argv)}") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)
