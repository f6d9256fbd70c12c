"""The dispatcher: claim due deliveries, send them concurrently, record the attempts in batches.

- Claims are leases in the database, so any number of dispatchers share one PostgreSQL and a dead
  one's claims are taken over once its leases run out.
- It wakes on a local signal or a PostgreSQL NOTIFY right after a commit, and polls as fallback.
- Results are written by one writer task: whatever finished while the last write ran is written
  in the next one transaction (group commit), which keeps the database off the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import time
import uuid
from collections import Counter

from mediahooks import __version__, metrics, retry, signing
from mediahooks.clock import now_ms
from mediahooks.config import Settings
from mediahooks.delivery.sender import Response, Sender
from mediahooks.loops import Beat, LoopFactory
from mediahooks.store import claims, verdicts
from mediahooks.store.db import DELIVERIES, Database
from mediahooks.store.outage import is_outage
from mediahooks.wakeups import woken

log = logging.getLogger("mediahooks.delivery")

LEASE_MS = 10_000
# After a wake-up, how long answers may gather before the next claim: a claim per answer costs
# the database, while every millisecond here leaves the freed slots idle (at 10 ms, deliveries
# to a fast local receiver ran a third slower).
COALESCE_SECONDS = 0.002
STATISTICS_SECONDS = 1.0  # PostgreSQL: how often the claim's statistics are checked
GONE_REASON = "the endpoint answered 410 Gone; re-enable the webhook once it accepts hooks again"


def decide(
    claimed: claims.Claimed,
    response: Response,
    policy: retry.Policy,
    now: int,
    started_at: int,
    request_headers: dict[str, str],
    worker: str,
) -> verdicts.Result:
    """The delivery's next state after one attempt (pure)."""
    tries = claimed.tries + 1
    verdict = retry.verdict(response.status, tries, policy)
    next_at, status, disable = now, verdict.value, None
    if verdict is retry.Verdict.RETRY:
        retry_after = retry.parse_retry_after(response.header("Retry-After"), now / 1000)
        next_at = now + int(1000 * retry.next_delay(tries, policy, response.status, retry_after))
        status = "pending"
    elif verdict is retry.Verdict.GONE:
        # The event stays queued for when the webhook is re-enabled; this try is not counted.
        tries, status, disable = claimed.tries, "pending", GONE_REASON
    return verdicts.Result(
        delivery_id=claimed.id,
        webhook_id=claimed.webhook_id,
        attempt={
            "delivery_id": claimed.id,
            "webhook_id": claimed.webhook_id,
            "started_at": started_at,
            "duration_ms": response.duration_ms,
            "url": claimed.url,
            "status_code": response.status,
            "error_kind": response.error_kind,
            "error_message": response.error_message,
            "request_headers": verdicts.headers_json(request_headers),
            "response_headers": verdicts.headers_json(response.headers),
            "response_body": response.body,
            "worker": worker,
        },
        status=status,
        tries=tries,
        next_attempt_at=next_at,
        last_status=response.status,
        last_error=response.error_message,
        webhook_ok=response.ok,
        disable_reason=disable,
    )


