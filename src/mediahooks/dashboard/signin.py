"""Signing in with the API secret, and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from mediahooks.dashboard.web import VisitorDep, form, one, redirect, render
from mediahooks.store import accounts

router = APIRouter(include_in_schema=False)
HOME = "/streams"


def local_target(target: str) -> str:
    """Where to go after signing in: only a path of this site, never another site."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return HOME


@router.get("/")
async def home(seen: VisitorDep) -> Response:
    return redirect(seen, HOME if seen.session.signed_in else "/signin")


@router.get("/signin")
async def signin_page(
    seen: VisitorDep, next: Annotated[str, Query(max_length=2048)] = HOME
) -> Response:
    return render(seen, "signin.html", next=local_target(next))


@router.post("/signin")
async def sign_in(seen: VisitorDep) -> Response:
    posted = await form(seen)
    target = local_target(one(posted, "next"))
    secret = one(posted, "secret")
    account = None
    if secret:
        async with seen.service.db.engine.connect() as conn:
            account = await accounts.find(conn, secret)
    if account is None:
        message = "Enter the API secret." if not secret else "That API secret is not known here."
        return render(seen, "signin.html", 401, next=target, error=message)
    seen.start(account)
    return redirect(seen, target)


@router.post("/signout")
async def sign_out(seen: VisitorDep) -> Response:
    await form(seen)
    seen.start(None)
    return redirect(seen, "/signin", "Signed out.")
