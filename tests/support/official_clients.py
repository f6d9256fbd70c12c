"""Running the platform's official clients, unchanged, against a local server.

Both clients hard-code `https://api.millicast.com` (port 443). Three small pieces make that
name reach our server without a byte leaving loopback and without touching client code:

- `tls_front`: a TLS-terminating byte pipe on 127.0.0.1 with a certificate for
  api.millicast.com from a throwaway CA, in front of the server's plain HTTP port;
- for the Python client, a `sitecustomize` on the child's PYTHONPATH: `socket.getaddrinfo`
  answers 127.0.0.1 and the front's port for api.millicast.com (aiohttp connects to the port the
  resolver returns) and refuses every other name; the client builds its TLS context from
  `certifi.where()` only (SSL_CERT_FILE is ignored), so the hook points that at the test CA;
- for the Node client, a `--require` hook: `tls.connect` (what Node's https agent calls) goes to
  127.0.0.1 and the front's port for api.millicast.com, keeping it as the TLS server name, and
  refuses every other host; `dns.lookup` refuses every name; the CA comes from
  NODE_EXTRA_CA_CERTS, which Node reads itself.

The npm package is installed once from the registry into `.cache/official-clients/` at the
project's root and reused; Node or the package missing fails the test with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme

PLATFORM_HOST = "api.millicast.com"
NODE_PACKAGE = "@dolbyio/dolbyio-rest-apis-client"
NODE_PACKAGE_VERSION = "5.0.1"
NODE_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "official-clients"

PYTHON_HOOK = '''\
"""Loaded by the client's interpreter only: api.millicast.com is the local TLS front."""

import os
import socket

import certifi

_HOST = "api.millicast.com"
_PORT = int(os.environ["MEDIAHOOKS_FRONT_PORT"])
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_getaddrinfo = socket.getaddrinfo


def _loopback_only(host, port, *args, **kwargs):
    if host == _HOST:
        return _getaddrinfo("127.0.0.1", _PORT, *args, **kwargs)
    if host in _LOOPBACK or host is None:
        return _getaddrinfo(host, port, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, f"{host}: only {_HOST} resolves in this test")


socket.getaddrinfo = _loopback_only
certifi.where = lambda: os.environ["MEDIAHOOKS_TEST_CA"]
'''

NODE_HOOK = """\
// Loaded with --require by the client's node only: api.millicast.com is the local TLS front.
'use strict';
const tls = require('tls');
const dns = require('dns');
const HOST = 'api.millicast.com';
const PORT = Number(process.env.MEDIAHOOKS_FRONT_PORT);
const connect = tls.connect;
tls.connect = function (...args) {
  const options = args.find((arg) => arg !== null && typeof arg === 'object');
  const host = (options && (options.host || options.servername)) || args[1];
  if (host !== HOST) {
    throw new Error(`${host}: only ${HOST} is reachable in this test`);
  }
  return connect.call(this, { ...options, host: '127.0.0.1', port: PORT, servername: HOST });
};
dns.lookup = function (hostname, options, callback) {
  const done = typeof options === 'function' ? options : callback;
  const error = new Error(`${hostname}: no name resolves in this test`);
  error.code = 'ENOTFOUND';
  process.nextTick(done, error);
};
"""


@contextlib.asynccontextmanager
async def tls_front(upstream_port: int, ca: trustme.CA) -> AsyncIterator[int]:
    """A TLS front for api.millicast.com on 127.0.0.1, piping bytes to the plain HTTP port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(PLATFORM_HOST).configure_cert(context)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def client_environment(directory: Path, front_port: int, ca: trustme.CA) -> dict[str, str]:
    """The environment of a client process: the hooks, the CA, the front's port."""
    ca_file = directory / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    hooks = directory / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(PYTHON_HOOK)
    (hooks / "loopback.js").write_text(NODE_HOOK)
    env = dict(os.environ)
    env.update(
        MEDIAHOOKS_FRONT_PORT=str(front_port),
        MEDIAHOOKS_TEST_CA=str(ca_file),
        NODE_EXTRA_CA_CERTS=str(ca_file),
        PYTHONPATH=str(hooks),
        NODE_PATH=str(NODE_CACHE / "node_modules"),
    )
    return env


def node_client() -> Path:
    """The npm package, installed once into the cache; fails the test when it cannot be."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "The official Node client test needs Node.js and npm: `./dev test` installs Debian's "
            "nodejs and npm packages (apt-get install nodejs npm)."
        )
    package = NODE_CACHE / "node_modules" / NODE_PACKAGE
    manifest = package / "package.json"
    if manifest.exists() and json.loads(manifest.read_text())["version"] == NODE_PACKAGE_VERSION:
        return package
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    package_spec = f"{NODE_PACKAGE}@{NODE_PACKAGE_VERSION}"
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NODE_CACHE), package_spec],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 or not manifest.exists():
        pytest.fail(
            f"Could not install {NODE_PACKAGE}@{NODE_PACKAGE_VERSION} from the npm registry "
            f"into {NODE_CACHE} (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    return package


async def run_client(command: list[str], env: dict[str, str], timeout: float = 120) -> Any:
    """Run a client script; it prints one JSON document (what each call answered)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, (
        f"{command[0]} client script failed ({process.returncode}):\n{err.decode()[-4000:]}"
    )
    return json.loads(out)


def python_command(script: Path) -> list[str]:
    return [sys.executable, str(script)]


def node_command(script: Path, hooks: Path) -> list[str]:
    node = shutil.which("node")
    assert node is not None
    return [node, "--require", str(hooks / "loopback.js"), str(script)]
