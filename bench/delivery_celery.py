"""The delivery benchmark's Celery baseline: a real prefork `celery worker` on Redis
(bench/celery_baseline.py), one task per delivery, measured as `delivery.py` measures the
others."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from cpu import named, with_children
from delivery_kit import BENCH_DIR, Receiver, cpu_window, paced, sample_hook, with_cpu
from delivery_report import Figures, Options, Sent, summarize
from mediahooks import events

# --- baseline: Celery -------------------------------------------------------------------------


class CeleryWorker:
    """A real `celery worker` subprocess on bench/celery_baseline.py, and its Redis database."""

    def __init__(self, concurrency: int) -> None:
        import celery_baseline

        self.module = celery_baseline
        self.concurrency = concurrency
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "celery_baseline", "worker",
            "--pool", "prefork", "--concurrency", str(self.concurrency),
            "--loglevel", "WARNING", "--hostname", f"bench-{uuid.uuid4().hex[:8]}@%h",
        ]  # fmt: skip

    def __enter__(self) -> CeleryWorker:
        import redis

        self._redis = redis.Redis.from_url(self.module.BROKER_URL)
        if self._redis.dbsize():
            raise RuntimeError(
                f"{self.module.BROKER_URL} is not empty; point MEDIAHOOKS_BENCH_CELERY_BROKER "
                "at an unused Redis database (it is flushed at the end)"
            )
        paths = [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
        # The banner and warnings go to a file, shown only when the worker fails to start.
        self._output = tempfile.TemporaryFile()
        # A session of its own, so the prefork children can be stopped with their parent.
        self.proc = subprocess.Popen(
            self.command(),
            cwd=BENCH_DIR,
            env=env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def output_tail(self, size: int = 4000) -> str:
        self._output.flush()
        self._output.seek(0, os.SEEK_END)
        self._output.seek(max(0, self._output.tell() - size))
        return self._output.read().decode(errors="replace")

    def __exit__(self, *_: object) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)  # warm shutdown
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
        finally:
            self._redis.flushdb()
            self._redis.close()
            self._output.close()

    def enqueue(self, url: str, body: str, sent: Sent) -> None:
        msg_id = "msg_" + uuid.uuid4().hex
        self.module.deliver.delay(url, body, msg_id)
        sent[msg_id] = time.time()


async def run_celery_warm_up(worker: CeleryWorker, receiver: Receiver) -> None:
    """Wait until the worker consumes; a few tasks per prefork child also warm the pool up."""
    endpoint = await receiver.endpoint()
    count = 4 * worker.concurrency
    body = events.encode(sample_hook(0)).decode()

    def enqueue_all() -> None:
        for _ in range(count):
            worker.enqueue(endpoint.url("/warm"), body, {})

    await asyncio.to_thread(enqueue_all)
    if not await endpoint.wait_for(count, 60):
        raise RuntimeError(
            "the celery worker did not start consuming within 60 s; its output:\n"
            + worker.output_tail()
        )


async def run_celery(worker: CeleryWorker, mode: str, opts: Options, receiver: Receiver) -> Figures:
    endpoint = await receiver.endpoint()
    urls = [endpoint.url(f"/hook/{w}") for w in range(opts.webhooks)]
    sent: Sent = {}
    window = None
    if mode == "throughput":
        bodies = [events.encode(sample_hook(i)).decode() for i in range(opts.events)]

        def burst() -> None:
            for body in bodies:
                for url in urls:
                    worker.enqueue(url, body, sent)

        assert worker.proc is not None
        window = cpu_window(
            with_children(os.getpid(), worker.proc.pid), named("redis-server"), receiver
        )
        window.start()
        started = time.time()
        await asyncio.to_thread(burst)
        expected, rate = opts.deliveries, None
    else:

        async def one_event() -> None:
            body = events.encode(sample_hook(0)).decode()
            # One event fans out to M tasks, enqueued back to back as a view would. Publishing
            # blocks this loop briefly, which is fine: nothing else runs in it meanwhile.
            for url in urls:
                worker.enqueue(url, body, sent)

        started = time.time()
        await paced(opts.paced_events, opts.rate, one_event)
        expected, rate = opts.paced_events * opts.webhooks, opts.rate
    await endpoint.wait_for(expected, opts.drain_timeout)
    used = window.stop() if window else {}
    records = await endpoint.records()
    figures = with_cpu(summarize("celery", mode, expected, started, sent, records, rate), used)
    if rate is not None and figures.achieved_rate is not None:
        figures.achieved_rate /= opts.webhooks  # stamps are per task; the rate is per event
    return figures
