"""`POST /api/thumbnails`: a thumbnail of a live stream now, to its `thumbnail` webhooks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StrictStr

from mediahooks.actions import thumbnails as actions
from mediahooks.actions.bodies import Body
from mediahooks.actions.paging import MAX_ID
from mediahooks.actions.thumbnails import PER_MINUTE, Window
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.envelope import ApiError, ok

router = APIRouter(prefix="/api/thumbnails", tags=["thumbnails"])


class ThumbnailRequest(Body):
    model_config = ConfigDict(extra="ignore")
    streamName: StrictStr = Field(..., min_length=1, max_length=128)
    tokenId: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None


def _window(request: Request) -> Window:
    state = request.app.state
    if not hasattr(state, "thumbnail_window"):
        state.thumbnail_window = actions.window()
    window: Window = state.thumbnail_window
    return window


@router.post(
    "",
    summary="Take a thumbnail of a live stream now and send it to the thumbnail webhooks",
    description=(
        f"At most {PER_MINUTE} a minute per stream (429 past it). Answers `true`; the hook's "
        "message id and the webhooks it was queued for are in the `X-Mediahooks-Message-Id` "
        "and `X-Mediahooks-Webhook-Ids` headers."
    ),
)
async def take_thumbnail(
    body: ThumbnailRequest, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    try:
        emitted = await actions.take(
            service, _window(request), account, body.streamName, body.tokenId
        )
    except actions.TooSoon as exc:
        raise ApiError(429, exc.message) from exc
    answer = ok(True)
    answer.headers["X-Mediahooks-Message-Id"] = emitted.msg_id
    answer.headers["X-Mediahooks-Webhook-Ids"] = ",".join(map(str, emitted.webhook_ids))
    return answer
