"""`--exec CMD`: run the user's command once per hook, the hook JSON on stdin and its key fields
in `MEDIAHOOKS_*` environment variables.

The command line is the operator's own and runs through the shell, so pipes and redirections
work; what comes from the hook reaches it only as stdin and environment values, never as text
of the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from mediahooks.receiver.models import FeedsHook, Hook, MediaHook

# A command that runs this long is stuck; it is killed and the job tried again later.
TIMEOUT = 600.0
OUTPUT_CAP = 4096


@dataclass(frozen=True)
class Finished:
    output: str  # stdout and stderr together, the last OUTPUT_CAP characters


class CommandFailed(Exception):
    pass


# Words the shell itself understands: nothing on disk to check (some, like `exec`, start a
# program named later on the line; the shell reports that one).
# fmt: off
_SHELL_WORDS = frozenset({
    ".", ":", "[", "[[", "!", "{", "alias", "bg", "break", "case", "cd", "command", "continue",
    "do", "done", "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "false",
    "fg", "fi", "for", "function", "getopts", "hash", "if", "jobs", "kill", "local", "printf",
    "pwd", "read", "readonly", "return", "select", "set", "shift", "source", "test", "then",
    "time", "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset", "until",
    "wait", "while",
})
# fmt: on
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)
_SHELL_SYNTAX = re.compile(r"[$`*?()<>|;&\\]")


def problem(command: str) -> str | None:
    """Why ``command`` cannot run, or None: checked at start, so that a typo shows at once
    rather than as a failed job per hook. The program the shell would start first must exist
    and be executable (a path), or be on PATH (a name); shell words and syntax are the shell's.
    """
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return f"--exec {command!r} is not a valid shell command line: {exc}"
    while words and _ASSIGNMENT.fullmatch(words[0]):
        words.pop(0)  # `LANG=C sort`: variables for the program that follows
    if not words:
        return "--exec needs a command to run" if not command.strip() else None
    program = words[0]
    if program in _SHELL_WORDS or _SHELL_SYNTAX.search(program):
        return None
    if "/" in program:
        path = Path(program).expanduser()
        if not path.exists():
            return f"--exec: {program} does not exist (relative to {Path.cwd()})"
        if not path.is_file() or not os.access(path, os.X_OK):
            return f"--exec: {program} is not an executable file (chmod +x {program}?)"
        return None
    if shutil.which(program) is None:
        return f"--exec: {program!r} is not a command found on PATH"
    return None


def environment(hook: Hook, key: str, file: str | None) -> dict[str, str]:
    """The variables a command gets besides the listener's own environment. ``key`` is the
    hook's ``webhook-id`` (a digest of the body for a platform hook, which has none)."""
    env = {
        "MEDIAHOOKS_TYPE": hook.type,
        "MEDIAHOOKS_EVENT": hook.event,
        "MEDIAHOOKS_TIMESTAMP": str(hook.timestamp),
        "MEDIAHOOKS_WEBHOOK_ID": key,
    }
    if isinstance(hook, MediaHook):
        data = hook.data
        optional = {
            "MEDIAHOOKS_ASSET_ID": data.media_asset_id,
            "MEDIAHOOKS_ASSET_TYPE": data.type,
            "MEDIAHOOKS_STREAM_NAME": data.stream_name,
            "MEDIAHOOKS_STREAM_ID": data.stream_id,
            "MEDIAHOOKS_CHANNEL_ID": data.channel_id,
            "MEDIAHOOKS_TOKEN_ID": None if data.token_id is None else str(data.token_id),
            "MEDIAHOOKS_ERROR": data.error,
            "MEDIAHOOKS_FILE": file,
        }
        env.update({k: v for k, v in optional.items() if v is not None})
    elif isinstance(hook, FeedsHook):
        feed = {
            "MEDIAHOOKS_FEED_ID": hook.data.feed_id,
            "MEDIAHOOKS_STREAM_NAME": hook.data.name,
            "MEDIAHOOKS_STREAM_ID": hook.data.stream_id,
        }
        env.update({k: v for k, v in feed.items() if v is not None})
    return env


async def run(command: str, hook: Hook, body: bytes, key: str, file: str | None) -> Finished:
    """Run ``command``; raise CommandFailed when it exits non-zero or takes too long."""
    proc = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **environment(hook, key, file)},
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            output, _ = await proc.communicate(body)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise CommandFailed(f"--exec was still running after {TIMEOUT:g} s; killed") from None
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    text = output.decode(errors="replace")[-OUTPUT_CAP:]
    if proc.returncode != 0:
        tail = text.strip().splitlines()[-1:] or [""]
        raise CommandFailed(f"--exec exited with {proc.returncode}: {tail[0][:200]}")
    return Finished(text)
