"""`make lab`'s JupyterLab for real: started with the Makefile's own flags (as root where the tests
run as root), it answers on 127.0.0.1 and applies the project's settings (no news pop-up); and, in
headless Chromium, what a learner sees there: notebook 02's cells run, its sliders render as
widgets and moving one redraws the preview; notebook 04's plotly figures render.

One JupyterLab serves every test here (they share an xdist group, so one worker runs them all).
It serves a copy of the notebooks: running them in a browser saves outputs, which must never reach
the committed files.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError

import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from orderbook_kit.lab import ports as lab_ports
from tests.conftest import wait_for

# Notebook 04 reads the session's broker (its kernel inherits KAFKA_BOOTSTRAP_SERVERS).
pytestmark = [pytest.mark.kafka, pytest.mark.xdist_group("jupyterlab")]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-not-a-secret"
START_TIMEOUT_S = 60
KERNEL_TIMEOUT_S = 60
RUN_TIMEOUT_S = 150  # every cell of a notebook, solutions included

# The open notebook, through the application object JupyterLab exposes to the page when asked
# (LabApp.expose_app_in_browser): its kernel's status and each code cell's state.
NOTEBOOK_STATE = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.context || panel.context.path !== arguments[0]) { return null; }
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = panel.content.widgets.filter((cell) => cell.model.type === 'code');
return {
  kernel: kernel ? kernel.status : 'none',
  cells: cells.length,
  executed: cells.filter((cell) => cell.model.executionCount !== null).length,
  errors: cells.flatMap((cell) => cell.model.outputs.toJSON())
    .filter((output) => output.output_type === 'error')
    .map((output) => output.ename + ': ' + output.evalue),
};
"""
# Every rendered plotly figure on the page: its title and how many points each trace has.
FIGURES = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map((plot) => ({
  title: (plot.layout && plot.layout.title && plot.layout.title.text) || '',
  // _fullData: the traces as drawn, typed arrays decoded (data may hold them base64-encoded)
  points: (plot._fullData || []).map((trace) => (trace.y || trace.x || []).length),
  drawn: plot.querySelectorAll('.main-svg .trace').length,
}));
"""


@dataclass(frozen=True)
class Lab:
    url: str
    root: Path  # the folder it serves: a copy of notebooks/

    def open(self, chrome: webdriver.Chrome, notebook: str) -> None:
        # reset: a fresh workspace, not the tabs an earlier test left open
        chrome.get(f"{self.url}/lab/tree/{notebook}?reset&token={TOKEN}")


def lab_command(port: int) -> list[str]:
    """The command `make lab` runs, as the Makefile has it."""
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


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab") / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    port = lab_ports.free_port("127.0.0.1")
    command = [
        f"--ServerApp.root_dir={root}" if argument.startswith("--ServerApp.root_dir=") else argument
        for argument in lab_command(port)
    ]
    command[0] = str(Path(sys.executable).with_name("jupyter"))
    log = root.parent / "lab.log"
    server = subprocess.Popen(
        [
            *command,
            "--no-browser",
            f"--IdentityProvider.token={TOKEN}",
            # window.jupyterapp: the tests ask the page which cells have run.
            "--LabApp.expose_app_in_browser=True",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                get(f"{url}/api/status")
                break
            except (URLError, ConnectionError):
                assert time.monotonic() < deadline, (
                    f"JupyterLab did not answer in {START_TIMEOUT_S} s"
                )
                time.sleep(0.3)
        yield Lab(url, root)
    finally:
        server.terminate()  # it shuts its kernels down first
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def test_jupyterlab_starts_with_the_makefiles_flags_on_loopback_without_news(lab: Lab) -> None:
    assert lab.url.startswith("http://127.0.0.1:")
    status = get(f"{lab.url}/api/status")
    assert "started" in status
    settings = get(f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:notification")
    # JupyterLab applies overrides.json as the settings' defaults, served with the schema.
    properties = settings["schema"]["properties"]
    assert properties["fetchNews"]["default"] == "false"  # never ask, never fetch
    assert properties["checkForUpdates"]["default"] is False


def notebook_state(chrome: webdriver.Chrome, notebook: str) -> dict[str, Any] | None:
    """The state of ``notebook`` if it is the open one, else None."""
    return chrome.execute_script(NOTEBOOK_STATE, notebook)


def run_all_cells(chrome: webdriver.Chrome, notebook: str) -> dict[str, Any]:
    """Run the open notebook as a learner would (Run > Run All Cells) and wait until every code
    cell has run and the kernel is idle; the notebook's last state."""

    def kernel_idle() -> bool:
        state = notebook_state(chrome, notebook)
        return state is not None and state["kernel"] == "idle"

    wait_for(kernel_idle, KERNEL_TIMEOUT_S, "the notebook's kernel to be ready")
    chrome.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    last: dict[str, Any] = {}

    def finished() -> bool:
        nonlocal last
        last = notebook_state(chrome, notebook) or {}
        if last.get("errors"):
            pytest.fail(f"a cell failed in JupyterLab: {last['errors']}")
        return last.get("kernel") == "idle" and last.get("executed") == last.get("cells")

    wait_for(finished, RUN_TIMEOUT_S, "every cell to run")
    return last


