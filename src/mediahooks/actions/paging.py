"""The platform's list paging, `startingId` (exclusive), `itemCount`, `isDescending`."""

from __future__ import annotations

from dataclasses import dataclass

# The largest id a path or a query may name: ids are signed 64-bit in both databases.
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Paging:
    starting_id: int | None
    count: int
    descending: bool
