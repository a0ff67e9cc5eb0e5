"""Notebooks are committed clean: no outputs, no execution counts, no sys.path tricks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_the_numbered_notebooks_exist() -> None:
    names = [path.name[:3] for path in NOTEBOOKS]
    assert names == ["01_", "02_", "03_", "04_", "05_", "06_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    dirty = [i for i, cell in enumerate(code_cells(path))
             if cell.get("outputs") or cell.get("execution_count") is not None]  # fmt: skip
    assert not dirty, f"{path.name}: code cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_uses_the_installed_kit_and_environment(path: Path) -> None:
    source = "\n".join("".join(cell["source"]) for cell in code_cells(path))
    assert "sys.path" not in source
    assert "from orderbook_kit" in source
    assert "127.0.0.1:9092" not in source, "read the address from settings, not a literal"
