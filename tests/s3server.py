"""A real S3-compatible server for the tests: moto in server mode, on 127.0.0.1, in its own
process (``python -m moto.server``). Tests talk to it over HTTP exactly as to AWS S3."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from localserver import free_port, local_server


@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """Start moto's S3 server; yields the AWS_* environment that points clients at it."""
    pytest.importorskip("moto.server", reason="moto[server] is in the dev extra: pip install -e '.[dev]'")
    port = free_port()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    with local_server([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, "moto server"):
        yield env


def make_bucket(env: dict[str, str]) -> str:
    """A fresh bucket on the server; returns its name."""
    import boto3

    name = f"cg-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                 aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    with s3_server() as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
