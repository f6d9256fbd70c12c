"""Regular expressions that users give us (webhook filters, publish-token stream rules): one
engine and one time limit for all of them.

They run in the process that serves everyone, on its event loop: one with catastrophic
backtracking (``(a|aa)+`` on a long run of ``a``) would stall every request for seconds or
years. The `regex` engine can stop a match after a time limit; a pattern that runs out of time
counts as not matching, and says so in the log.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Literal

import regex

# Long enough for any sane pattern on a 128-character stream name (they take microseconds),
# short enough that a hostile one costs a request almost nothing.
SECONDS = 0.01
log = logging.getLogger("mediahooks.patterns")


def problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used, in words for the person who wrote it; None if it can."""
    try:
        regex.compile(pattern)
    except regex.error as exc:
        return f"is not a valid regular expression: {exc}"
    return None


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> regex.Pattern[str] | None:
    try:
        return regex.compile(pattern)
    except regex.error:
        return None  # saved before validation existed (or under another engine): never matches


def matches(
    pattern: str, text: str, how: Literal["search", "fullmatch"], what: str = "pattern"
) -> bool:
    """Whether ``pattern`` is found in ``text`` (``search``) or matches all of it
    (``fullmatch``), within the time limit. ``what`` names the pattern in the log."""
    compiled = _compiled(pattern)
    if compiled is None:
        return False
    run = compiled.search if how == "search" else compiled.fullmatch
    try:
        return run(text, timeout=SECONDS) is not None
    except TimeoutError:
        log.warning(
            "%s %r took longer than %g s on %r: treated as no match", what, pattern, SECONDS, text
        )
        return False
