"""`Authorization: Bearer <API secret>` on every /api route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from mediahooks.errors import Unauthorized
from mediahooks.service import Service
from mediahooks.store import accounts


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def account_id(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> str:
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("Missing API secret: send the header 'Authorization: Bearer <secret>'.")
    async with service_of(request).db.engine.connect() as conn:
        found = await accounts.find(conn, secret.strip())
    if found is None:
        raise Unauthorized("Unknown API secret.")
    return found


Account = Annotated[str, Depends(account_id)]
ServiceDep = Annotated[Service, Depends(service_of)]
