"""The receiver SDK at work: the ASGI app and the FastAPI recipes under a real server, and a
footprint free of the server's dependencies (checked in a fresh interpreter)."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import uvicorn
from fastapi import FastAPI, Request, Response

from mediahooks import signing
from mediahooks.receiver import (
    Delivery,
    MediaHook,
    Receiver,
    Rejected,
    WebhookApp,
)
from support.footprint import BLOCKER
from support.signatures import VECTOR_BODY

# The app's secret and another one, and a body it accepts (the platform's test vector).
SECRET = base64.b64encode(b"receiver-corpus-secret-32-bytes!").decode()
OTHER = base64.b64encode(b"some-other-secret-of-32-bytes!!!").decode()
BODY = VECTOR_BODY


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="auto")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def post(url: str, body: bytes, hdrs: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=hdrs) as resp:
        return resp.status, await resp.text()


def signed(body: bytes = BODY, secret: str = SECRET, msg_id: str = "msg_a") -> dict[str, str]:
    return signing.sign([secret], msg_id, int(time.time()), body)


async def test_the_asgi_app_alone_under_uvicorn() -> None:
    got: list[Delivery] = []

    def on_hook(delivery: Delivery) -> None:  # a plain function runs in a thread
        if delivery.webhook_id == "msg_boom":
            raise RuntimeError("the handler failed")
        got.append(delivery)

    async with served(WebhookApp(SECRET, on_hook)) as url:
        assert await post(url, BODY, signed()) == (204, "")
        status, text = await post(url, BODY + b" ", signed())
        assert status == 401 and "BadSignature" in text
        assert (await post(url, BODY, signed(secret=OTHER)))[0] == 401
        old = signing.sign([SECRET], "msg_a", int(time.time()) - 600, BODY)
        status, text = await post(url, BODY, old)
        assert status == 401 and "TimestampTooOld" in text
        not_a_hook = b'{"hello": "world"}'
        assert (await post(url, not_a_hook, signed(not_a_hook)))[0] == 400
        assert (await post(url, BODY, signed(msg_id="msg_boom")))[0] == 500
        assert (await post(url, b"x" * (9 * 1024 * 1024), signed()))[0] == 413
        async with aiohttp.ClientSession() as s, s.get(url) as resp:
            assert resp.status == 405
    assert [d.webhook_id for d in got] == ["msg_a"]
    hook = got[0].hook
    assert isinstance(hook, MediaHook) and hook.data.stream_name == "test-record-clip"
    assert got[0].body == BODY


async def test_the_fastapi_recipes_of_the_docs() -> None:
    got: list[str] = []
    app = FastAPI()
    hooks = Receiver(SECRET)

    # Recipe 1: the helper in a route.
    @app.post("/hooks")
    async def receive(request: Request) -> Response:
        try:
            delivery = hooks.receive(await request.body(), request.headers)
        except Rejected as exc:
            return Response(exc.reason, status_code=exc.status)
        got.append(f"route:{delivery.hook.event}")
        return Response(status_code=204)

    # Recipe 2: the ready ASGI app, mounted.
    async def on_hook(delivery: Delivery) -> None:
        got.append(f"mounted:{delivery.hook.event}")

    app.mount("/mounted", WebhookApp(SECRET, on_hook))
    async with served(app) as url:
        assert (await post(url + "/hooks", BODY, signed()))[0] == 204
        assert (await post(url + "/hooks", BODY, signed(secret=OTHER)))[0] == 401
        assert (await post(url + "/mounted/", BODY, signed()))[0] == 204
        assert (await post(url + "/mounted/", BODY, signed(secret=OTHER)))[0] == 401
    assert got == ["route:completed", "mounted:completed"]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, timeout=60
    )


def test_the_receiver_imports_without_the_server_dependencies() -> None:
    done = run_python(
        "import mediahooks.receiver as r\n"
        "assert all(getattr(r, name) for name in r.__all__)\n"
        # The SDK itself is the standard library only: a Flask or Django app gets nothing else.
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "third = {'aiohttp', 'rich', 'typer', 'apprise', 'pydantic'} & loaded\n"
        "assert not third, third\n"
        "import mediahooks.receiver.listen, mediahooks.receiver.cli\n"
        "print('ok')\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_blocker_does_block() -> None:
    done = run_python("import mediahooks.service\n")
    assert done.returncode != 0 and "server dependency" in done.stderr
