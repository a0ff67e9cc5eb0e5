"""Every library the kit imports is declared in pyproject.toml: in the core dependencies, or in
the extra of the stage that imports it - so `pip install 'orderbook-kit[store]'` gives a store
that imports. (The check reads the kit's imports from its source, never running it.)"""

from __future__ import annotations

import ast
import os
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import orderbook_kit

PACKAGE = Path(orderbook_kit.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"
# Imported by name through importlib, so no import statement names them.
IMPORTED_BY_NAME = {"confluent_kafka"}


def imported_top_level_names() -> dict[str, set[str]]:
    """{top-level module: the kit's files that import it}, third-party modules only."""
    found: dict[str, set[str]] = {name: {"(by name)"} for name in IMPORTED_BY_NAME}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "orderbook_kit":
                    found.setdefault(top, set()).add(str(path.relative_to(PACKAGE)))
    return found


def normalized(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!;~]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {normalized(r) for r in requirements}


def test_every_imported_library_is_declared_in_pyproject() -> None:
    distributions = packages_distributions()
    missing = {}
    for module, files in sorted(imported_top_level_names().items()):
        names = {normalized(d) for d in distributions.get(module, [module])}
        if not names & declared():
            missing[module] = sorted(files)
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"


def test_each_extra_names_only_libraries_the_kit_uses() -> None:
    # The other way round: nothing declared that no module imports (or that is not a stage's
    # runtime need: the PostgreSQL server wheel, never imported, and a stage's own client).
    distributions = packages_distributions()
    used = {
        normalized(d)
        for module in imported_top_level_names()
        for d in distributions.get(module, [module])
    }
    not_imported = {"pgserver", "anywidget", "httpx", "orderbook-kit"}
    assert declared() - used - not_imported == set()


def test_a_built_not_editable_install_imports_every_module_and_finds_its_files(
    tmp_path: Path,
) -> None:
    """The kit as `pip install .` builds it - a wheel, not the editable source tree: every module
    imports from it (no module left out of the packages, no import of a file that is not
    shipped), its data files are in it, and every console command resolves."""
    import shutil
    import subprocess

    source = tmp_path / "source"  # a copy: the build writes build/ and egg-info next to it
    shutil.copytree(PACKAGE, source / "orderbook_kit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PYPROJECT.parent / name, source / name)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(source)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    check = """
import importlib, importlib.metadata, pkgutil, sys
from pathlib import Path
import orderbook_kit
assert Path(orderbook_kit.__file__).is_relative_to(sys.argv[1]), orderbook_kit.__file__
names = [m.name for m in pkgutil.walk_packages(orderbook_kit.__path__, "orderbook_kit.")]
for name in names:
    importlib.import_module(name)
root = Path(orderbook_kit.__file__).parent
for data in ("store/schema.sql", "monitoring/config/prometheus.yml", "monitoring/config/rules.yml",
             "api/static/dashboard.html", "py.typed"):
    assert (root / data).is_file(), data
commands = [e for e in importlib.metadata.distribution("orderbook-kit").entry_points
            if e.group == "console_scripts"]
assert all(callable(e.load()) for e in commands)
print(len(names), sorted(e.name for e in commands))
"""
    result = subprocess.run(
        [sys.executable, "-c", check, str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # not the repository: only the built install can be found
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert result.returncode == 0, result.stderr
    modules, commands = result.stdout.split(" ", 1)
    assert int(modules) == sum(1 for _ in PACKAGE.rglob("*.py")) - 1  # all but the root
    assert "orderbook-ingest" in commands and "orderbook-postgres" in commands
