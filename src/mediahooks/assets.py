"""The media asset lifecycle: states, allowed transitions, and the hook each one emits (pure).

The REST status words (``complete``, ``error``...) differ from the hook event words
(``completed``, ``errored``...); this module is the one place that maps one to the other.
"""

from __future__ import annotations

from enum import StrEnum

from mediahooks.errors import Conflict
from mediahooks.events import MediaEvent


class Status(StrEnum):
    PROCESSING = "processing"
    COMPLETE = "complete"
    ERROR = "error"
    DELETING = "deleting"
    DELETED = "deleted"


class InvalidTransition(Conflict, ValueError):
    """A state change the asset's lifecycle does not allow from where it is."""


# `None` is "the asset does not exist yet".
TRANSITIONS: dict[Status | None, frozenset[Status]] = {
    None: frozenset({Status.PROCESSING}),
    Status.PROCESSING: frozenset({Status.COMPLETE, Status.ERROR}),
    Status.COMPLETE: frozenset({Status.DELETING}),
    Status.ERROR: frozenset({Status.DELETING}),
    Status.DELETING: frozenset({Status.DELETED}),
    Status.DELETED: frozenset(),
}

# `deleting` emits nothing: the `deleted` hook fires once the file is really gone.
HOOK_EVENT: dict[Status, MediaEvent] = {
    Status.PROCESSING: "processing",
    Status.COMPLETE: "completed",
    Status.ERROR: "errored",
    Status.DELETED: "deleted",
}

# The platform's older `recordings` hooks, sent for recordings beside the `media` ones.
RECORDINGS_EVENT: dict[Status, str] = {
    Status.PROCESSING: "started",
    Status.COMPLETE: "completed",
    Status.ERROR: "error",
    Status.DELETED: "deleted",
}

DELETABLE = frozenset({Status.COMPLETE, Status.ERROR})


def check_transition(current: Status | None, new: Status) -> MediaEvent | None:
    """Raise unless ``current -> new`` is allowed; return the hook event it emits, if any."""
    if new not in TRANSITIONS[current]:
        raise InvalidTransition(f"a media asset cannot go from {current or 'nothing'} to {new}")
    return HOOK_EVENT.get(new)
