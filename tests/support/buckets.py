"""A real S3 endpoint for the storage tests: moto's server on a free loopback port, started by
the tests, or the bucket ``MEDIAHOOKS_TEST_S3_URL`` names (MinIO, Garage, ...), reached with the
standard AWS variables already set. Each test gets a bucket (moto) or a prefix (given bucket) of
its own."""

from __future__ import annotations

import os
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

GIVEN_URL = os.environ.get("MEDIAHOOKS_TEST_S3_URL", "")
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "mediahooks-test",
    "AWS_SECRET_ACCESS_KEY": "mediahooks-test-secret",
    "AWS_REGION": "us-east-1",
}


@dataclass
class Endpoint:
    """A moto server that can be stopped and started again on the same port (its buckets live
    in this process, so they survive)."""

    host: str
    port: int
    server: ThreadedMotoServer

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        # moto's start() waits, without end, for a server that could not bind: make sure the
        # port is still free first (another program may have taken it meanwhile).
        deadline = time.monotonic() + 10
        while not port_free(self.host, self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} was taken while the bucket was away")
            time.sleep(0.2)
        self.server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self.server.start()

    def env(self) -> dict[str, str]:
        return {**MOTO_ENV, "AWS_ENDPOINT_URL": self.url}


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@contextmanager
def moto_endpoint() -> Iterator[Endpoint]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = Endpoint(host, port, server)
    try:
        yield endpoint
    finally:
        endpoint.stop()


def new_bucket(endpoint: Endpoint) -> str:
    """A fresh bucket's storage URL (moto asks no signature to create one)."""
    name = f"media-{uuid.uuid4().hex[:16]}"
    request = urllib.request.Request(f"{endpoint.url}/{name}", method="PUT")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return f"s3://{name}/clips"


def fresh_prefix() -> str:
    """A fresh prefix in the bucket ``MEDIAHOOKS_TEST_S3_URL`` names."""
    return GIVEN_URL.rstrip("/") + f"/test-{uuid.uuid4().hex[:12]}"
