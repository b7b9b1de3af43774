"""The widgets in a real browser: JupyterLab in headless Chromium, driven by playwright.

The test starts ``jupyter-lab`` itself (by PID, on 127.0.0.1, a random token, a free port, a
temporary copy of ``widgets_in_jupyterlab.ipynb`` and temporary Jupyter config / settings
dirs), runs every cell, then, reading the DOM:

- moves the Playground's η slider with the keyboard and checks that the policy curve's SVG
  path changed (and times key press → redrawn path);
- clicks the Dashboard's ▶ Start, waits for new steps, clicks ■ Stop, and checks that the
  reward curve grew and the trainer went back to idle (Stop while training runs works);

and saves screenshots (the page and each widget) to ``tmp_path``. The server is stopped by its
process group at the end. Skips cleanly without /usr/bin/chromium or playwright; CI installs
both (``apt-get install -y chromium``, ``pip install playwright``).
"""

from __future__ import annotations

import json
import os
import re
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

CHROMIUM = "/usr/bin/chromium"
HERE = Path(__file__).parent
NOTEBOOK = "widgets_in_jupyterlab.ipynb"
REPO = HERE.parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PLAYGROUND_LINE = ".mirrorlab-playground .js-plotly-plot .scatterlayer .trace path.js-line"
DASH_REWARD_LINE = ".mirrorlab-dashboard .js-plotly-plot .scatterlayer .trace path.js-line"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jupyter_lab() -> str | None:
    local = Path(sys.executable).with_name("jupyter-lab")
    return str(local) if local.exists() else shutil.which("jupyter-lab")


