"""A server process on 127.0.0.1 for the tests (the S3 and GCS stand-ins): started, waited for
until its port accepts connections, and stopped when the block ends (its whole process group:
a server such as mlflow's runs its app in child processes)."""

from __future__ import annotations

import os
import signal
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
    """Run ``argv`` (a server that listens on 127.0.0.1:``port``) until the block ends; a server
    that has not stopped 30 s after SIGTERM is killed."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
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
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:  # the server and its children are gone already
        pass
