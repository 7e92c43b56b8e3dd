"""The HTML report in a real browser: Debian's headless Chromium renders it, screenshots it and
dumps the DOM it built. The browser runs in an empty network namespace when we can make one, so
it cannot reach anything (the page needs nothing: everything is inline)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from report_dom import Page
from report_png import decode
from report_samples import PAYLOADS, clean_result, findings_result, hostile_result, inconclusive_result

from tracehound.report import render

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1280, 2000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (scripts/setup.sh --test installs it)"),
]

# the verdict banner colours of report.css
FINDINGS_RED = (0xB4, 0x23, 0x18)
INCONCLUSIVE_AMBER = (0xB5, 0x47, 0x08)
CLEAN_GREEN = (0x06, 0x76, 0x47)


def _offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        probe = subprocess.run([unshare, "--net", "true"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [unshare, "--net"]
    return []


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [
        *_offline_prefix(),
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-pings",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        *args,
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run(cmd, capture_output=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc


def _page(tmp_path: Path, result) -> str:
    path = tmp_path / "report.html"
    path.write_text(render(result, "html"), encoding="utf-8")
    return path.as_uri()


def _screenshot(tmp_path: Path, result):
    url = _page(tmp_path, result)
    png = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", url)
    data = png.read_bytes()
    assert len(data) > 20_000
    return decode(data)


@pytest.mark.parametrize(
    ("make", "colour"),
    [(findings_result, FINDINGS_RED), (inconclusive_result, INCONCLUSIVE_AMBER), (clean_result, CLEAN_GREEN)],
    ids=["findings", "inconclusive", "clean"],
)
def test_screenshot_shows_the_verdict_banner(tmp_path, make, colour):
    img = _screenshot(tmp_path, make())
    assert (img.width, img.height) == (WIDTH, HEIGHT)
    assert img.distinct_colours() > 30  # a rendered page, not a blank or single-colour image
    # the banner spans the page's full width at the top, in the verdict's colour
    assert img.pixel(5, 5) == pytest.approx(colour, abs=6)
    top = img.count(colour, rows=range(0, 140))
    assert top > 0.7 * WIDTH * 140
    # ... and only at the top: the rest of the page is mostly the light background
    assert img.count(colour, rows=range(600, HEIGHT)) < 0.05 * WIDTH * (HEIGHT - 600)
    others = {FINDINGS_RED, INCONCLUSIVE_AMBER, CLEAN_GREEN} - {colour}
    for other in others:
        assert img.count(other, rows=range(0, 140), tolerance=3) < 0.01 * WIDTH * 140


def test_dom_has_verdict_packages_and_no_injected_elements(tmp_path):
    url = _page(tmp_path, findings_result())
    dom = Page(_chromium(tmp_path, "--dump-dom", url).stdout.decode())
    text = dom.all_text()
    assert dom.find("header", id="verdict")[0]["class"] == "banner verdict-findings"
    assert "Findings" in text
    for name in ("evil-postinstall@1.0.3", "lodahs@4.17.21", "Honeytoken exfiltrated", "npm_token"):
        assert name in text
    assert not dom.find("script") and not dom.find("img")


def test_hostile_strings_stay_text_in_the_browser(tmp_path):
    url = _page(tmp_path, hostile_result())
    dom = Page(_chromium(tmp_path, "--dump-dom", url).stdout.decode())
    text = dom.all_text()
    for payload in PAYLOADS:
        assert payload in text
    assert not dom.find("script")
    assert not dom.find("img")
    assert not [a for _, a in dom.tags if any(k.startswith("on") for k in a)]
    # the page structure is intact: one banner, all three packages' cards rendered
    assert len(dom.find("header", id="verdict")) == 1
    assert len([a for t, a in dom.tags if t == "div" and "package" in (a.get("class") or "").split()]) == 3
