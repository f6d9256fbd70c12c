"""Keyset paging, the platform's `startingId`/`itemCount`/`isDescending` on any id column."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Select


def keyset(
    query: Select[Any],
    id_column: Column[Any],
    starting_id: int | None,
    count: int,
    descending: bool,
) -> Select[Any]:
    """Up to ``count`` rows after ``starting_id`` (exclusive) in id order."""
    if starting_id is not None:
        query = query.where(id_column < starting_id if descending else id_column > starting_id)
    return query.order_by(id_column.desc() if descending else id_column).limit(count)
