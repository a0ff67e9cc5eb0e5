"""Lazy re-exports, so a package can name what a learner uses without importing it all.

``orderbook_kit`` re-exports names from every layer; importing them eagerly would load pandas,
kafka-python, psycopg, pyarrow and Great Expectations whenever any part of the kit is imported -
``python -m orderbook_kit.lab.postgres`` included, since Python runs a package's ``__init__``
before any module in it. A package's ``__getattr__`` (PEP 562) imports a name's module the first
time the name is asked for, and keeps the value; for type checkers and readers the same names
are imported under ``if TYPE_CHECKING:``, and a unit test keeps the two lists equal.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, modules: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, which re-exports the names
    listed under each module of ``modules`` (a name that is not an attribute of its module is a
    submodule of it: ``{"orderbook_kit.settings": ["defaults"]}``)."""
    home = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> object:
        module_name = home.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if module_name == package:  # one of the package's own modules
            value: object = importlib.import_module(f"{package}.{name}")
        else:
            module = importlib.import_module(module_name)
            try:
                value = getattr(module, name)
            except AttributeError:
                value = importlib.import_module(f"{module_name}.{name}")
        setattr(sys.modules[package], name, value)  # asked once: later lookups skip this
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *home})

    return __getattr__, __dir__, sorted(home)
