"""The pure rules: retry policy, asset lifecycle, SSRF address judgement."""

import ipaddress

import pytest

from mediahooks import assets, retry
from mediahooks.assets import Status
from mediahooks.config import allowed_networks
from mediahooks.delivery.guard import check_url, refusal

POLICY = retry.Policy(schedule=(5, 300, 1800), jitter=0.2, retry_after_cap=600)


def test_svix_schedule_is_the_default() -> None:
    assert retry.Policy().schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert retry.Policy().max_attempts == 8


@pytest.mark.parametrize(
    ("status", "tries", "verdict"),
    [
        (200, 1, retry.Verdict.SUCCEEDED),
        (204, 4, retry.Verdict.SUCCEEDED),
        (301, 1, retry.Verdict.RETRY),
        (500, 1, retry.Verdict.RETRY),
        (None, 3, retry.Verdict.RETRY),
        (500, 4, retry.Verdict.FAILED),
        (410, 1, retry.Verdict.GONE),
    ],
)
def test_verdicts(status: int | None, tries: int, verdict: retry.Verdict) -> None:
    assert retry.verdict(status, tries, POLICY) is verdict


def test_delay_follows_the_schedule_within_jitter() -> None:
    assert retry.next_delay(1, POLICY, rand=lambda: 0.5) == 5
    assert retry.next_delay(2, POLICY, rand=lambda: 0.0) == pytest.approx(300 * 0.8)
    assert retry.next_delay(3, POLICY, rand=lambda: 1.0) == pytest.approx(1800 * 1.2)


def test_retry_after_is_a_floor_with_a_cap() -> None:
    half = lambda: 0.5  # noqa: E731
    assert retry.next_delay(1, POLICY, 429, retry_after=60, rand=half) == 60
    assert retry.next_delay(1, POLICY, 503, retry_after=1, rand=half) == 5
    assert retry.next_delay(1, POLICY, 429, retry_after=10_000, rand=half) == 600
    # Only 429 and 503 carry a meaningful Retry-After.
    assert retry.next_delay(1, POLICY, 500, retry_after=60, rand=half) == 5


def test_retry_after_parses_seconds_and_dates() -> None:
    assert retry.parse_retry_after("120", now=0) == 120
    assert retry.parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40) == 60
    assert retry.parse_retry_after("soon", now=0) is None
    assert retry.parse_retry_after(None, now=0) is None


def test_schedule_parsing() -> None:
    assert retry.parse_schedule("5, 300,1800") == (5, 300, 1800)
    with pytest.raises(ValueError, match="comma-separated"):
        retry.parse_schedule("5,soon")
    with pytest.raises(ValueError):
        retry.parse_schedule("-1")


def test_asset_lifecycle() -> None:
    assert assets.check_transition(None, Status.PROCESSING) == "processing"
    assert assets.check_transition(Status.PROCESSING, Status.COMPLETE) == "completed"
    assert assets.check_transition(Status.PROCESSING, Status.ERROR) == "errored"
    assert assets.check_transition(Status.COMPLETE, Status.DELETING) is None
    assert assets.check_transition(Status.DELETING, Status.DELETED) == "deleted"
    for current, new in [
        (Status.COMPLETE, Status.PROCESSING),
        (Status.PROCESSING, Status.DELETING),
        (Status.DELETED, Status.DELETING),
        (None, Status.COMPLETE),
    ]:
        with pytest.raises(assets.InvalidTransition):
            assets.check_transition(current, new)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "not a global"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fd00::1", "private"),
        ("fe80::1", "link-local"),
        ("::ffff:10.0.0.1", "embeds 10.0.0.1"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:a00:1::", "embeds 10.0.0.1"),
        ("224.0.0.1", "multicast"),
        # NAT64, SIIT and IPv4-compatible forms are judged by the IPv4 address they carry.
        ("64:ff9b::a00:1", "(NAT64) embeds 10.0.0.1"),
        ("64:ff9b::808:808", None),
        ("64:ff9b:1::808:808", "local-use NAT64"),
        ("::ffff:0:a00:1", "(SIIT) embeds 10.0.0.1"),
        ("::ffff:0:808:808", None),
        ("::a00:1", "(IPv4-compatible) embeds 10.0.0.1"),
        ("::808:808", None),
        ("::2", "embeds 0.0.0.2"),
        ("fec0::1", "site-local"),
        ("2002:808:808::", None),
        ("2002:c058:6301::", "6to4 relay anycast"),
        ("192.88.99.1", "6to4 relay anycast"),
    ],
)
def test_address_judgement(address: str, reason: str | None) -> None:
    got = refusal(ipaddress.ip_address(address))
    assert (got is None) if reason is None else (reason in (got or ""))


