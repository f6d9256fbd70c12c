"""`serve --demo`: show the whole path working on a fresh machine.

A receiver is mounted on the server itself (`/demo/receiver`), subscribed as a webhook of the
first account, and sent a test event; each hook it gets is verified with both signature schemes
and printed. Then a synthetic stream is published over HLS and a 10 s clip of it requested:
its `processing` and `completed` hooks arrive the same way. Everything travels the real path:
ingest, outbox, media worker, dispatcher, signatures, attempt log.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request, Response
from rich.console import Console
from sqlalchemy import select

from mediahooks import events
from mediahooks.clock import now_ms
from mediahooks.receiver.models import JsonHook, MalformedHook, parse
from mediahooks.receiver.verify import VerificationError, verify
from mediahooks.service import Service
from mediahooks.signing import MILLICAST_HEADER
from mediahooks.store import outbox, tokens
from mediahooks.store import webhooks as store
from mediahooks.store.schema import webhooks

PATH = "/demo/receiver"
STREAM = "demo"


def mount(app: FastAPI, service: Service, console: Console) -> None:
    @app.post(PATH, include_in_schema=False)
    async def receive(request: Request) -> Response:
        body = await request.body()
        async with service.db.engine.connect() as conn:
            secret = (
                await conn.execute(select(webhooks.c.secret).where(webhooks.c.url == _url(request)))
            ).scalar()
        # Both schemes, through the receiver SDK a user's own receiver would use: the platform's
        # header checked on its own (without the Standard Webhooks headers beside it).
        platform_only = {MILLICAST_HEADER: request.headers.get(MILLICAST_HEADER, "")}
        try:
            verify(body, request.headers, secret or "")
            verify(body, platform_only, secret or "", platform=True)
            hook = parse(body)
        except (VerificationError, MalformedHook, ValueError) as exc:
            console.print(f"[red]demo receiver: refused a hook: {exc}[/]")
            return Response(status_code=401)
        console.print(
            f"[green]demo receiver: got {hook.type}/{hook.event}[/] for {_stream(hook)} "
            f"(webhook-id {request.headers['webhook-id']}); both signatures verified"
        )
        return Response(status_code=204)


def _stream(hook: JsonHook) -> str:
    data = hook.raw.get("data", {})
    return str(data.get("streamName") or data.get("name"))  # feeds name their stream `name`


def _url(request: Request) -> str:
    return f"http://{request.url.netloc}{PATH}"


async def subscribe_and_send(service: Service, base_url: str, console: Console) -> None:
    url = base_url + PATH
    async with service.db.transaction() as conn:
        existing = (
            await conn.execute(
                select(webhooks.c.id).where(
                    webhooks.c.url == url,
                    webhooks.c.account_id == service.account_id,
                    webhooks.c.deleted_at.is_(None),
                )
            )
        ).scalar()
        if existing is None:
            row = await store.create(
                conn,
                service.account_id,
                {"url": url, "is_media_hooks": True, "is_feed_hooks": True},
            )
            existing = row.id
        hook = events.sample("media", service.account_id, now_ms())
        assert hook is not None
        emitted = await outbox.emit(conn, service.account_id, hook, ignore_filters=True)
    console.print(
        f"  demo       webhook {existing} -> {url}; sent a test media event ({emitted.msg_id})"
    )
    await _publish_and_clip(service, base_url, console)


async def _publish_and_clip(service: Service, base_url: str, console: Console) -> None:
    from mediahooks.media import clips, publisher, synthetic

    async with service.db.transaction() as conn:
        token = await tokens.create(
            conn,
            service.account_id,
            {
                "label": "demo",
                "streams": json.dumps([{"streamName": STREAM, "isRegex": False}]),
                "record": False,
                "clip": True,
            },
        )
    seconds = 12
    start = now_ms() - (seconds + 1) * 1000
    console.print(f"  demo       publishing {seconds} s of a synthetic stream to {STREAM!r}...")
    segments = synthetic.iter_segments(seconds, "ts", width=320, height=180)
    await publisher.publish(f"{base_url}/ingest/{STREAM}", token.token, segments, False, start)
    async with service.db.transaction() as conn:
        (asset,) = await clips.request(
            conn,
            service.account_id,
            clips.ClipRequest(STREAM, start + 1000, start + 11_000),
            now_ms(),
        )
    console.print(
        f"  demo       requested a 10 s clip ({asset.id}); once complete, read it with\n"
        f"             curl -H 'Authorization: Bearer <API secret>' "
        f"{base_url}/api/v3/media/assets/{asset.id}"
    )
