"""`/healthz` and `/readyz`, for orchestrators: is the process up, and can it do its work now."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mediahooks.service import Service

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process is up and answering (restart it when this fails)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz", responses={503: {"description": "What keeps the service from working."}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers and every background loop is running (send traffic elsewhere
    while this answers 503: the service waits the outage out by itself)."""
    service: Service = request.app.state.service
    problems = await service.ready()
    if problems:
        return JSONResponse(
            {"status": "unavailable", "problems": problems},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ready"})
