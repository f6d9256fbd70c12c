"""The delivery benchmark's figures and its report: what one run measured (`Figures`), the
medians per system, the tables, the verdicts against the targets, and the JSON record
(`delivery.py` runs the systems)."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

Sent = dict[str, float]  # message id -> when it was committed (or enqueued, or posted)
Record = tuple[str, str, float]  # path, message id, arrival time

# Targets the figures are judged against.
CEILING_SHARE = 0.5
CELERY_FACTOR = 5.0
P99_LIMIT_MS = 50.0
RATE_SHARE = 0.95  # of the offered event rate, for the latency target to count
OTHER_WORK_LIMIT = 0.15  # CPU share busy outside the benchmark that makes its figures noisy


@dataclass(frozen=True)
class Options:
    events: int
    webhooks: int
    rate: float
    duration: float
    databases: tuple[str, ...]
    repeats: int
    latency_repeats: int
    producers: int
    workers: int
    celery_concurrency: int
    drain_timeout: float

    @property
    def deliveries(self) -> int:
        return self.events * self.webhooks

    @property
    def paced_events(self) -> int:
        return max(1, round(self.rate * self.duration))


@dataclass
class Figures:
    """One run of one system."""

    system: str
    mode: str  # throughput | latency
    expected: int
    arrived: int
    seconds: float  # first send to last arrival
    per_s: float
    p50_ms: float | None  # None: more than half never arrived within the drain timeout
    p99_ms: float | None  # None: more than 1% never arrived within the drain timeout
    offered_rate: float | None = None  # events/s asked for (latency runs)
    achieved_rate: float | None = None  # events/s really committed or enqueued
    duplicates: int = 0
    # Throughput runs: CPU microseconds per delivery by part (see `CPU_PARTS`).
    cpu_us: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.arrived >= self.expected


# --- figures ----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (which may end in infinities)."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(
    system: str,
    mode: str,
    expected: int,
    started: float,
    sent: Sent,
    records: list[Record],
    offered_rate: float | None = None,
) -> Figures:
    first: dict[tuple[str, str], float] = {}
    records = [r for r in records if r[1] in sent]  # a late warm-up request is not this run's
    for path, msg_id, at in records:
        key = (path, msg_id)
        first[key] = min(at, first.get(key, at))
    arrived = len(first)
    seconds = (max(first.values()) - started) if first else math.inf
    # A delivery that never arrived counts as infinitely late, so a percentile it reaches is
    # reported as unknown rather than flattered by leaving it out.
    latencies = sorted(
        [(at - sent[msg_id]) * 1000 for (_, msg_id), at in first.items()]
        + [math.inf] * max(0, expected - arrived)
    )
    p50, p99 = (percentile(latencies, p) if latencies else math.inf for p in (50, 99))
    achieved = None
    if offered_rate is not None and len(sent) > 1:
        span = max(sent.values()) - min(sent.values())
        achieved = (len(sent) - 1) / span if span > 0 else None
    return Figures(
        system=system,
        mode=mode,
        expected=expected,
        arrived=arrived,
        seconds=seconds,
        per_s=arrived / seconds if seconds > 0 else 0.0,
        p50_ms=None if math.isinf(p50) else p50,
        p99_ms=None if math.isinf(p99) else p99,
        offered_rate=offered_rate,
        achieved_rate=achieved,
        duplicates=len(records) - arrived,
    )


# The parts whose CPU is measured in the bursts: the system under test (producers, dispatchers,
# workers), its database or broker server, the receiver; "machine" is every core's busy time.
CPU_PARTS = ("system", "store", "receiver", "machine")


# --- the report -------------------------------------------------------------------------------


@dataclass
class Summary:
    system: str
    per_s: float  # median over the throughput runs
    p50_ms: float | None = None  # median over the latency runs
    p99_ms: float | None = None
    achieved_rate: float | None = None
    incomplete: bool = False
    runs: list[float] = field(default_factory=list)
    cpu_us: dict[str, float] = field(default_factory=dict)  # medians over the throughput runs


def _median(values: list[float | None]) -> float | None:
    # An unknown (never arrived) percentile sorts above every known one.
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    return ordered[(len(ordered) - 1) // 2] if ordered else None


def summarize_system(system: str, runs: list[Figures]) -> Summary:
    burst = [r for r in runs if r.mode == "throughput"]
    paced_runs = [r for r in runs if r.mode == "latency"]
    summary = Summary(
        system=system,
        per_s=statistics.median(r.per_s for r in burst),
        runs=[r.per_s for r in burst],
        incomplete=any(not r.complete for r in runs),
    )
    for part in CPU_PARTS:
        measured = [r.cpu_us[part] for r in burst if part in r.cpu_us]
        if measured:
            summary.cpu_us[part] = statistics.median(measured)
    if paced_runs:
        summary.p50_ms = _median([r.p50_ms for r in paced_runs])
        summary.p99_ms = _median([r.p99_ms for r in paced_runs])
        summary.achieved_rate = _median([r.achieved_rate for r in paced_runs])
    return summary


def _ms(value: float | None) -> str:
    # None: the deliveries that percentile needs never arrived within the drain timeout.
    return "never" if value is None else f"{value:.1f}"


def table(summaries: list[Summary], opts: Options) -> list[str]:
    ceiling = next(s.per_s for s in summaries if s.system == "ceiling")
    celery = next((s.per_s for s in summaries if s.system == "celery"), None)
    head = (
        f"{'system':<33}{'deliveries/s':>13}{'x ceiling':>11}{'x celery':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'events/s':>10}  runs (deliveries/s)"
    )
    lines = [head, "-" * len(head)]
    for s in summaries:
        has_latency = s.p50_ms is not None or s.p99_ms is not None or s.achieved_rate is not None
        lines.append(
            f"{s.system:<33}{s.per_s:>13.0f}{s.per_s / ceiling:>11.2f}"
            f"{(f'{s.per_s / celery:.2f}' if celery else '-'):>10}"
            f"{(_ms(s.p50_ms) if has_latency else '-'):>9}"
            f"{(_ms(s.p99_ms) if has_latency else '-'):>9}"
            f"{(f'{s.achieved_rate:.0f}' if s.achieved_rate else '-'):>10}"
            f"  {', '.join(f'{v:.0f}' for v in s.runs)}{'  INCOMPLETE' if s.incomplete else ''}"
        )
    return lines


def cpu_table(summaries: list[Summary]) -> list[str]:
    """Where the bursts' CPU went, per delivery: the budget a figure is bound by."""
    head = (
        f"{'CPU us per delivery (bursts)':<33}{'system':>9}{'db/broker':>11}{'receiver':>10}"
        f"{'machine':>9}  (machine: every core's busy time, whatever ran)"
    )
    lines = [head, "-" * len(head)]
    for s in summaries:
        cells = [s.cpu_us.get(part) for part in CPU_PARTS]
        widths = (9, 11, 10, 9)
        lines.append(
            f"{s.system:<33}"
            + "".join(
                f"{(f'{c:.0f}' if c is not None else '-'):>{w}}"
                for c, w in zip(cells, widths, strict=True)
            )
        )
    return lines


