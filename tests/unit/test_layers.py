"""The packages of `mediahooks` import each other one way only: a cycle between two rooms (say
`store` and `media`) means neither can be read, tested or replaced without the other."""

import ast
from collections import defaultdict
from pathlib import Path

import mediahooks

ROOT = Path(mediahooks.__file__).parent


# The web frameworks, counted as rooms of their own so a rule can keep a room off them.
WEB_FRAMEWORKS = ("fastapi", "starlette")
# What a room must never import, and why.
FORBIDDEN = {
    # The use cases know nothing of HTTP nor of the doors that call them.
    "actions": {"api", "dashboard", "fastapi", "starlette"},
    # The dashboard is a door beside the API, not behind it: both call `actions`.
    "dashboard": {"api"},
    "api": {"dashboard"},
}


# Doors that reach the database only through `actions`: their use cases moved there, and a
# query written back into one would start the drift again.
THIN_DOORS = {"api/playback.py", "api/viewing.py", "api/thumbnails.py", "api/whip.py"}


def room_of(module: str) -> str:
    """`mediahooks.store.db` -> `store`; a top-level module is a room of its own."""
    return module.split(".")[1]


def imports() -> dict[str, dict[str, set[str]]]:
    """room -> imported room -> the files that import it."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if len(parts) < 2:
            continue
        room = parts[1]
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "mediahooks":
                    names = [f"mediahooks.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("mediahooks.") and room_of(name) != room:
                    found[room][room_of(name)].add(str(path.relative_to(ROOT)))
                elif name.split(".")[0] in WEB_FRAMEWORKS:
                    found[room][name.split(".")[0]].add(str(path.relative_to(ROOT)))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's rooms, found by depth-first search from each room."""
    found: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == path[0]:
                found.append(path)
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its smallest room
                walk([*path, nxt])

    for start in sorted(graph):
        walk([start])
    return found


def test_the_packages_import_one_way() -> None:
    edges = imports()
    graph = {
        room: {t for t in targets if t not in WEB_FRAMEWORKS} for room, targets in edges.items()
    }
    found = cycles(graph)
    details = [
        " -> ".join([*cycle, cycle[0]])
        + ": "
        + "; ".join(
            f"{a}->{b} in {', '.join(sorted(edges[a][b]))}"
            for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True)
        )
        for cycle in found
    ]
    assert not found, "import cycles between packages:\n" + "\n".join(details)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_doors_meet_only_in_the_use_cases() -> None:
    edges = imports()
    broken = [
        f"{room} imports {target} in {', '.join(sorted(edges[room][target]))}"
        for room, forbidden in FORBIDDEN.items()
        for target in sorted(forbidden & set(edges.get(room, {})))
    ]
    assert not broken, "\n".join(broken)


def test_the_thin_doors_do_not_query_the_store() -> None:
    assert not THIN_DOORS & imports()["api"]["store"]


def test_the_rule_sees_an_import_of_the_web_framework() -> None:
    """The walk records `fastapi` imports, so the rule above would see one in `actions`."""
    assert "fastapi" in imports()["api"]
    assert "api" in imports()["server"] or "dashboard" in imports()["server"]
    assert "api/tokens.py" in imports()["api"]["store"]  # paths as THIN_DOORS names them