def _write_settings(settings: Path) -> None:
    """No virtual scrolling (every cell stays in the DOM), no news or update pop-ups."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false", "checkForUpdates": False},
    }
    for rel, content in files.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


@pytest.fixture
def lab(tmp_path):
    """(base URL, token) of a JupyterLab server started here and stopped at the end."""
    exe = _jupyter_lab()
    if exe is None:
        pytest.skip("jupyter-lab is not installed")
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(HERE / NOTEBOOK, root / NOTEBOOK)
    home = tmp_path / "jupyter"
    for d in ("config", "data", "runtime", "settings", "workspaces", "ipython"):
        (home / d).mkdir(parents=True)
    _write_settings(home / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
    })
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [exe, "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--notebook-dir={root}",
         "--ServerApp.port_retries=0", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.user_settings_dir={home / 'settings'}",
         f"--LabApp.workspaces_dir={home / 'workspaces'}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter-lab exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.time() > deadline:
                    pytest.fail(f"jupyter-lab did not answer within 60 s; see {log.name}")
                time.sleep(0.3)
        yield base, token
    finally:
        # stop the server (and its kernels) by the process group of the PID we started
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        log.close()


def _path_d(page, selector: str, index: int = 0) -> str:
    return page.locator(selector).nth(index).get_attribute("d") or ""


def test_widgets_live_in_jupyterlab(lab, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (CI: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is missing (CI: pip install playwright)")
    base, token = lab
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1800})
            page.set_default_timeout(60_000)
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            page.wait_for_function("() => window.jupyterapp && "
                                   "document.querySelector('.jp-Notebook .jp-Cell')")
            # the kernel must be up before "run all"
            page.wait_for_function(
                "() => { const w = window.jupyterapp.shell.currentWidget;"
                " return w && w.sessionContext && w.sessionContext.session &&"
                " w.sessionContext.session.kernel &&"
                " w.sessionContext.session.kernel.status === 'idle'; }", timeout=90_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # done, or a cell failed (then say which error, instead of timing out)
            page.wait_for_function(
                "() => { const outs = [...document.querySelectorAll('.jp-OutputArea-output')];"
                " return outs.some(o => o.innerText.includes('ALL CELLS DONE') ||"
                " o.innerText.includes('Traceback')); }", timeout=150_000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t]
            if tracebacks:
                page.screenshot(path=str(shots / "error.png"))
            assert not tracebacks, tracebacks[0][-2000:]
            for cls in ("dashboard", "playground", "simplex", "game", "grid", "compare"):
                page.locator(f".mirrorlab-{cls} .js-plotly-plot").first.wait_for()
            page.wait_for_timeout(1500)  # let plotly finish its first layout
            page.screenshot(path=str(shots / "00_page.png"))

            # ---- Playground: move the η slider, the policy curve must change
            play = page.locator(".mirrorlab-playground")
            play.scroll_into_view_if_needed()
            play.screenshot(path=str(shots / "02_playground_before.png"))
            status = play.locator(".widget-html-content").first
            before = _path_d(page, PLAYGROUND_LINE)
            assert before.startswith("M")
            handle = play.locator(".widget-slider .noUi-handle").first
            handle.focus()
            # time each key press → changed curve inside the page (no playwright round trip)
            page.evaluate(
                """(sel) => {
                    window.__lat = []; let t0 = null;
                    let last = document.querySelector(sel).getAttribute('d');
                    document.addEventListener('keydown', () => { t0 = performance.now(); },
                                              true);
                    const root = document.querySelector('.mirrorlab-playground');
                    new MutationObserver(() => {
                        const p = document.querySelector(sel);
                        const d = p && p.getAttribute('d');
                        if (t0 !== null && d && d !== last) {
                            window.__lat.push(performance.now() - t0); last = d; t0 = null;
                        }
                    }).observe(root, {subtree: true, attributes: true, childList: true});
                }""", PLAYGROUND_LINE)
            for k in range(8):
                page.keyboard.press("ArrowRight")
                page.wait_for_function("(k) => window.__lat.length > k", arg=k,
                                       timeout=10_000)
                page.wait_for_timeout(150)  # let the status line and title settle
            latencies = page.evaluate("window.__lat")
            after = _path_d(page, PLAYGROUND_LINE)
            assert after != before
            readout = play.locator(".widget-readout").first.inner_text()
            assert float(readout) > 0.5 * 1.5  # η went up from 0.5 (8 steps of 10^0.05)
            assert "ran 200 iterations" in status.inner_text()
            print(f"playground: key press → redrawn path, median "
                  f"{sorted(latencies)[len(latencies) // 2]:.0f} ms, max {max(latencies):.0f} ms "
                  f"(η readout {readout})")
            play.screenshot(path=str(shots / "03_playground_after.png"))
            legend = page.eval_on_selector_all(
                ".mirrorlab-playground .legendtext", "els => els.map(e => e.textContent)")
            assert "π(a0, r=1.00)" in legend and any("ground truth" in t for t in legend)

            # ---- Dashboard: ▶ Start, new steps arrive live, ■ Stop, nothing lost
            dash = page.locator(".mirrorlab-dashboard")
            dash.scroll_into_view_if_needed()
            dash.screenshot(path=str(shots / "01_dashboard.png"))
            dstatus = dash.locator(".widget-html-content").first

            def shown_step() -> int:
                match = re.search(r"step (\d+)", dstatus.inner_text())
                return int(match.group(1)) if match else -1

            assert shown_step() == 40
            reward_before = _path_d(page, DASH_REWARD_LINE)
            dash.get_by_role("button", name="▶ Start").click()
            page.wait_for_function(
                "(sel) => { const t = document.querySelector(sel);"
                " const m = t && t.innerText.match(/step (\\d+)/);"
                " return m && Number(m[1]) >= 120; }",
                arg=".mirrorlab-dashboard .widget-html-content", timeout=60_000)
            dash.screenshot(path=str(shots / "04_dashboard_running.png"))
            dash.get_by_role("button", name="■ Stop").click()
            page.wait_for_function(
                "(sel) => { const t = document.querySelector(sel);"
                " return t && t.innerText.includes('idle'); }",
                arg=".mirrorlab-dashboard .widget-html-content", timeout=60_000)
            stopped = shown_step()
            assert stopped >= 120
            assert "stopped" in dstatus.inner_text()
            page.wait_for_timeout(500)
            assert _path_d(page, DASH_REWARD_LINE) != reward_before
            assert dash.get_by_role("button", name="▶ Start").is_enabled()
            ticks = page.eval_on_selector_all(".mirrorlab-dashboard .xaxislayer-above text",
                                              "els => els.map(e => e.textContent)")
            assert [t for t in ticks if t.startswith("a0")], ticks  # the action bars' labels
            dash.screenshot(path=str(shots / "05_dashboard_stopped.png"))

            # ---- GridView: drag the iteration slider back to t = 0 (Home key)
            grid = page.locator(".mirrorlab-grid")
            grid.scroll_into_view_if_needed()
            title = grid.locator(".gtitle").first
            assert "iteration t = 30 of 30" in title.text_content()
            grid.locator(".widget-slider .noUi-handle").first.focus()
            page.keyboard.press("Home")
            page.wait_for_function(
                "() => document.querySelector('.mirrorlab-grid .gtitle').textContent"
                ".includes('iteration t = 0 of 30')", timeout=10_000)

            for k, cls in enumerate(("simplex", "game", "grid", "compare"), start=6):
                widget = page.locator(f".mirrorlab-{cls}")
                widget.scroll_into_view_if_needed()
                widget.screenshot(path=str(shots / f"{k:02d}_{cls}.png"))
            # no legend anywhere lost its name to plotly's "trace N" default
            names = page.eval_on_selector_all(".legendtext", "els => els.map(e => e.textContent)")
            assert names and not [n for n in names if re.fullmatch(r"trace \d+", n)], names
        finally:
            browser.close()
    assert len(list(shots.glob("*.png"))) == 10
