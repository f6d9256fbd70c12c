"""`serve --demo`: show the whole path working on a fresh machine.

A receiver is mounted on the server itself (`/demo/receiver`), subscribed as a webhook of the
first account, and sent a test event; each hook it gets is verified with both signature schemes
and printed. The event travels the real path: outbox, dispatcher, signatures, attempt log.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from rich.console import Console
from sqlalchemy import select

from mediahooks import events, signing
from mediahooks.clock import now_ms
from mediahooks.service import Service
from mediahooks.store import outbox
from mediahooks.store import webhooks as store
from mediahooks.store.schema import webhooks

PATH = "/demo/receiver"


def mount(app: FastAPI, service: Service, console: Console) -> None:
    @app.post(PATH, include_in_schema=False)
    async def receive(request: Request) -> Response:
        body = await request.body()
        async with service.db.engine.connect() as conn:
            secret = (
                await conn.execute(select(webhooks.c.secret).where(webhooks.c.url == _url(request)))
            ).scalar()
        try:
            signing.verify(body, request.headers, secret or "")
            signing.verify_millicast(
                body, request.headers.get(signing.MILLICAST_HEADER), secret or ""
            )
        except (signing.VerificationError, ValueError) as exc:
            console.print(f"[red]demo receiver: refused a hook: {exc}[/]")
            return Response(status_code=401)
        hook = events.parse(body)
        console.print(
            f"[green]demo receiver: got {hook.type}/{hook.event}[/] for {hook.stream_name} "
            f"(webhook-id {request.headers['webhook-id']}); both signatures verified"
        )
        return Response(status_code=204)


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
