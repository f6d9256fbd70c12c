"""The platform's list paging read from the query: `startingId` (exclusive), `itemCount`,
`isDescending`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from mediahooks.actions.paging import MAX_ID, Paging


def _paging(
    startingId: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    itemCount: Annotated[int, Query(ge=1, le=100)] = 10,
    isDescending: bool = False,
) -> Paging:
    return Paging(startingId, itemCount, isDescending)


PagingDep = Annotated[Paging, Depends(_paging)]