class Dispatcher:
    def __init__(self, db: Database, settings: Settings, name: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.policy = settings.policy
        self.owner = name or f"worker-{uuid.uuid4().hex[:12]}"
        # Short leases, renewed while attempts run: a worker that dies frees its deliveries (and
        # its share of each webhook's concurrency) within seconds, whatever the attempt timeout.
        self.lease_ms = LEASE_MS
        self._wake = asyncio.Event()
        self._results: asyncio.Queue[verdicts.Result] = asyncio.Queue()
        self._writing: list[verdicts.Result] = []  # taken from the queue, not yet written
        self._inflight = 0  # claimed and not yet written down
        self._sending: Counter[int] = Counter()  # waiting for an answer, per webhook
        self._tasks: set[asyncio.Task[None]] = set()
        # At most `concurrency` attempts are in flight (the claim loop sees to it), so the
        # sender needs no connection limit of its own.
        self._sender = Sender(settings.private_networks, settings.attempt_timeout)
        db.on_commit_wake(DELIVERIES, self._wake.set)

    def loops(self) -> dict[str, LoopFactory]:
        """The dispatcher's loops, each to run under the supervisor (`mediahooks.loops`).

        Claims may stop and start again (an outage) while their attempts go on: the sender and
        the queue of answers belong to the dispatcher, not to one run of a loop. Stopped in this
        order, attempts in flight finish and their answers are recorded before the process ends.
        """
        loops: dict[str, LoopFactory] = {
            "claims": self._claims,
            "verdicts": self._verdicts,
            "leases": self._renew_leases,
        }
        if self.db.is_postgres:
            loops["statistics"] = self._keep_statistics
        return loops

    def close(self) -> None:
        """After its loops stopped: close the kept-alive connections."""
        self._sender.close()

    async def _claims(self, beat: Beat) -> None:
        try:
            await self._claim_loop(beat)
        except asyncio.CancelledError:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.settings.attempt_timeout + 1)
            raise

    async def _claim_loop(self, beat: Beat) -> None:
        poll = self.settings.poll_interval
        concurrency = self.settings.concurrency
        while True:
            self._wake.clear()
            # Slots free as soon as an answer arrives; writing it down happens behind. Too many
            # answers waiting for the writer hold claiming back (the database is the brake).
            free = concurrency - self._sending.total()
            if free <= 0 or self._inflight - self._sending.total() > concurrency:
                await self._sleep(poll)
                continue
            want = min(self.settings.claim_batch, free)
            now = now_ms()
            due: int | None = None
            async with self.db.statements() as conn:
                claimed = await claims.claim(
                    conn,
                    self.owner,
                    now,
                    want,
                    self.settings.per_webhook_concurrency,
                    self.lease_ms,
                    self._sending,
                )
                if not claimed:
                    # Asked on the same connection: no second checkout. (Having claimed some,
                    # the loop is woken when they are answered.)
                    due = await claims.next_due(conn, now)
            beat()
            for c in claimed:
                self._inflight += 1
                self._sending[c.webhook_id] += 1
                task = asyncio.create_task(self._attempt(c))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(claimed) == want:
                continue
            # Due but not claimed means blocked (ordering, concurrency cap, disabled): those wait
            # for a wake-up, which every finished attempt and every re-enable sends. So do the
            # deliveries behind a partial claim (`due` unknown): its answers wake the loop.
            wait = poll if due is None or due <= now else min(poll, (due - now) / 1000)
            await self._sleep(wait)
            # Let answers arriving together be claimed for together.
            await asyncio.sleep(COALESCE_SECONDS)

    async def _renew_leases(self, beat: Beat) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 4000)
            if self._inflight:
                async with self.db.statements() as conn:
                    await claims.renew_leases(conn, self.owner, now_ms() + self.lease_ms)
            beat()

    async def _keep_statistics(self, beat: Beat) -> None:
        while True:
            await asyncio.sleep(STATISTICS_SECONDS)
            async with self.db.statements() as conn:
                await claims.keep_statistics(conn)
            beat()

    async def _sleep(self, seconds: float) -> None:
        await woken(self._wake, seconds)

    async def _attempt(self, claimed: claims.Claimed) -> None:
        started_at = now_ms()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"mediahooks/{__version__}",
            **(claimed.headers or {}),
            **signing.sign(claimed.secrets, claimed.msg_id, int(time.time()), claimed.body),
        }
        response = await self._sender.post(claimed.url, claimed.body, headers)
        self._sending[claimed.webhook_id] -= 1
        self._wake.set()
        result = decide(claimed, response, self.policy, now_ms(), started_at, headers, self.owner)
        metrics.ATTEMPT_SECONDS.observe(response.duration_ms / 1000)
        outcome = (
            "gone"
            if result.disable_reason
            else ("retry" if result.status == "pending" else result.status)
        )
        if log.isEnabledFor(logging.INFO):
            log.info(
                json.dumps(
                    {
                        "msg": "attempt",
                        "webhook": claimed.webhook_id,
                        "delivery": claimed.id,
                        "webhookId": claimed.msg_id,
                        "url": claimed.url,
                        "try": result.tries,
                        "status": response.status,
                        "error": response.error_kind,
                        "ms": response.duration_ms,
                        "outcome": outcome,
                        "next": result.next_attempt_at if result.status == "pending" else None,
                    }
                )
            )
        metrics.DELIVERY_OUTCOMES.labels(outcome).inc()
        if response.ok:
            metrics.EVENT_TO_DELIVERY_SECONDS.observe((now_ms() - claimed.created_at) / 1000)
        self._results.put_nowait(result)

    async def _verdicts(self, beat: Beat) -> None:
        try:
            while True:
                # A batch that met an outage is written first when the loop starts again.
                if not self._writing:
                    self._writing = [await self._results.get()]
                    while not self._results.empty() and len(self._writing) < 1000:
                        self._writing.append(self._results.get_nowait())
                await self._write(self._writing)
                beat()
                written, self._writing = len(self._writing), []
                self._inflight -= written
                for _ in range(written):
                    self._results.task_done()
                self._wake.set()
        except asyncio.CancelledError:
            # Stopping: the answers already in are recorded before the process ends (a batch
            # cut short here is sent again once its leases run out, never lost).
            while not self._results.empty():
                self._writing.append(self._results.get_nowait())
            if self._writing:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    async with asyncio.timeout(10):
                        await self._write(self._writing)
            raise

    async def _write(self, batch: list[verdicts.Result]) -> None:
        """Write a batch; when the database refuses it, find the result that cannot be stored.

        The leases keep these deliveries ours meanwhile. An outage is left to the supervisor
        (the batch waits whole); one result the database refuses is stored without what the
        endpoint answered rather than holding up the others.
        """
        for tries in itertools.count():
            try:
                async with self.db.transaction(durable=False) as conn:
                    await verdicts.record(
                        conn,
                        self.owner,
                        batch,
                        now_ms(),
                        int(self.policy.disable_for * 1000),
                        int(self.policy.disable_after * 1000),
                    )
                return
            except Exception as exc:
                if is_outage(exc):
                    raise
                log.exception("recording %d attempts failed; retrying", len(batch))
            if len(batch) > 1:
                for result in batch:
                    await self._write([result])
                return
            if tries >= 2:
                batch = [_without_answer(batch[0])]
            await asyncio.sleep(min(5.0, 0.5 * (tries + 1)))


def _without_answer(result: verdicts.Result) -> verdicts.Result:
    attempt = dict(
        result.attempt,
        response_headers="{}",
        response_body="",
        error_message="the endpoint's answer could not be stored",
    )
    return dataclasses.replace(result, attempt=attempt, last_error=attempt["error_message"])
