"""One pattern engine for webhook filters and token stream rules."""

from __future__ import annotations

from mediahooks import patterns


def test_one_engine_decides_filters_and_stream_rules() -> None:
    assert patterns.matches("cam", "my-cam-1", "search")
    assert not patterns.matches("cam", "my-cam-1", "fullmatch")
    assert patterns.matches("my-cam-[0-9]", "my-cam-1", "fullmatch")
    assert not patterns.matches("a(", "a(", "search")  # invalid: matches nothing
    assert not patterns.matches("(a|aa)+", "a" * 60 + "-", "fullmatch")
    assert patterns.problem("a(") is not None and patterns.problem("(a|aa)+") is None
