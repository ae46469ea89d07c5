"""End to end: the notebook-05 explorer in a real JupyterLab, driven by headless Chromium.

Starts JupyterLab from this environment on 127.0.0.1 (random port and token, temporary
folders), runs every cell of the explorer notebook, checks the widgets rendered, drags the image
missing-rate slider and asserts that the accuracy text and the figure change. A screenshot goes to
``build/explorer_in_jupyterlab.png``. JupyterLab is always shut down, even on failure.
Run by ``make test``; it needs no other test first: its fixture executes the notebook headless
before JupyterLab starts, so every run the notebook trains is already in the lab's run cache.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "05_missing_modality_explorer.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]
RUN_ALL_TIMEOUT_S = 170
WIDGET_TIMEOUT_MS = 90_000
# a cell with hidden source shows an always-empty placeholder prompt: leave it out
PROMPTS = ".jp-CodeCell .jp-InputPrompt:not(.jp-Placeholder-prompt)"
# The caller's run cache (``make browser``: nbval's), read before the per-test isolation applies.
RUNS_DIR = os.environ.get("UMM_RUNS_DIR") or str(ROOT / "build" / "test-runs")
pytestmark = pytest.mark.browser


def _required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("UMM_REQUIRE_BROWSER") == "1"


def _copy_without_outputs(src: Path, dst: Path) -> None:
    """Copy a notebook with its outputs and execution counts cleared. The committed notebook holds
    prompts [1]..[N] from its last run: served as is, a dropped Run All click would look like a
    finished run (stale prompts, widgets that never render)."""
    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.get("metadata", {}).pop("widgets", None)
    dst.write_text(json.dumps(nb))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_runs(notebook: Path, runs_dir: str, monkeypatch) -> None:
    """Train (or load) every run the notebook uses, in the run cache JupyterLab will use: a
    headless execution of the same notebook, with no time budget (a slow machine just takes
    longer here), so that Run All in the browser only loads cached runs."""
    from umm_helpers.tools.notebooks import execute

    monkeypatch.setenv("UMM_RUNS_DIR", runs_dir)
    execute(notebook)


@pytest.fixture()
def lab(tmp_path, monkeypatch):
    """A JupyterLab server on 127.0.0.1 serving a copy of the explorer notebook."""
    lab_exe = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent))
    if not Path(CHROMIUM).exists() or lab_exe is None:
        if _required():
            pytest.fail(f"{CHROMIUM} and jupyter-lab are required here: apt-get install chromium")
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    root = tmp_path / "lab"
    root.mkdir()
    _copy_without_outputs(ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, UMM_PROGRESS="0",
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    # render every cell (no windowing), so that every prompt and output is in the page
    tracker = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env["UMM_RUNS_DIR"] = RUNS_DIR
    _prepare_runs(root / NOTEBOOK, RUNS_DIR, monkeypatch)
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" +
                                       (tmp_path / "jupyterlab.log").read_text()[-3000:]) from exc
                time.sleep(0.5)
        yield base, token
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _run_all(page, tries: int = 3, wait_s: float = 30.0) -> None:
    """Run All Cells from the menu, again if no cell has started after ``wait_s``: a click that
    lands while the kernel is still connecting can be dropped by JupyterLab."""
    for _ in range(tries):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            prompts = page.locator(PROMPTS).all_inner_texts()
            if any(p.strip() not in ("", "[ ]:") for p in prompts):
                return  # a cell is queued, running or done
            time.sleep(0.5)
        page.keyboard.press("Escape")  # close a menu left open by a dropped click
    pytest.fail(f"Run All Cells did not start any cell in {tries} tries")


def _all_cells_done(page) -> bool:
    prompts = page.locator(PROMPTS).all_inner_texts()
    return bool(prompts) and all(p.strip().startswith("[") and p.strip()[1:-2].isdigit()
                                 for p in prompts)


def _text_and_image(page, widget) -> tuple[str, str]:
    return (widget.locator(".widget-html-content").first.inner_text(),
            widget.locator("img").first.get_attribute("src") or "")


def test_explorer_renders_and_slider_changes_the_result(lab):
    from playwright.sync_api import sync_playwright

    base, token = lab
    shot = ROOT / "build" / "explorer_in_jupyterlab.png"
    shot.parent.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            page.locator(".jp-NotebookPanel").first.wait_for(timeout=60_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
                timeout=60_000)
            _run_all(page)
            deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
            time.sleep(2)
            while not _all_cells_done(page):
                if time.monotonic() > deadline:
                    page.screenshot(path=str(shot))
                    prompts = page.locator(PROMPTS).all_inner_texts()
                    pytest.fail(f"the notebook did not finish running; prompts: {prompts}")
                time.sleep(1)

            outputs = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
            assert "Traceback" not in outputs, "a cell raised an error"
            explorer = page.locator(".widget-interact").filter(
                has=page.locator(".widget-label", has_text="image missing")).first
            # the widget manager may still be rendering views after the last prompt is set
            try:
                explorer.wait_for(state="attached", timeout=WIDGET_TIMEOUT_MS)
            except Exception:
                page.screenshot(path=str(shot))
                pytest.fail("the explorer widget did not render; outputs end with: "
                            + outputs[-1500:])
            assert page.locator("text=Loading widget...").count() == 0
            explorer.scroll_into_view_if_needed()
            slider = explorer.locator(".widget-slider").filter(
                has=page.locator(".widget-label", has_text="image missing")).first
            before_text, before_img = _text_and_image(page, explorer)
            assert before_text and before_img, "the explorer shows no text or no figure"

            handle = slider.locator(".noUi-handle").first
            track = slider.locator(".noUi-target").first.bounding_box()
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(track["x"] + 0.8 * track["width"], box["y"] + box["height"] / 2,
                            steps=8)
            page.mouse.up()
            deadline = time.monotonic() + 20
            while _text_and_image(page, explorer)[0] == before_text:
                assert time.monotonic() < deadline, "the accuracy text did not change"
                time.sleep(0.25)
            time.sleep(1)
            after_text, after_img = _text_and_image(page, explorer)
            explorer.screenshot(path=str(shot))
        finally:
            browser.close()
    assert after_text != before_text
    assert after_img != before_img, "the figure did not change"
    assert shot.exists() and shot.stat().st_size > 10_000
