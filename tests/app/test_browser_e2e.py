"""End to end in a real headless Chromium: quick demo -> live runs -> transfer verdict ->
export -> verification -> bundle.

Starts `streamlit run app/main.py` on a free loopback port with a temp store, presses the
"Launch the quick demo" button (the preset's steps lowered by MUTRANSFER_QUICK_STEPS, the same
launch path otherwise), watches a run train on Runs (its step and loss), follows the finished
sweep to Transfer, exports at the default target width and verifies there (progress while it
trains, on Export and on Runs; the result names µP's loss and the SP baseline's), then
validates the downloaded bundle. Screenshots of every page at 1400 and 1024 px go to
$MUTRANSFER_E2E_ARTIFACTS (default tests/artifacts/, git-ignored), and no metric tile may
be cut off with an ellipsis at either width.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("MUTRANSFER_E2E_ARTIFACTS", ROOT / "tests" / "artifacts"))
# Every page, by URL path, and how tall a screenshot must be to hold it.
PAGES = {"home": 2000, "setup": 3000, "runs": 2600, "transfer": 3400, "coord-check": 2200,
         "doctor": 1600, "inspector": 2200, "export": 2600}
WIDTHS = (1400, 1024)
# A metric tile's value cut by CSS (text-overflow: ellipsis) or ending in an ellipsis.
CLIPPED_METRICS_JS = """() => [...document.querySelectorAll('[data-testid="stMetricValue"]')]
  .filter(el => { const t = el.innerText.trim(); const inner = el.querySelector('div') || el;
                  return t.endsWith('…') || t.endsWith('...') || inner.scrollWidth > inner.clientWidth + 1; })
  .map(el => el.innerText.trim())"""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless=new", "--disable-gpu",
    "--disable-background-networking", "--disable-component-update",
]
# The real quick demo by default (it confirms transfer in about two minutes on 2 cores); set
# MUTRANSFER_E2E_QUICK_STEPS to shorten it while iterating on the page (the verdict may then
# be "not confirmed" or "inconclusive", and the test accepts any).
QUICK_STEPS = os.environ.get("MUTRANSFER_E2E_QUICK_STEPS", "")
SWEEP_TIMEOUT_S = 480

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path):
    """The dashboard on a free loopback port, with its own store; yields (url, db_path)."""
    db = tmp_path / "store" / "mutransfer.duckdb"
    port = free_port()
    # The example model is registered on this server, as an operator would list a model folder.
    env = {**os.environ, "MUTRANSFER_DB_PATH": str(db),
           "MUTRANSFER_MODEL_DIRS": str(ROOT / "examples" / "models")}
    env.pop("MUTRANSFER_QUICK_STEPS", None)
    if QUICK_STEPS:
        env["MUTRANSFER_QUICK_STEPS"] = QUICK_STEPS
    log = (tmp_path / "streamlit.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not become healthy:\n" + (tmp_path / "streamlit.log").read_text())
        yield url, db
    finally:
        # The background runner the dashboard started runs in its own session (it outlives the
        # server by design), so stop its group first, then the server's.
        from experiments.store import Store

        if db.exists():
            for runner in Store(db).live_runners():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(runner.pid, signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def settle(page, ms: int = 1500) -> None:
    """Wait for Streamlit to finish the current script run."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )
    page.wait_for_timeout(ms)


def settle_drawn(page, timeout_s: float = 120) -> None:
    """Wait until the page has finished drawing: no script running, no skeleton placeholder,
    and the number of drawn elements unchanged over two looks (a loaded machine can take a
    while to start a page's script, so "no status widget" alone is not enough)."""
    deadline = time.time() + timeout_s
    last = -1
    while time.time() < deadline:
        page.wait_for_timeout(1200)
        busy = page.locator('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]').count()
        count = page.locator('[data-testid="stElementContainer"]').count()
        if not busy and count == last and count > 3:
            return
        last = count


def shoot(page, name: str, height: int = 2200) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its own container, so a full-page
    capture would stop at the viewport; a tall viewport shows everything instead."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size(size)


def shoot_every_page(page, url: str, tag: str) -> dict[str, list[str]]:
    """Screenshot every page at each of `WIDTHS`; returns the clipped metric values found
    per page and width (empty when every tile shows its whole value)."""
    clipped: dict[str, list[str]] = {}
    size = page.viewport_size
    for width in WIDTHS:
        for path, height in PAGES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{url}/{'' if path == 'home' else path}")  # the default page is at /
            settle_drawn(page)
            page.screenshot(path=str(SHOTS / f"{tag}-{path}-{width}.png"))
            cut = page.evaluate(CLIPPED_METRICS_JS)
            if cut:
                clipped[f"{path}@{width}"] = cut
    page.set_viewport_size(size)
    return clipped


def watch_live_run(page, db) -> str:
    """On Runs, the line of a run training now, with its step and a loss, seen before the
    sweep finishes (the page refreshes itself every 2 s)."""
    from experiments.store import Store

    live = page.get_by_text(re.compile(r"step \d+/\d+, loss \d"))
    deadline = time.time() + SWEEP_TIMEOUT_S
    while time.time() < deadline:
        if live.count():
            return str(live.first.inner_text())
        sweeps = Store(db).list_sweeps()
        if sweeps and sweeps[0].state not in ("queued", "running"):
            break
        page.wait_for_timeout(500)
    pytest.fail("Runs never showed a running run with a step count and a loss")


def wait_for_sweep(db) -> None:
    from experiments.store import Store

    deadline = time.time() + SWEEP_TIMEOUT_S
    sweeps = []
    while time.time() < deadline:
        sweeps = Store(db).list_sweeps()
        if sweeps and sweeps[0].state not in ("queued", "running"):
            break
        time.sleep(3)
    else:
        pytest.fail(f"quick demo did not finish in {SWEEP_TIMEOUT_S} s: {sweeps}")
    assert sweeps[0].counts.get("failed", 0) == 0, sweeps[0].counts


def test_quick_demo_end_to_end(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, db = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(60_000)
        # Page loads here include starting processes and training: wait for them, not 5 s.
        expect.set_options(timeout=30_000)

        # Overview -> quick demo -> Runs (the launch switches to it): a run trains, live.
        page.goto(url)
        expect(page.get_by_text("µTransfer dashboard")).to_be_visible()
        settle(page)
        page.get_by_role("button", name="Launch the quick demo").click()
        expect(page.get_by_role("heading", name="Sweep details")).to_be_visible()
        line = watch_live_run(page, db)
        assert re.search(r"step (\d+)/150, loss \d", line) or QUICK_STEPS, line
        shoot(page, "runs-live")
        wait_for_sweep(db)

        # The finished sweep leads to its verdict.
        link = page.get_by_role("link", name="See its transfer verdict")
        expect(link).to_be_visible(timeout=30_000)
        link.click()
        expect(page.get_by_role("heading", name="Verdict")).to_be_visible(timeout=60_000)
        verdict = page.get_by_text(re.compile(r"Transfer (confirmed|not confirmed|inconclusive)"))
        expect(verdict.first).to_be_visible()
        if not QUICK_STEPS:  # the real preset: µP must confirm transfer
            expect(page.get_by_text("Transfer confirmed").first).to_be_visible()
        expect(page.locator(".js-plotly-plot").first.get_by_text("µP")).to_be_visible()

        # Export at the default target: at most 8x the widest trained width (512).
        page.goto(f"{url}/export")
        settle(page)
        if page.get_by_text("Export anyway", exact=True).count():  # a shortened demo may not confirm
            assert QUICK_STEPS, "the real quick demo must export without forcing"
            page.get_by_text("Export anyway", exact=True).click()
        expect(page.get_by_role("heading", name="Bundle preview")).to_be_visible()
        cost = page.get_by_text(re.compile(r"Cost: \d+ runs .* at width [\d,]+: about"))
        expect(cost).to_be_visible()
        width = int(re.search(r"at width ([\d,]+):", cost.inner_text()).group(1).replace(",", ""))
        assert 512 < width <= 8 * 512, width
        with page.expect_download() as info:
            page.get_by_role("button", name="Download JSON").click()
        path = tmp_path / "bundle.json"
        info.value.save_as(path)

        # Verification: progress on Export, then on Runs.
        page.get_by_role("button", name="Launch verification").click()
        progress = re.compile(r"run \d+ of \d+: .* step \d+/\d+")
        expect(page.get_by_text(progress).first).to_be_visible(timeout=120_000)
        shoot(page, "export-verifying")
        page.goto(f"{url}/runs")
        expect(page.get_by_role("heading", name="Verifications")).to_be_visible()
        expect(page.get_by_text(f"Verification of sweep #1 at width {width:,}").first).to_be_visible()

        # Meanwhile (two cores: one trains the verification): a coordinate check, the
        # inspector, and every page at both widths.
        page.goto(f"{url}/coord-check")
        page.get_by_role("button", name="Run coordinate check").click()
        expect(page.get_by_text("Slopes of log2 mean")).to_be_visible(timeout=180_000)
        page.goto(f"{url}/inspector")
        expect(page.get_by_text("Base width 64 → target width 1024")).to_be_visible(timeout=120_000)
        clipped = shoot_every_page(page, url, "page")

        # Back on Export (a new browser session: the job is found by its bundle), then away
        # and back through the sidebar: the target width and "Export anyway" are kept.
        page.goto(f"{url}/export")
        settle(page)
        if QUICK_STEPS and page.get_by_text("Export anyway", exact=True).count():
            page.get_by_text("Export anyway", exact=True).click()
        expect(cost).to_be_visible()
        page.get_by_role("link", name="Runs").click()
        expect(page.get_by_role("heading", name="Sweep details")).to_be_visible()
        page.get_by_role("link", name="Export").click()
        expect(cost).to_be_visible()  # the same bundle, at the same width
        assert f"at width {width:,}:" in cost.inner_text()
        result = page.get_by_text(re.compile(r"SP baseline at its extrapolated LR .* reached"))
        expect(result).to_be_visible(timeout=420_000)
        text = result.inner_text()
        assert re.search(r"against µP's \d\.\d{4}", text), text
        expect(page.get_by_text(re.compile(r"µP at the transferred LR .* reached a (train|validation) loss of \d"))).to_be_visible()
        settle(page, 2000)
        for w in WIDTHS:
            page.set_viewport_size({"width": w, "height": PAGES["export"]})
            settle(page, 1500)
            page.screenshot(path=str(SHOTS / f"page-export-verified-{w}.png"))
            cut = page.evaluate(CLIPPED_METRICS_JS)
            if cut:
                clipped[f"export-verified@{w}"] = cut
        browser.close()

    assert not clipped, f"metric values cut off: {clipped}"
    data = json.loads(path.read_text())
    from mucore.bundle import load_bundle

    bundle = load_bundle(path)  # verifies the hash
    assert bundle["target_width"] == data["target_width"] == width
    assert bundle["parametrization"] == "mup"
    if not QUICK_STEPS:
        assert data["evidence"]["verdict"] == "confirmed" and not data["evidence"]["forced"]
    shown = subprocess.run([sys.executable, "-m", "experiments", "bundle", "show", str(path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "HP bundle" in shown.stdout, shown.stderr
