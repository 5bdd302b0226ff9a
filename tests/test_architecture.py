"""The package's shape: imports run one way along the data flow, SQL lives only in the store,
no module grows past what one reader can hold.

Stages, in the order data flows through them. A module may import from its own stage and from
earlier ones, never from a later one; inside a stage, imports form no cycle. Imports inside
functions and under TYPE_CHECKING count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "newsletter"

STAGES = [
    # the base every stage may use: errors, the clock, settings, dates, files, signing, browser
    {"errors", "clock", "config", "dates", "files", "tokens", "browser", "registry"},
    {"store"},
    {"content"},
    {"compose"},
    {"mail"},
    {"delivery"},
    {"audience"},
    {"checks"},
    {"publish", "reports"},
    {"workflow"},
    {"web"},
    {"cli", "demo", "entry", "__main__", "__init__"},
]
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(("newsletter",) + parts)] = path
    return out


def stage_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for rank, names in enumerate(STAGES):
        if top in names:
            return rank
    raise AssertionError(f"{module} belongs to no stage - add its folder to STAGES")


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The package's modules that `path` imports (anywhere in the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and name != "newsletter":
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(p, m, set(mods)) for m, p in mods.items()}


def test_every_module_belongs_to_a_stage():
    for module in modules():
        stage_of(module)


def test_no_stage_imports_a_later_one():
    backward = sorted(f"{m} -> {dep}" for m, deps in graph().items() for dep in deps
                      if stage_of(dep) > stage_of(m))
    assert backward == []


def test_no_import_cycles():
    edges = graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in edges.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            # a package importing its own submodules is how it registers them, not a cycle
            if len(component) > 1 and not _package_and_children(component):
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert cycles == []


def _package_and_children(component: list[str]) -> bool:
    shortest = min(component, key=len)
    return all(m == shortest or m.startswith(shortest + ".") for m in component) and \
        all(shortest not in edges for edges in [graph()[m] for m in component if m != shortest])


SQL = re.compile(r"""(?ix)
    \b(select|insert|update|delete)\b[^"'\n]{0,80}\b(from|into|set|where)\b   # SQL text
    | \.execute\(|\.executemany\(|\.query\(|\.rows_where\(|\bdb\[|\.conn\b   # database calls
""")


def test_sql_lives_only_in_the_store():
    offenders = []
    for module, path in modules().items():
        if module == "newsletter.store" or module.startswith("newsletter.store."):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if SQL.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()[:80]}")
    assert offenders == []


@pytest.mark.parametrize("module,path", sorted(modules().items()))
def test_no_module_over_400_lines(module, path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines - split it along the ideas it holds"


def test_the_store_knows_the_newest_migration():
    from newsletter.store import schema
    from newsletter.store.db import LATEST_MIGRATION

    assert max(name for name in vars(schema) if re.fullmatch(r"m\d{3}_\w+", name)) == LATEST_MIGRATION
