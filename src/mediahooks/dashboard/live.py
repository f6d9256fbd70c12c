"""Live updates for the pages: the account's feed as server-sent events.

A page says where its data was read (`?from=`, see `web.member`), so nothing that happens
between rendering it and opening the stream is missed; a reconnecting browser resumes from
the last id it got.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from mediahooks.dashboard.feed import Cursor, changes
from mediahooks.dashboard.web import SECURITY_HEADERS, MemberDep
from mediahooks.wakeups import woken

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0


@router.get("/live")
async def live(
    seen: MemberDep,
    start: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    service, account, request = seen.service, seen.account, seen.request

    async def stream() -> AsyncIterator[str]:
        # Resume where the browser left off, else where its page was read, else from now.
        cursor = Cursor.parse(last_event_id) or Cursor.parse(start) or Cursor.parse(seen.live_from)
        assert cursor is not None  # `member` read the feed's position for this GET
        yield f"retry: 2000\nid: {cursor}\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected() and not service.stopping.is_set():
            async with service.db.engine.connect() as conn:
                found = await changes(conn, account, cursor)
            for name, data in found:
                yield f"event: {name}\nid: {cursor}\ndata: {json.dumps(data)}\n\n"
            if found:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                yield ": still here\n\n"  # keeps proxies from closing an idle stream
                quiet_since = time.monotonic()
            await woken(service.stopping, POLL_SECONDS)

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
