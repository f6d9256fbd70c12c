"""Prometheus metrics of delivery and of the background loops. Counters are per process; the
backlog gauges are read from the database at scrape time, so every process reports the same,
global backlog."""

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]

DELIVERY_OUTCOMES = Counter(
    "mediahooks_delivery_attempts_total",
    "Delivery attempts by outcome (succeeded, retry, failed, gone).",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "mediahooks_attempt_duration_seconds",
    "Duration of one delivery attempt, request sent to answer read.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
EVENT_TO_DELIVERY_SECONDS = Histogram(
    "mediahooks_event_to_delivery_seconds",
    "Time from an event's commit to its successful delivery.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600),
)
HISTORY_FORGOTTEN = Counter(
    "mediahooks_history_forgotten_total",
    "Finished deliveries (with their attempts) and events deleted past the retention period.",
    ["kind"],
)
PENDING = Gauge("mediahooks_deliveries_pending", "Deliveries waiting for a successful attempt.")
OLDEST_DUE_AGE = Gauge(
    "mediahooks_oldest_due_delivery_age_seconds",
    "How long the longest-waiting due delivery has been due (0 when none is due).",
)
LOOP_LAST_SUCCESS = Gauge(
    "mediahooks_loop_last_success_timestamp_seconds",
    "When each background loop last finished a round of work (Unix time).",
    ["loop"],
)
LOOP_FAILURES = Counter(
    "mediahooks_loop_outage_failures_total",
    "Rounds of a background loop that failed because the database was unreachable.",
    ["loop"],
)
