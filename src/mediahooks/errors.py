"""The one tree of the service's own errors (pure, stdlib only).

A use case (`mediahooks.actions`) or a domain module raises a kind below; each door says what
the kind means to its caller in one place: the API maps it to a status and the platform's
envelope (`api/envelope.py`), the dashboard to a message on the form (`dashboard/web.py`). A
domain error keeps its own class (`clips.ClipRefused`, `store.assets.AssetNotFound`, ...) and
takes one of these kinds as its base, so a door needs no list of every module's exceptions.

The kinds say what is wrong, not which status it gets: `Invalid` and `Refused` are both 400 at
the API (the platform answers 400 to both), but a caller may tell them apart.
"""

from __future__ import annotations


class MediahooksError(Exception):
    """An error the service means: a sentence a person can act on, and per-field reasons."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class Invalid(MediahooksError):
    """The request itself is wrong: a field out of range, a value that cannot be."""


class Refused(MediahooksError):
    """A well-formed request the current state of things refuses (an asset still processing)."""


class NotFound(MediahooksError):
    """What the request names does not exist for this caller."""


class Conflict(MediahooksError):
    """The request collides with the thing's state (a delivery still pending)."""


class Unauthorized(MediahooksError):
    """No credentials, or credentials that are not valid."""


class Forbidden(MediahooksError):
    """Valid credentials or a signed link that do not allow this."""


class Unavailable(MediahooksError):
    """Something the service needs is away for the moment; the same request may work later."""
