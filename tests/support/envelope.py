"""The API's answer envelope, as the platform has it."""

from __future__ import annotations

from typing import Any


def assert_fail(status: int, body: dict[str, Any], expected: int) -> str:
    """A `fail` envelope with ``expected``; returns its message."""
    assert status == expected, (status, body)
    assert body["status"] == "fail", body
    assert set(body["data"]) == {"message", "errors"}, body
    assert isinstance(body["data"]["errors"], dict), body
    message = body["data"]["message"]
    assert isinstance(message, str) and message.strip(), body
    return message
