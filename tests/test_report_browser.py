"""The report in a real browser: headless Chromium at desktop and phone widths.

Opens the report on the small synthetic fixture of ``test_report.py`` at 1400 px and 420 px,
keeps a full-page screenshot of each (in ``$RETAIN_TEST_ARTIFACTS`` when set, else in pytest's
temporary folder; never in the repository) and fails on a broken image, a console error, a page
error or a page wider than the window (tables may scroll inside their own block). Skips, with
the reason, when Chromium or the ``playwright`` driver is missing; ``.ci/run`` installs the
distribution's Chromium. Playwright only drives the system's browser: no browser is downloaded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_report import scored, small_report  # noqa: F401  (the fixture is used by name)

from retain.io import write_text_atomic

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = (1400, 420)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        reason = "no chromium binary on PATH: install the distribution's chromium package"
        if os.environ.get("CI"):  # .ci/run installs it: a missing browser there is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = os.environ.get("RETAIN_TEST_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("report-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def report_file(scored, tmp_path_factory) -> Path:  # noqa: F811
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_text_atomic(small_report(scored).render(), path)
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_report_renders_cleanly_in_chromium(browser, report_file, artifacts, width) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    try:
        page.goto(report_file.as_uri(), wait_until="load")
        shot = artifacts / f"report_{width}px.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")
        broken = page.eval_on_selector_all(
            "img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)"
        )
        n_images = page.eval_on_selector_all("img", "imgs => imgs.length")
        page_width = page.evaluate("document.documentElement.scrollWidth")
        # the layout width (without a vertical scrollbar), not innerWidth, which includes it
        window_width = page.evaluate("document.documentElement.clientWidth")
        # the page shows its content, not just an error-free blank
        title_shown = page.eval_on_selector("h1", "h => h.getBoundingClientRect().height > 0")
        sections_shown = page.eval_on_selector_all(
            "h2", "hs => hs.filter(h => h.getBoundingClientRect().height > 0).length"
        )
        # every table sits in a block that scrolls on its own, no wider than the window
        overflowing = page.eval_on_selector_all(
            "table",
            """tables => tables.filter(t => {
                const wrap = t.parentElement;
                return !wrap.classList.contains('table-wrap')
                    || wrap.getBoundingClientRect().right > window.innerWidth + 1;
            }).length""",
        )
    finally:
        page.close()
    assert shot.is_file() and shot.stat().st_size > 0
    assert n_images >= 11
    assert title_shown and sections_shown >= 8
    assert broken == [], f"broken images: {broken}"
    assert problems == [], problems
    assert page_width <= window_width, f"page {page_width}px wide in a {window_width}px window"
    assert overflowing == 0
