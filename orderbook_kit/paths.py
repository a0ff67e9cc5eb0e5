"""Where the kit keeps its downloads and the servers it starts (Kafka jars, PostgreSQL data).

For an editable install (the workbook's normal case) that is a git-ignored folder of the
repository, wherever a command runs from, so notebooks, ``make`` and the services all share one
cache and one server. Installed elsewhere, it is a folder under ``~/.cache/orderbook-kit``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["configured_folder", "workbook_folder"]


def configured_folder(variable: str, default: Path) -> Path:
    """``$variable`` (absolute, ``~`` expanded) if set, else ``default``."""
    configured = os.environ.get(variable, "").strip()
    return Path(configured).expanduser().resolve() if configured else default


def workbook_folder(name: str, variable: str) -> Path:
    """``$variable`` if set, else ``<repository>/.<name>``, else under ``~/.cache``."""
    repository = Path(__file__).resolve().parents[1]
    if (repository / "pyproject.toml").exists():
        default = repository / f".{name}"
    else:
        default = Path.home() / ".cache" / "orderbook-kit" / name
    return configured_folder(variable, default)
