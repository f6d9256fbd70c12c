"""What every request body shares, whichever door it came through."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_validator


class Body(BaseModel):
    """A request body: its text may not hold NUL characters, which PostgreSQL cannot store
    (SQLite would, and the two databases must answer alike)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters (\\u0000)")
        return value
