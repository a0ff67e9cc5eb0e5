"""The names a learner imports from ``orderbook_kit`` and from each stage's package: each is the
object its module defines, the packages' type-checking imports list the same names, and importing
the package loads none of the heavy libraries behind them."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "orderbook_kit"
REEXPORTING = [
    "orderbook_kit",
    "orderbook_kit.kafka",
    "orderbook_kit.lessons",
    "orderbook_kit.quality",
    "orderbook_kit.store",
    "orderbook_kit.archive",
]


def type_checking_imports(package: str) -> dict[str, str]:
    """{name: module} imported under ``if TYPE_CHECKING:`` in the package's ``__init__.py``."""
    path = PACKAGE.parent.joinpath(*package.split("."), "__init__.py")
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module
                found.update({alias.name: statement.module for alias in statement.names})
    return found


@pytest.mark.parametrize("package", REEXPORTING)
def test_each_exported_name_is_what_its_module_defines(package: str) -> None:
    module = importlib.import_module(package)
    declared = type_checking_imports(package)
    exported = set(module.__all__) - {"__version__"}
    assert exported == set(declared), "__all__ and the TYPE_CHECKING imports differ"
    for name, home in declared.items():
        source = importlib.import_module(home)
        expected = getattr(source, name, None) or importlib.import_module(f"{home}.{name}")
        assert getattr(module, name) is expected, name
        assert name in dir(module)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    import orderbook_kit

    with pytest.raises(AttributeError, match=r"module 'orderbook_kit' has no attribute 'Tik'"):
        orderbook_kit.Tik  # noqa: B018


def test_importing_the_packages_loads_no_library_behind_them() -> None:
    heavy = ["pandas", "kafka", "psycopg", "pyarrow", "duckdb", "great_expectations", "pydantic"]
    code = (
        f"import sys\nfor p in {REEXPORTING!r}: __import__(p)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_the_public_api_covers_a_first_lesson() -> None:
    # The names notebook 01-04 start with, from the package root alone.
    from orderbook_kit import OrderbookSimulator, Tick, TickProducer, load_settings, read_ticks

    tick = next(OrderbookSimulator(["TTF-GAS"], seed=1).ticks(1))
    assert isinstance(tick, Tick) and tick.symbol == "TTF-GAS"
    assert callable(TickProducer) and callable(read_ticks)
    assert load_settings().topics.raw
