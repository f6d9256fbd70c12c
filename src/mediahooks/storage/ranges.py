"""HTTP byte ranges (RFC 9110 §14) for files served through the service from a bucket: one
range per request, which is what players and download tools ask for."""

from __future__ import annotations

from mediahooks.errors import Invalid


class Unsatisfiable(Invalid, ValueError):
    """A Range outside the file (the API answers 416, HTTP's own status for it)."""


def parse(header: str | None, size: int) -> tuple[int, int] | None:
    """``Range: bytes=a-b`` → (start, end exclusive), or None for the whole file (no header, or
    one this server may ignore: another unit, several ranges)."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:  # the last N bytes
            count = int(last)
            if count <= 0:
                raise Unsatisfiable(header)
            return max(0, size - count), size
        start = int(first)
        end = size if not last else min(int(last) + 1, size)
    except ValueError as exc:
        if isinstance(exc, Unsatisfiable):
            raise
        return None
    if start >= size or end <= start:
        raise Unsatisfiable(header)
    return start, end
