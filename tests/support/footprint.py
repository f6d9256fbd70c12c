"""The receiver's footprint: Python code run with the server's dependencies made unimportable."""

from __future__ import annotations

# The server's own dependencies. (pydantic is not among them: Typer, which `listen` needs, now
# requires it too.)
SERVER_PACKAGES = [
    "fastapi",
    "starlette",
    "sqlalchemy",
    "uvicorn",
    "av",
    "pydantic_settings",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "prometheus_client",
]


BLOCKER = f"""
import importlib.abc, sys
BLOCKED = set({SERVER_PACKAGES!r})
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is a server dependency")
        return None
sys.meta_path.insert(0, Block())
"""