def test_an_allow_list_admits_refused_ranges_it_names() -> None:
    site = ipaddress.ip_address("fec0::1")
    assert refusal(site, allowed_networks("fec0::/10")) is None
    assert refusal(site, allowed_networks("true")) is None
    nat64 = ipaddress.ip_address("64:ff9b::a00:1")
    assert refusal(nat64, allowed_networks("10.0.0.0/8")) is None  # judged by what it carries
    assert refusal(nat64, allowed_networks("192.168.0.0/16")) is not None


def test_allow_list() -> None:
    allowed = allowed_networks("127.0.0.0/8, ::1/128")
    assert refusal(ipaddress.ip_address("127.0.0.5"), allowed) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), allowed) is not None
    assert refusal(ipaddress.ip_address("10.0.0.1"), allowed_networks("true")) is None
    assert allowed_networks("false") == []
    with pytest.raises(ValueError, match="MEDIAHOOKS_ALLOW_PRIVATE_TARGETS"):
        allowed_networks("everything")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "javascript:alert(1)", "http://", "https://u:p@example.com/"]
)
def test_only_plain_http_urls(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url)


def test_clip_pieces_follow_the_timelines() -> None:
    from mediahooks.timeline import Span, pieces

    spans = [Span(2, 7, 100_000, 200_000), Span(1, 7, 0, 90_000)]
    assert pieces(spans, 50_000, 150_000) == [
        Span(1, 7, 50_000, 90_000),
        Span(2, 7, 100_000, 150_000),
    ]
    assert pieces(spans, 89_500, 100_400) == []  # the leftovers are too short to be clips
    assert pieces(spans, 300_000, 400_000) == []


def test_recordings_split_at_24_hours() -> None:
    from mediahooks.timeline import MAX_RECORDING_MS, recording_stop

    assert recording_stop(0, 3_600_000, ended=False) is None
    assert recording_stop(0, 3_600_000, ended=True) == 3_600_000
    assert recording_stop(0, MAX_RECORDING_MS + 5_000, ended=False) == MAX_RECORDING_MS
    assert recording_stop(0, MAX_RECORDING_MS + 5_000, ended=True) == MAX_RECORDING_MS


@pytest.mark.parametrize(
    ("start", "stop", "reason"),
    [
        (0, 5_000, "at least 10 s"),
        (0, 9 * 3_600_000, "at most 8 h"),
        (200_000, 300_000, "in the past"),
        (0, 150_000, "future"),
        (50_000, 40_000, "after startTime"),
        (0, 60_000, None),
    ],
)
def test_clip_ranges(start: int, stop: int, reason: str | None) -> None:
    from mediahooks.timeline import check_range

    got = check_range(start, stop, now_ms=100_000 if stop < 9 * 3_600_000 else 10 * 3_600_000)
    assert (got is None) if reason is None else (reason in (got or ""))


def test_download_links_are_signed_and_expire() -> None:
    from mediahooks.media.links import refusal, signature

    key, other = b"k" * 32, b"o" * 32
    sig = signature(key, "a" * 32, 2_000)
    assert refusal(key, "a" * 32, 2_000, sig, now_ms=1_000) is None
    assert "expired" in (refusal(key, "a" * 32, 2_000, sig, now_ms=2_000) or "")
    assert "not valid" in (refusal(key, "b" * 32, 2_000, sig, now_ms=1_000) or "")
    assert "not valid" in (refusal(key, "a" * 32, 3_000, sig, now_ms=1_000) or "")
    assert "not valid" in (refusal(other, "a" * 32, 2_000, sig, now_ms=1_000) or "")