def verdicts(summaries: list[Summary], opts: Options) -> list[dict[str, Any]]:
    ceiling = next(s.per_s for s in summaries if s.system == "ceiling")
    celery = next((s.per_s for s in summaries if s.system == "celery"), None)
    out: list[dict[str, Any]] = []
    for s in (s for s in summaries if s.system.startswith("mediahooks")):
        share = s.per_s / ceiling
        out.append(
            {
                "system": s.system,
                "target": f"deliveries/s >= {CEILING_SHARE:.0%} of the ceiling (durable)",
                "value": f"{share:.0%} ({s.per_s:.0f} of {ceiling:.0f}/s)",
                "met": share >= CEILING_SHARE,
            }
        )
        if celery:
            out.append(
                {
                    "system": s.system,
                    "target": f"deliveries/s >= {CELERY_FACTOR:g}x Celery",
                    "value": f"{s.per_s / celery:.2f}x ({s.per_s:.0f} vs {celery:.0f}/s)",
                    "met": s.per_s >= CELERY_FACTOR * celery,
                }
            )
        p99, achieved = s.p99_ms, s.achieved_rate or 0.0
        out.append(
            {
                "system": s.system,
                "target": f"p99 < {P99_LIMIT_MS:g} ms at {opts.rate:g} events/s offered",
                "value": f"p99 {_ms(p99)} ms, {achieved:.0f} events/s achieved",
                # Latency at a rate the producers could not reach does not meet the target.
                "met": p99 is not None
                and p99 < P99_LIMIT_MS
                and achieved >= RATE_SHARE * opts.rate,
            }
        )
    return out


