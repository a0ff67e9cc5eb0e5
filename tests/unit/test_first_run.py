"""What a newcomer's first `make lab` / `make test` does: a lock file that pins everything, a
half-made .venv repaired, JupyterLab on 127.0.0.1 (as root too) without the news pop-up."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_executable

REPO = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"^([A-Za-z0-9_.\[\]-]+)==([^\s;]+)")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if match := PINNED.match(line):
            name = re.sub(r"\[.*\]", "", match[1]).lower().replace("_", "-")
            found[name] = match[2]
    return found


def test_the_lock_pins_every_package_and_agrees_with_requirements_in() -> None:
    lock = REPO / "requirements.txt"
    direct = pins(REPO / "requirements.in")
    locked = pins(lock)
    assert direct, "requirements.in pins the direct requirements"
    for name, version in direct.items():
        assert locked.get(name) == version, f"{name}: regenerate the lock with `make lock`"
    requirement_lines = [
        line
        for line in lock.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#") and line != "-e ."
    ]
    unpinned = [line for line in requirement_lines if not PINNED.match(line)]
    assert not unpinned, f"not pinned: {unpinned}"
    assert len(locked) > 3 * len(direct), "transitive packages are pinned too"
    assert "make lock" in lock.read_text().splitlines()[1]


def make_dry_run(*arguments: str) -> str:
    run = subprocess.run(
        ["make", "-n", *arguments], cwd=REPO, capture_output=True, text=True, check=True
    )
    return run.stdout


def test_make_lab_serves_on_loopback_only_and_allows_root_only_when_root() -> None:
    (jupyter,) = [line for line in make_dry_run("lab").splitlines() if "jupyter lab" in line]
    flags = shlex.split(jupyter)
    assert "--ServerApp.ip=127.0.0.1" in flags
    assert ("--allow-root" in flags) == (os.geteuid() == 0)


def test_the_news_pop_up_is_off_in_the_projects_jupyterlab_settings() -> None:
    overrides = json.loads((REPO / ".jupyter" / "overrides.json").read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification["fetchNews"] == "false"
    # The keys must be ones JupyterLab knows, or it would ignore them without a word.
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    schema = json.loads(
        (schemas / "@jupyterlab" / "apputils-extension" / "notification.json").read_text()
    )
    assert set(notification) <= set(schema["properties"])


def test_a_half_made_venv_is_recreated(tmp_path: Path) -> None:
    # A first run that died after `python -m venv` (Ubuntu without python3-venv does exactly
    # this) leaves a .venv without pip; the next `make` must repair it, not fail forever.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    write_executable(venv / "bin", "python", "exit 1")  # no pip in there
    (venv / "left-over").touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A stand-in interpreter: passes the version check and makes a venv whose pip "works".
    write_executable(
        bin_dir,
        "fake-python",
        'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && '
        'printf \'#!/bin/sh\\nexit 0\\n\' > "$3/bin/python" && chmod +x "$3/bin/python"; fi',
    )
    run = subprocess.run(
        ["make", "install", f"VENV={venv}", f"PYTHON={bin_dir / 'fake-python'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is incomplete (an earlier first run stopped half-way): recreating it" in run.stdout
    assert not (venv / "left-over").exists()
    assert (venv / ".installed").exists()
    assert (venv / "share/jupyter/lab/settings/overrides.json").exists()
