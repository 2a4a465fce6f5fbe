"""The tree is a picture of the architecture: packages follow the mail, each importing
only packages below it, with no import circles and no module or function too long to
read in one go."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("gateway", "parsers", "store")

# Bottom to top. A module may import from its own floor's package or any lower one.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("parsers", "store", "templates"),
    ("gateway",),  # root helpers: clock, business calendar, time text, log format
    ("gateway.config",),
    ("gateway.ingest", "gateway.outbound"),
    ("gateway.cases",),
    ("gateway.timeline",),
    ("gateway.leads",),
    ("gateway.classify",),
    ("gateway.act",),
    ("gateway.work",),
    ("gateway.ops",),
    ("gateway.daemon",),
    ("gateway.cli",),
    ("gateway.__main__",),
)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> Iterator[tuple[str, Path]]:
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gateway":  # `from gateway import x` names a module
                yield from (f"gateway.{alias.name}" for alias in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _floor(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, floor)
    for number, units in enumerate(FLOORS):
        for unit in units:
            inside = module == unit or module.startswith(unit + ".")
            if inside and (best is None or len(unit) > best[0]):
                best = (len(unit), number)
    return None if best is None else best[1]


def _unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "gateway" or len(parts) == 1:
        return parts[0]
    if (ROOT / "gateway" / parts[1]).is_dir() or parts[1] in {"daemon", "__main__"}:
        return ".".join(parts[:2])
    return "gateway"


def test_packages_import_only_packages_below_them() -> None:
    wrong = []
    for module, path in _modules():
        own = _floor(module)
        assert own is not None, f"{module} sits on no floor; add its package to FLOORS"
        for target in _imports(path):
            floor = _floor(target)
            if floor is None or _unit(target) == _unit(module):
                continue
            if floor >= own:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_import_circles() -> None:
    graph: dict[str, set[str]] = {}
    names = {module for module, _ in _modules()}
    for module, path in _modules():
        graph[module] = {target for target in _imports(path) if target in names}
    # Tarjan's strongly connected components; any component of two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert circles == []


def test_modules_and_functions_stay_short() -> None:
    too_long = []
    for module, path in _modules():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{module}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert too_long == []
