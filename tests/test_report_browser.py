"""The demo's report in a real browser: Debian's Chromium, driven by Playwright, offline.

The page must open from disk with no console error, fetch nothing over the network, draw
marks in every chart that has data (and a "no data" note in the one that has none), show the
funnel figures of funnel.json exactly, and screenshot as a PNG.

Needs /usr/bin/chromium (`apt-get install chromium`; CI installs it) and the `playwright`
Python package; its own browser downloads (`playwright install`) are not used. The demo build
is the session's (tests/conftest.py); the browser part takes a few seconds.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from tests.test_report import check_demo_report, funnel_from_cells

pytestmark = pytest.mark.slow

NO_CHROMIUM = "no Chromium: apt-get install chromium (CI installs it)"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Charts the demo has no data for, shown as a note: it sets no Wikipedia reference.
EMPTY_IN_DEMO = {"chart-wiki-overlap"}


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def demo_report(demo_build):
    """The session's demo build, whose flow wrote the report as its last step."""
    out, result, _ = demo_build
    assert result["failures"] == []
    assert (out / "report" / "index.html").is_file()
    return out


def test_demo_report_figures(demo_report):
    """funnel == funnel.json, every document and token of the manifest in the histograms and
    the domain table, ledger counts == funnel, rerun byte-identical."""
    check_demo_report(demo_report)


def test_demo_report_in_chromium(demo_report):
    chromium = _chromium()
    if chromium is None:
        pytest.skip(NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("no playwright: pip install playwright (the dev extra)")
    import json

    page_path = demo_report / "report" / "index.html"
    funnel = json.loads((demo_report / "funnel.json").read_text())
    errors: list[str] = []
    requests: list[str] = []
    failed: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.chart:not(.chart-empty)')]"
                ".every(c => c.querySelector('.main-svg g.trace'))",
                timeout=20_000,
            )
            charts = page.eval_on_selector_all(
                ".chart",
                """els => els.map(e => ({
                    id: e.id,
                    empty: e.classList.contains('chart-empty'),
                    note: e.textContent.trim(),
                    svg: e.querySelectorAll('.main-svg').length,
                    marks: e.querySelectorAll(
                        '.main-svg .overplot path, .main-svg .overplot rect, ' +
                        '.main-svg g.point, .main-svg g.trace').length,
                    // bars actually drawn: a path in a point with a non-empty box
                    drawn: [...e.querySelectorAll('.main-svg .overplot g.point path')]
                        .filter(p => { const b = p.getBBox(); return b.width * b.height > 0; })
                        .length,
                }))""",
            )
            cells = page.eval_on_selector_all(
                "[data-stage][data-field]",
                "els => els.map(e => ({...e.dataset, text: e.textContent}))",
            )
            # interactive: hovering a bar of the funnel shows Plotly's hover label
            # (Plotly's drag layer lies over the bars and takes the events: force the move)
            page.hover("#chart-funnel .overplot g.point path >> nth=0", force=True, timeout=5_000)
            page.wait_for_selector("#chart-funnel .hoverlayer .hovertext", timeout=5_000)
            shot = demo_report / "report" / "screenshot.png"
            page.screenshot(path=str(shot), full_page=True)
            height = page.evaluate("document.documentElement.scrollHeight")
        finally:
            browser.close()

    assert errors == []
    assert failed == []
    assert [u for u in requests if u.startswith(("http:", "https:", "ws:", "wss:"))] == []
    assert requests and all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests)

    ids = [c["id"] for c in charts]
    assert len(ids) == len(set(ids)) == 13
    empty = {c["id"] for c in charts if c["empty"]}
    assert empty == EMPTY_IN_DEMO
    for c in charts:
        if c["empty"]:
            assert c["svg"] == 0 and ("no data" in c["note"] or "not computed" in c["note"])
        else:
            assert c["svg"] > 0 and c["marks"] > 0 and c["drawn"] > 0, c

    assert funnel_from_cells(cells) == funnel

    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, shot_height = struct.unpack(">II", data[16:24])
    assert width == 1400 and shot_height >= height > 900
    assert len(data) > 50_000
