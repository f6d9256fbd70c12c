"""A webhook URL taken apart once, into what the dispatcher's client connects to."""

from __future__ import annotations

import pytest

from mediahooks.delivery.client import target


def test_targets_are_taken_apart_once() -> None:
    t = target("https://Example.com/p")
    assert (t.https, t.host, t.port, t.path, t.host_header) == (
        True,
        "example.com",
        443,
        "/p",
        "example.com",
    )
    assert target("http://[::1]:8080").host_header == "[::1]:8080"
    assert target("http://b\u00fccher.example/").host_header == "xn--bcher-kva.example"
    with pytest.raises(ValueError, match="http:// or https://"):
        target("ftp://example.com/")
