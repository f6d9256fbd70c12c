"""The pure rules of watching and of its doors: who is refused and with which kind, which
subscribe token a viewer presents, which segments a link covers, a subscribe token's streams
after an update, the on-demand thumbnails' window, and WHIP's refusals by kind."""

from __future__ import annotations

import pytest

from mediahooks import errors
from mediahooks.actions.playback import Viewer, covered
from mediahooks.actions.subscribe_tokens import streams_after
from mediahooks.actions.thumbnails import PER_MINUTE, TooSoon, Window
from mediahooks.api.envelope import status_of
from mediahooks.api.whip import _KIND
from mediahooks.media.playback import Access, Grant, refusal


@pytest.mark.parametrize(
    ("access", "refused"),
    [
        (Access(protected=True, public=True, grant_ok=False, token_ok=False), "subscribe token"),
        (Access(protected=False, public=False, grant_ok=False, token_ok=False), "not public"),
        (Access(protected=False, public=True, grant_ok=False, token_ok=False), None),
        (Access(protected=True, public=False, grant_ok=True, token_ok=False), None),
        (Access(protected=True, public=False, grant_ok=False, token_ok=True), None),
    ],
)
def test_a_viewer_without_what_it_takes_is_unauthorized(access: Access, refused: str) -> None:
    found = refusal(access)
    if refused is None:
        assert found is None
    else:
        assert isinstance(found, errors.Unauthorized) and refused in found.message
        assert status_of(found) == 401


def test_the_query_s_subscribe_token_comes_before_the_bearer_one() -> None:
    assert Viewer(token="q", bearer="b").subscribe_token == "q"
    assert Viewer(token="", bearer="b").subscribe_token == "b"
    assert Viewer(token="", bearer=None).subscribe_token is None
    assert Viewer().subscribe_token is None


def test_a_range_link_covers_the_segments_that_overlap_it() -> None:
    ranged = Grant("acc", "cam", 10_000, lo=1_000, hi=2_000)
    assert covered(ranged, None, None)  # untimed: in no playlist yet
    assert covered(ranged, 1_500, 1_000)
    assert covered(ranged, 0, 1_001)
    assert not covered(ranged, 0, 1_000)
    assert not covered(ranged, 2_000, 500)
    assert covered(Grant("acc", "cam", 10_000), 0, 1)  # a live link: every segment


def test_a_subscribe_token_s_streams_after_an_update() -> None:
    stored = [{"streamName": "a", "isRegex": False}, {"streamName": "b", "isRegex": False}]
    added = [{"streamName": "c", "isRegex": True}]
    assert streams_after(stored, ["a"], added) == [stored[1], added[0]]
    assert streams_after(stored, [], []) == stored
    with pytest.raises(errors.Invalid) as refused:
        streams_after(stored, ["a", "b"], [])
    assert refused.value.errors == {"removeTokenStreams": ["would leave no stream"]}


def test_the_thumbnail_window_admits_so_many_a_minute_per_stream() -> None:
    window = Window(PER_MINUTE, 60_000)
    assert [window.admit("acc/cam", 1_000 + i) for i in range(PER_MINUTE)] == [None] * PER_MINUTE
    assert window.admit("acc/cam", 30_000) == 31_000  # the first leaves the window at 61 s
    assert window.admit("acc/other", 30_000) is None
    assert window.admit("acc/cam", 61_000) is None
    too_soon = TooSoon(31_000)
    assert f"At most {PER_MINUTE} thumbnails a minute" in too_soon.message
    assert "in 31.0 s" in too_soon.message


def test_whip_refusals_keep_their_statuses() -> None:
    statuses = {kind: status_of(cls("why")) for kind, cls in _KIND.items()}
    assert statuses == {
        "token": 401,
        "stream": 403,
        "access": 403,
        "live": 409,
        "busy": 503,
        "codec": 400,
        "spool": 503,
    }
