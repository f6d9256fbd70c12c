"""The response envelope of the platform: ``success``/``fail``/``error``, and the errors that
produce the latter two. Every answer of the API goes through here."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

T = TypeVar("T")


class ApiError(Exception):
    """A request the client must fix: answered ``{"status": "fail", ...}`` with ``status``."""

    def __init__(
        self, status: int, message: str, errors: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or {}


def found(row: T | None, what: str) -> T:
    """The row, or a 404 naming what was not found."""
    if row is None:
        raise ApiError(404, f"{what} not found.")
    return row


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"status": "success", "data": data}, status_code=status)


def fail(status: int, message: str, errors: dict[str, list[str]] | None = None) -> JSONResponse:
    return JSONResponse(
        {"status": "fail", "data": {"message": message, "errors": errors or {}}},
        status_code=status,
    )


def field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return fail(exc.status, exc.message, exc.errors)


async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            detail = error.get("ctx", {}).get("error", "")
            return fail(400, f"The request body is not valid JSON ({detail}).", {"body": [detail]})
        field = field_of(tuple(error.get("loc", ())))
        if field == "body" and error.get("type") in ("model_attributes_type", "dict_type"):
            return fail(
                400,
                "The request body must be a JSON object; send it with "
                "'Content-Type: application/json'.",
                {"body": ["must be a JSON object"]},
            )
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing":
            message = "is required"
        errors.setdefault(field, []).append(message)
    summary = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in errors.items())
    return fail(400, f"Invalid request: {summary}", errors)


async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's own, when it cannot decode the body at all (not UTF-8, nested too deeply).
        return fail(
            400,
            "The request body could not be read: send a JSON object encoded as UTF-8.",
            {"body": [str(exc.detail)]},
        )
    messages = {404: "No such resource.", 405: "This method is not allowed on this path."}
    return fail(exc.status_code, messages.get(exc.status_code, str(exc.detail)))


async def on_crash(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"status": "error", "message": "Internal server error", "code": 500}, status_code=500
    )
