"""The command line as a user runs it: a real `mediahooks` process."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

MEDIAHOOKS = [sys.executable, "-m", "mediahooks"]


def run_until(args: list[str], env: dict[str, str], pattern: str, timeout: float = 30) -> str:
    """Run a command until its output matches ``pattern``, then stop it; return the output."""
    proc = subprocess.Popen(
        MEDIAHOOKS + args,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output = ""
    deadline = time.monotonic() + timeout
    try:
        while not re.search(pattern, output):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"no {pattern!r} in output:\n{output}")
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                output += os.read(proc.stdout.fileno(), 65536).decode(errors="replace")
    finally:
        proc.terminate()
        proc.wait(10)
    return output


def test_first_start_creates_an_account_and_shows_its_secret_once(tmp_path: Path) -> None:
    args = ["serve", "--port", "0", "--data-dir", str(tmp_path)]
    first = run_until(args, {}, r"READY http://127\.0\.0\.1:\d+")
    assert "shown once" in first
    account = re.search(r"account\s+(\w{6})", first)
    assert account is not None
    again = run_until(args, {}, r"READY")
    assert "shown once" not in again
    assert f"account    {account.group(1)}" in again


def test_demo_shows_a_verified_delivery(tmp_path: Path) -> None:
    out = run_until(
        ["serve", "--demo", "--port", "0", "--data-dir", str(tmp_path)],
        {"MEDIAHOOKS_API_SECRET": "given-secret"},
        r"got media/completed for demo .*both signatures verified",
        timeout=90,
    )
    assert "shown once" not in out  # given up front, so nothing to show


def test_migrate_and_version(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIAHOOKS_DATA_DIR": str(tmp_path)}
    done = subprocess.run([*MEDIAHOOKS, "migrate"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mediahooks.db").exists()
    version = subprocess.run([*MEDIAHOOKS, "version"], capture_output=True, text=True)
    assert re.fullmatch(r"\d+\.\d+\.\d+\n", version.stdout)


def test_a_bad_setting_is_refused_with_its_name(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MEDIAHOOKS_RETRY_SCHEDULE": "5,soon",
        "MEDIAHOOKS_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run([*MEDIAHOOKS, "migrate"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "MEDIAHOOKS_RETRY_SCHEDULE" in done.stderr
    assert "Traceback" not in done.stderr
