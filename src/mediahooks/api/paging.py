"""The platform's list paging, `startingId` (exclusive), `itemCount`, `isDescending`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Paging:
    starting_id: int | None
    count: int
    descending: bool


def _paging(
    startingId: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    itemCount: Annotated[int, Query(ge=1, le=100)] = 10,
    isDescending: bool = False,
) -> Paging:
    return Paging(startingId, itemCount, isDescending)


PagingDep = Annotated[Paging, Depends(_paging)]
