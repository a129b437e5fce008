"""An S3 endpoint for tests: moto's server mode on a loopback port.

moto is a stand-in for S3 (it speaks the S3 REST API, but does not check signatures,
checksums or encryption keys the way S3 does): tests against it are API-contract tests of
our S3 code path, not a claim about S3 itself. moto is a declared dev dependency, so an
import failure here fails the tests that use it rather than skipping them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class MotoS3:
    endpoint_url: str

    def client(self) -> Any:
        """A boto3 S3 client for the server, with test credentials (never the chain)."""
        return boto3.session.Session(region_name=REGION, **CREDENTIALS).client(
            "s3", endpoint_url=self.endpoint_url,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"secinf-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def moto_s3() -> Iterator[MotoS3]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield MotoS3(f"http://{host}:{port}")
    finally:
        server.stop()
