"""Webhook rules without a server: the route list the auth tests walk, and filters that would
backtrack for ages."""

from __future__ import annotations

import asyncio

import pytest

from mediahooks.store import outbox
from support.server import api_routes


def test_the_route_list_covers_the_api() -> None:
    routes = set(api_routes())
    assert {
        ("POST", "/api/webhooks"),
        ("GET", "/api/webhooks/list"),
        ("POST", "/api/webhooks/test/Media"),
        ("GET", "/api/webhooks/1"),
        ("PUT", "/api/webhooks/1"),
        ("DELETE", "/api/webhooks/1"),
        ("GET", "/api/webhooks/1/deliveries"),
        ("GET", "/api/webhooks/1/deliveries/1"),
        ("POST", "/api/webhooks/1/deliveries/1/retry"),
        ("POST", "/api/webhooks/1/recover"),
    } <= routes


@pytest.mark.parametrize("pattern", [r"(a|aa)+$", r"(a|a)+$", r"(a+)+$"])
async def test_a_filter_that_backtracks_for_ages_counts_as_no_match(pattern: str) -> None:
    # With the standard library's engine each of these takes longer than the universe's age on
    # this name; the wait is only there so that a broken guard fails instead of hanging.
    name = "a" * 60 + "!"
    matched = await asyncio.wait_for(asyncio.to_thread(outbox.filter_matches, pattern, name), 30)
    assert not matched
    assert outbox.filter_matches(pattern, "aaa")
