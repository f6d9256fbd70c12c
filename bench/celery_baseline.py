"""The Celery baseline: webhook delivery the way most Python teams write it.

One task per delivery on a Redis broker, `requests.post` inside, Celery's own retries with
exponential backoff, and any non-2xx answer raised so that it is retried too. No persistence
beyond the broker, no signing, no attempt log.

The delivery benchmark starts a worker on this module (run from the bench/ folder):
``celery -A celery_baseline worker --pool prefork --concurrency 4``.
"""

from __future__ import annotations

import os

import requests
from celery import Celery

# A database number of its own, so that flushing it at the end touches nothing else.
BROKER_URL = os.environ.get("MEDIAHOOKS_BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/13")

app = Celery("mediahooks_bench", broker=BROKER_URL)
app.conf.update(
    task_ignore_result=True,  # fire and forget: nobody reads a delivery's return value
    broker_connection_retry_on_startup=True,
)


@app.task(
    autoretry_for=(requests.RequestException,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def deliver(url: str, body: str, message_id: str) -> None:
    response = requests.post(
        url,
        data=body.encode(),
        headers={"Content-Type": "application/json", "message-id": message_id},
        timeout=15,
    )
    # HTTPError is a RequestException: a non-2xx answer is retried like a transport failure.
    response.raise_for_status()
