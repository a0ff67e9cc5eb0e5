"""`make lab`'s JupyterLab for real: started with the Makefile's own flags (as root where the tests
run as root), it answers on 127.0.0.1 and applies the project's settings (no news pop-up)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.error import URLError

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-not-a-secret"


def lab_command(port: int) -> list[str]:
    dry_run = subprocess.run(
        ["make", "-n", "lab", f"JUPYTER_PORT={port}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in dry_run.splitlines() if "jupyter lab" in line]
    return shlex.split(line)


def get(url: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_jupyterlab_starts_with_the_makefiles_flags_on_loopback_without_news(
    free_address: str, tmp_path: Path
) -> None:
    port = int(free_address.rpartition(":")[2])
    command = lab_command(port)
    command[0] = str(Path(sys.executable).with_name("jupyter"))
    lab = subprocess.Popen(
        [*command, "--no-browser", f"--IdentityProvider.token={TOKEN}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "lab.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert lab.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
            try:
                status = get(f"{base}/api/status")
                break
            except (URLError, ConnectionError):
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.5)
        assert "started" in status
        settings = get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification")
        # JupyterLab applies overrides.json as the settings' defaults, served with the schema.
        properties = settings["schema"]["properties"]
        assert properties["fetchNews"]["default"] == "false"  # never ask, never fetch
        assert properties["checkForUpdates"]["default"] is False
    finally:
        lab.terminate()
        lab.wait(30)
