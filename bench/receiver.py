"""The webhook endpoint of the delivery benchmark, run in a process of its own.

It answers every POST with 200 and an empty body and remembers, for each request, its path, its
message id (the `webhook-id` header, or `message-id` for the baselines that send no Standard
Webhooks headers) and `time.time()` at arrival. The benchmark drives it over HTTP:

- ``GET /_bench/count?prefix=/run-1/`` -> ``{"distinct": n}``: (path, id) pairs seen on paths
  under the prefix, so that a late request of an earlier run is never counted in this one;
- ``GET /_bench/records?prefix=/run-1/`` -> ``{"records": [[path, id, arrived_at], ...]}``;
- ``POST /_bench/reset`` forgets everything.

Run: ``python bench/receiver.py [--port 0]``; it prints ``READY <port>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

from aiohttp import web

CONTROL = "/_bench"


class Records:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []
        # Distinct (path, id) pairs per first path segment: counting stays cheap while polled.
        self.distinct: dict[str, set[tuple[str, str]]] = {}

    async def receive(self, request: web.Request) -> web.Response:
        # Stamp first: the figure we want is when the request reached the endpoint.
        arrived = time.time()
        await request.read()
        headers = request.headers
        msg_id = headers.get("webhook-id") or headers.get("message-id") or ""
        path = request.path
        self.rows.append((path, msg_id, arrived))
        self.distinct.setdefault(_run_of(path), set()).add((path, msg_id))
        return web.Response(status=200)

    async def count(self, request: web.Request) -> web.Response:
        seen = self.distinct.get(_run_of(request.query.get("prefix", "")), set())
        return web.json_response({"distinct": len(seen)})

    async def records(self, request: web.Request) -> web.Response:
        prefix = request.query.get("prefix", "")
        return web.json_response({"records": [r for r in self.rows if r[0].startswith(prefix)]})

    async def reset(self, _request: web.Request) -> web.Response:
        self.rows = []
        self.distinct = {}
        return web.json_response({"ok": True})


def _run_of(path: str) -> str:
    """``/run-1/hook/0`` -> ``/run-1/``: the part of a path that names one run."""
    return "/" + path.lstrip("/").split("/", 1)[0] + "/"


def make_app(records: Records) -> web.Application:
    app = web.Application()
    app.router.add_get(f"{CONTROL}/count", records.count)
    app.router.add_get(f"{CONTROL}/records", records.records)
    app.router.add_post(f"{CONTROL}/reset", records.reset)
    app.router.add_post("/{tail:.*}", records.receive)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(make_app(Records()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print(f"READY {runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    loop_factory = None
    # uvloop (installed with uvicorn[standard]) keeps the endpoint from being the bottleneck.
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory) as r:
        r.run(serve(port))


if __name__ == "__main__":
    main()
