"""CPU time spent by groups of processes over a measured window, read from /proc (Linux).

A throughput figure alone does not say where the time went. On a small machine the system under
test, its database or broker and the receiver share the cores, so CPU per delivery, part by part,
shows what a figure is bound by.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")

Pids = Callable[[], set[int]]  # a group's processes, asked at the start and at the end


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of one process so far; None once it is gone."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy_seconds() -> float:
    """CPU seconds every core spent busy so far (all processes, the kernel included)."""
    values = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


def named(prefix: str) -> Pids:
    """The processes whose command name starts with ``prefix`` (e.g. every PostgreSQL backend)."""

    def pids() -> set[int]:
        found = set()
        for entry in PROC.iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "comm").read_text().startswith(prefix):
                        found.add(int(entry.name))
                except OSError:
                    continue
        return found

    return pids


def with_children(*roots: int) -> Pids:
    """``roots`` and every process descended from them (a prefork pool's children)."""

    def pids() -> set[int]:
        parent_of: dict[int, int] = {}
        for entry in PROC.iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                parent_of[int(entry.name)] = int(stat[1])
        found = set(roots)
        grew = True
        while grew:
            more = {pid for pid, parent in parent_of.items() if parent in found} - found
            found |= more
            grew = bool(more)
        return found

    return pids


class Window:
    """CPU seconds per group between `start` and `stop`, and the whole machine's as "machine".

    A process that starts within the window counts from its birth; one that ends within it
    counts only up to the start (its last moments are lost: keep groups' processes alive).
    """

    def __init__(self, groups: dict[str, Pids]) -> None:
        self.groups = groups
        self._before: dict[str, dict[int, float]] = {}
        self._machine = 0.0

    def _snapshot(self) -> dict[str, dict[int, float]]:
        taken: dict[str, dict[int, float]] = {}
        for name, pids in self.groups.items():
            taken[name] = {}
            for pid in pids():
                seconds = cpu_seconds(pid)
                if seconds is not None:
                    taken[name][pid] = seconds
        return taken

    def start(self) -> None:
        self._before = self._snapshot()
        self._machine = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        after = self._snapshot()
        used = {
            name: sum(
                seconds - self._before[name].get(pid, 0.0) for pid, seconds in after[name].items()
            )
            for name in self.groups
        }
        used["machine"] = machine_busy_seconds() - self._machine
        return used
