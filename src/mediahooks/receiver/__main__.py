"""`python -m mediahooks.receiver`: the `listen` command alone, for an install without the
server's dependencies."""

import typer

from mediahooks.receiver.cli import listen_command

typer.run(listen_command)
