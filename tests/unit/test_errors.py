"""The one error tree: each kind has its status at the API, a domain error answers by the kind
it is based on, and the dashboard shows the same sentence on its form."""

import inspect

from mediahooks import errors
from mediahooks.api.envelope import STATUS_OF_KIND, ApiError, status_of
from mediahooks.dashboard.web import problem
from mediahooks.delivery.guard import TargetRefused
from mediahooks.media.clips import ClipRefused
from mediahooks.media.stills import NoPicture
from mediahooks.store.assets import AssetNotFound


def test_every_kind_of_the_tree_has_a_status() -> None:
    kinds = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.MediahooksError) and cls is not errors.MediahooksError
    }
    assert kinds == set(STATUS_OF_KIND)


def test_domain_errors_answer_by_their_kind() -> None:
    clip = ClipRefused("startTime is after stopTime.", "startTime")
    assert status_of(clip) == 400 and clip.errors == {"startTime": [clip.message]}
    assert status_of(AssetNotFound("0" * 32)) == 404
    assert status_of(TargetRefused("blocked", "10.0.0.1 is a private address")) == 400
    assert status_of(NoPicture("no video")) == 404
    assert status_of(errors.Conflict("still pending")) == 409
    assert status_of(ApiError(416, "Range outside the file")) == 416


def test_an_error_of_no_kind_has_no_status() -> None:
    """The API answers it as the bug it is (500), never as a client's mistake."""
    assert status_of(errors.MediahooksError("a kind was forgotten")) is None


def test_the_dashboard_shows_the_same_sentence() -> None:
    assert problem(ClipRefused("No timeline for stream cam.", "streamName")) == (
        "No timeline for stream cam."
    )
