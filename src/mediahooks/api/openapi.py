"""The OpenAPI document as the API really answers, and `/docs` served from the package.

FastAPI declares a 422 for every route that validates input; ours answer 400 with the envelope
(`envelope.on_validation_error`), and any route may answer in the envelope with another status
(401, 404, 413, 503...), so every operation declares those too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI = Path(__file__).parent / "swagger"

_FAIL = {
    "type": "object",
    "required": ["status", "data"],
    "properties": {
        "status": {"type": "string", "enum": ["fail"]},
        "data": {
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": {"type": "string"},
                "errors": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_ERROR = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {
        "status": {"type": "string", "enum": ["error"]},
        "message": {"type": "string"},
        "code": {"type": "integer"},
    },
}
_INVALID = {
    "description": "The request is invalid: the message says what to fix, `errors` per field.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Fail"}}},
}
_OTHER = {
    "description": "Any other refusal in the envelope (401, 404, 413, 503 with Retry-After...).",
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Fail"},
                    {"$ref": "#/components/schemas/Error"},
                ]
            }
        }
    },
}


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app``, built once."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Fail"], schemas["Error"] = _FAIL, _ERROR
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                if responses.pop("422", None) is not None:
                    responses["400"] = _INVALID
                responses.setdefault("default", _OTHER)
        app.openapi_schema = schema
    return app.openapi_schema


def mount(app: FastAPI) -> None:
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
    app.mount("/docs/static", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )
