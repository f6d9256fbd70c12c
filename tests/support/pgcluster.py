"""A private PostgreSQL cluster a test starts, restarts and stops itself, so that the shared
server the rest of the suite uses is never touched.

Built with the server's own tools (`initdb`, `pg_ctl`) from the PostgreSQL installed on the
machine. PostgreSQL refuses to run as root, so as root the tools run as the `postgres` user.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import tempfile
from pathlib import Path

from .crashkit import free_port


def _bin(tool: str) -> str:
    found = shutil.which(tool) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(f"PostgreSQL's {tool} is not installed (Debian: postgresql)")
    return found


class PrivatePostgres:
    def __init__(self) -> None:
        # Not under pytest's tmp_path: the postgres user must be able to reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="mediahooks-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0

    async def _run(self, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{out.decode(errors='replace')}")

    async def start(self) -> None:
        if not self.data.exists():
            if self._as_postgres:
                shutil.chown(self.dir, "postgres", "postgres")
            await self._run(
                _bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
            )
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        await self._run(
            _bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"),
            "-w", "start",
        )  # fmt: skip

    async def stop(self, mode: str = "fast") -> None:
        """``fast`` (clients are told the server shuts down) or ``immediate`` (as a crash)."""
        await self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    async def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            await self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
