"""The publish tokens, kept in memory for the SRT door's listen callback.

libsrt asks whether to accept a caller from its own thread, before the handshake completes, and
wants the answer (and the passphrase the caller must encrypt with) at once: it cannot wait for
the event loop or the database. So the door decides from this copy, refreshed by a supervised
loop (every 2 s: `MEDIAHOOKS_SRT_TOKEN_REFRESH`) and told at once of the tokens this process
creates or changes. The copy may be stale (a token deleted a moment ago, one made by another
process): after the handshake the door always checks the token against the database again.
"""

from __future__ import annotations

import asyncio
import time

from mediahooks.loops import Beat
from mediahooks.store import tokens
from mediahooks.store.db import Database
from mediahooks.store.schema import DbRow


class KnownTokens:
    def __init__(self) -> None:
        # Replaced whole, never changed in place: the callback's thread reads it without a lock.
        self._rows: dict[str, DbRow] = {}
        # Tokens learned from this process's API since the last refresh began, with when: a
        # refresh that read the database before they were committed must not drop them.
        self._recent: dict[str, tuple[DbRow, float]] = {}
        self.loaded = False

    def get(self, token: str) -> DbRow | None:
        return self._rows.get(token)

    def learn(self, row: DbRow) -> None:
        """A token this process just created or changed (called on the loop's thread)."""
        self._recent[row.token] = (row, time.monotonic())
        self._rows = {**self._rows, row.token: row}

    async def refresh(self, db: Database) -> None:
        started = time.monotonic()
        async with db.engine.connect() as conn:
            rows = {row.token: row for row in await tokens.active(conn)}
        self._recent = {k: v for k, v in self._recent.items() if v[1] >= started}
        rows.update((token, row) for token, (row, _) in self._recent.items())
        self._rows = rows
        self.loaded = True

    async def run(self, db: Database, beat: Beat, every: float) -> None:
        """The supervised loop (`service.loops`): refresh, beat, wait ``every`` seconds, again."""
        while True:
            await self.refresh(db)
            beat()
            await asyncio.sleep(every)