def write_json(
    opts: Options,
    env: dict[str, Any],
    runs: list[Figures],
    summaries: list[Summary],
    judged: list[dict[str, Any]],
) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"delivery-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    document = {
        "options": asdict(opts),
        "environment": env,
        "summary": [asdict(s) for s in summaries],
        "verdicts": judged,
        "runs": [asdict(r) for r in runs],
    }
    path.write_text(json.dumps(_finite(document), indent=2) + "\n")
    return path


def _finite(value: Any) -> Any:
    # Infinity (nothing arrived) is not JSON; null says "unknown" just as well.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def report(opts: Options, env: dict[str, Any], runs: list[Figures]) -> None:
    systems = list(dict.fromkeys(r.system for r in runs))
    summaries = [summarize_system(s, [r for r in runs if r.system == s]) for s in systems]
    judged = verdicts(summaries, opts)
    print()
    for line in preamble(opts, env):
        print(line)
    print()
    for line in table(summaries, opts):
        print(line)
    print()
    for line in cpu_table(summaries):
        print(line)
    print()
    for v in judged:
        mark = "PASS" if v["met"] else "FAIL"
        print(f"{mark}  {v['system']:<33} {v['target']}: {v['value']}")
    notes = caveats(env)
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")
    path = write_json(opts, env, runs, summaries, judged)
    print()
    print(f"results: {path.relative_to(BENCH_DIR.parent)}")


def preamble(opts: Options, env: dict[str, Any]) -> list[str]:
    return [
        f"Webhook delivery: {opts.events} events x {opts.webhooks} webhooks = "
        f"{opts.deliveries} deliveries per throughput run; latency at {opts.rate:g} events/s "
        f"offered for {opts.duration:g} s ({opts.paced_events * opts.webhooks} deliveries).",
        f"{env['cpus']} CPUs, source {env['source']}; ceiling: aiohttp, concurrency "
        f"{env['ceiling_concurrency']}; mediahooks: default settings, {opts.producers} "
        f"concurrent producers in the burst; celery: {env['celery']}.",
        f"deliveries/s: median of up to {opts.repeats} burst runs; p50/p99 ms (arrival minus "
        f"commit or enqueue): median of {opts.latency_repeats} paced run(s); events/s: the "
        "offered rate really achieved.",
    ]


def caveats(env: dict[str, Any]) -> list[str]:
    notes = []
    # Sampled while none of the benchmark's own processes ran: whatever is busy is other work.
    busy = [b for b in (env["cpu_busy_at_start"], env["cpu_busy_at_end"]) if b is not None]
    if busy and max(busy) > OTHER_WORK_LIMIT:
        notes.append(
            f"other work kept {env['cpu_busy_at_start']:.0%} of the CPUs busy before the run "
            f"and {env['cpu_busy_at_end']:.0%} after it: the figures are noisy"
        )
    pg = env.get("postgresql", {})
    if pg.get("autovacuum") == "off":
        notes.append(
            "PostgreSQL runs with autovacuum=off: fresh tables are never analyzed and dead "
            "row versions are never reclaimed during a run"
        )
    return notes


def describe(f: Figures) -> str:
    rate = f", {f.achieved_rate:.0f} events/s" if f.achieved_rate else ""
    missing = f" ({f.expected - f.arrived} never arrived)" if not f.complete else ""
    lat = f"p50 {_ms(f.p50_ms)} ms, p99 {_ms(f.p99_ms)} ms"
    return f"{f.arrived}/{f.expected} in {f.seconds:.2f} s = {f.per_s:.0f}/s, {lat}{rate}{missing}"
