"""The kit's layers, kept by a test over its import graph (read from the source, not by importing
it): every import runs down a layer or stays in its own folder, a stage never imports another
stage (the API only reads the store's queries and the gate's dead letters), no pipeline code
imports the lab's servers or the lessons' helpers, and no two modules import each other, however
indirectly.

The layers, bottom first (each folder's ``__init__.py`` says the same in words)::

    errors, exports, lifecycle, paths, waiting   cross-cutting, at the root
    settings                     every knob, from environment variables
    market                       the domain: no I/O
    kafka, database              plumbing
    monitoring                   generic collectors; knows no stage
    runtime                      how a service runs
    ingest, quality, store, archive, book, api   the pipeline's stages
    lab, lessons                 the servers a learner runs; notebook-only helpers
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "orderbook_kit"
ROOT_MODULES = {"errors", "exports", "lifecycle", "paths", "waiting"}
BASE = {"root", "settings"}
PLUMBING = BASE | {"market", "kafka", "database"}
STAGES = {"ingest", "quality", "store", "archive", "book", "candles", "api"}
# What each part of the kit may import, besides itself.
MAY_IMPORT: dict[str, set[str]] = {
    "root": set(),
    "settings": {"root"},
    "market": BASE,
    "kafka": BASE | {"market"},
    "database": BASE,
    "monitoring": PLUMBING,
    "runtime": PLUMBING | {"monitoring"},
    "ingest": PLUMBING | {"monitoring", "runtime"},
    "quality": PLUMBING | {"monitoring", "runtime"},
    "store": PLUMBING | {"monitoring", "runtime"},
    "archive": PLUMBING | {"monitoring", "runtime"},
    "book": PLUMBING | {"monitoring", "runtime"},
    "candles": PLUMBING | {"monitoring", "runtime"},
    "api": PLUMBING | {"monitoring", "runtime", "store", "quality"},
    "lab": BASE | {"kafka", "database", "runtime"},
    "lessons": PLUMBING | {"monitoring", "runtime", "lab", *STAGES},
}


def module_name(path: Path) -> str:
    parts = ["orderbook_kit", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def part_of(module: str) -> str:
    """The layer a module belongs to: its first folder under the package, or "root"."""
    parts = module.split(".")
    if len(parts) == 1:
        return "public"  # orderbook_kit/__init__.py: the public API re-exports any layer
    return parts[1] if parts[1] in MAY_IMPORT else "root"


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(module: str, *, runtime_only: bool = False) -> Iterator[tuple[str, int]]:
    """The kit's modules that ``module`` imports, with the line. ``runtime_only`` leaves out
    imports made only for the type checker (under ``if TYPE_CHECKING:``)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    skipped = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _type_checking(node):
                skipped.update(id(child) for child in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in MODULES:
                    yield target, node.lineno
                elif base in MODULES:
                    yield base, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name, node.lineno


def test_the_graph_is_read_from_the_whole_kit() -> None:
    # A guard on the test itself: it must see the kit's modules and their imports.
    assert len(MODULES) > 80
    assert "orderbook_kit.market.tick" in {t for t, _ in imports_of("orderbook_kit.kafka.producer")}
    assert {part_of(m) for m in MODULES} - {"public"} == set(MAY_IMPORT)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down_the_layers(module: str) -> None:
    layer = part_of(module)
    if layer == "public":
        return
    allowed = MAY_IMPORT[layer] | {layer}
    wrong = [
        f"line {line}: {target} (layer {part_of(target)!r})"
        for target, line in imports_of(module)
        if part_of(target) not in allowed
    ]
    assert not wrong, (
        f"{module} (layer {layer!r}) may import only {sorted(allowed)}, but imports:\n"
        + "\n".join(wrong)
    )


def test_no_module_sits_at_the_root_but_the_public_api_and_the_cross_cutting_ones() -> None:
    at_root = {m for m in MODULES if m.count(".") == 1 and not (PACKAGE / m.split(".")[1]).is_dir()}
    assert at_root == {f"orderbook_kit.{name}" for name in ROOT_MODULES}


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _ in imports_of(m, runtime_only=True) if t != m} for m in MODULES}
    cycles = []
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            # A package's __init__ importing its own modules is how it re-exports, not a cycle
            # of meaning; a module importing its package's __init__ back is.
            if module == target.rpartition(".")[0] and MODULES[module].name == "__init__.py":
                continue
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