def scroll_into_view(chrome: webdriver.Chrome, element: WebElement) -> None:
    """Scroll ``element`` to the middle of the window and wait until it stays there: JupyterLab
    lays out a long notebook lazily, so it may move once more after the first scroll."""
    where = (
        "arguments[0].scrollIntoView({block: 'center'});"
        "return arguments[0].getBoundingClientRect().top;"
    )
    last: list[float] = []

    def settled() -> bool:
        last.append(chrome.execute_script(where, element))
        return len(last) > 2 and last[-1] == last[-2] == last[-3]

    wait_for(settled, 10, "the slider to stay in view")


def figures(chrome: webdriver.Chrome) -> list[dict[str, Any]]:
    return chrome.execute_script(FIGURES)


def test_notebook_02_runs_in_jupyterlab_and_its_sliders_redraw_the_preview(
    lab: Lab, browser: webdriver.Chrome
) -> None:
    lab.open(browser, "02_simulator.ipynb")
    state = run_all_cells(browser, "02_simulator.ipynb")
    assert state["cells"] > 10 and state["errors"] == []

    sliders = {
        slider.text.splitlines()[0]: slider
        for slider in browser.find_elements(By.CSS_SELECTOR, ".widget-slider")
    }
    assert set(sliders) == {"interval (s)", "volatility"}  # rendered widgets, not their repr
    assert "SelectionSlider(" not in browser.find_element(By.TAG_NAME, "body").text

    def preview() -> dict[str, Any]:
        (figure,) = [f for f in figures(browser) if "volatility" in f["title"]]
        return figure

    before = preview()
    assert before["drawn"] == 2 and min(before["points"]) > 100  # bid and ask, drawn
    volatility = sliders["volatility"]
    shown = volatility.find_element(By.CSS_SELECTOR, ".widget-readout").text
    assert f"volatility {shown}/sqrt(s)" in before["title"]

    # Drag the handle to the right, as a learner would; on release the kernel recomputes.
    handle = volatility.find_element(By.CSS_SELECTOR, ".noUi-handle")
    scroll_into_view(browser, handle)
    ActionChains(browser).drag_and_drop_by_offset(handle, 40, 0).perform()
    moved = volatility.find_element(By.CSS_SELECTOR, ".widget-readout").text
    assert float(moved) > float(shown)
    wait_for(
        lambda: f"volatility {moved}/sqrt(s)" in preview()["title"],
        20,
        f"the preview to be redrawn at volatility {moved}",
    )
    assert preview()["drawn"] == 2


def test_notebook_04_draws_its_plotly_figures_in_jupyterlab(
    lab: Lab, browser: webdriver.Chrome
) -> None:
    lab.open(browser, "04_consuming.ipynb")
    state = run_all_cells(browser, "04_consuming.ipynb")
    assert state["errors"] == []
    drawn = figures(browser)
    titles = [figure["title"] for figure in drawn]
    # price_figure, spread_and_sizes_figure and latency_figure: each drawn with real points.
    assert len(drawn) == 3, titles
    assert "Bid, ask and mid, read back from Kafka" in titles
    for figure in drawn:
        assert figure["drawn"] >= 1 and min(figure["points"]) > 0, figure
