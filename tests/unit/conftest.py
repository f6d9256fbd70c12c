"""The unit layer's rule, enforced: no sockets and no processes. A test here that connects,
binds or starts a program fails at once, and belongs in `integration/` or `acceptance/`."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest


def _refused(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("a unit test may not open a connection or start a process")


@pytest.fixture(autouse=True)
def no_input_output(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refused)
    monkeypatch.setattr(subprocess.Popen, "__init__", _refused)
