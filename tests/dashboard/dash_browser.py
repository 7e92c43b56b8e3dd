"""A real headless Chromium (Debian's chromium + chromedriver) driven by Selenium, for the dashboard tests.

Nothing is downloaded: the browser and the driver are the system's (scripts/setup.sh --test installs
them), and Selenium Manager is kept offline. Screenshots are decoded with tests/report/report_png.py.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from report_png import Image, decode

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1280, 1000
SHOTS = Path(os.environ.get("TRACEHOUND_TEST_SCREENSHOTS", "")) if os.environ.get("TRACEHOUND_TEST_SCREENSHOTS") \
    else None

# colours of report.css / dashboard.css
FINDINGS_RED = (0xB4, 0x23, 0x18)
CLEAN_GREEN = (0x06, 0x76, 0x47)
TOPBAR = (0x10, 0x18, 0x28)


def require_browser() -> None:
    pytest.importorskip("selenium", reason="selenium is in the test extra (pip install -e .[test])")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup.sh --test installs them)")


class Browser:
    """One browser profile (its own cookie jar) pointed at one server."""

    def __init__(self, base_url: str, shots: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch anything
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--window-size={WIDTH},{HEIGHT}", "--no-first-run", "--disable-extensions",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--force-device-scale-factor=1", "--hide-scrollbars"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
        self.driver.set_page_load_timeout(60)
        self.base = base_url
        self.shots = shots
        self.console: list[dict] = []

    # -- navigation --

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    @property
    def path(self) -> str:
        from urllib.parse import urlsplit

        u = urlsplit(self.driver.current_url)
        return u.path + ("?" + u.query if u.query else "")

    def css(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def text(self, selector: str = "body") -> str:
        return self.css(selector).text

    def fill(self, selector: str, value: str) -> None:
        el = self.css(selector)
        el.clear()
        el.send_keys(value)

    def click(self, selector: str, *, navigates: bool = True) -> None:
        """Click; when it submits a form or follows a link, wait until the next page has loaded."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.css("html")
        self.css(selector).click()
        if navigates:
            def left(_driver) -> bool:
                # the old page's root is stale; chromium sometimes says so with an inspector error
                # ("Node with given id does not belong to the document") instead of the stale-element one
                try:
                    old.is_enabled()
                except WebDriverException:
                    return True
                return False

            WebDriverWait(self.driver, 60).until(left)
            WebDriverWait(self.driver, 60).until(
                lambda d: d.execute_script("return document.readyState") == "complete")

    def login(self, user: str, password: str, next_path: str = "/ui/scans") -> None:
        self.open(next_path)
        assert self.path.startswith("/ui/login"), self.path
        self.fill("#username", user)
        self.fill("#password", password)
        self.click("#sign-in")

    def logout(self) -> None:
        self.click("#logout")

    # -- checks --

    def logs(self) -> list[dict]:
        self.console += self.driver.get_log("browser")
        return self.console

    def csp_violations(self) -> list[str]:
        return [e["message"] for e in self.logs() if "Content Security Policy" in e.get("message", "")]

    def screenshot(self, name: str) -> Image:
        png = self.driver.get_screenshot_as_png()
        self.shots.mkdir(parents=True, exist_ok=True)
        (self.shots / f"{name}.png").write_bytes(png)
        if SHOTS is not None:
            SHOTS.mkdir(parents=True, exist_ok=True)
            (SHOTS / f"{name}.png").write_bytes(png)
        img = decode(png)
        assert img.width == WIDTH and img.height > 600, (img.width, img.height)  # the viewport
        return img

    def quit(self) -> None:
        self.driver.quit()


def assert_not_blank(img: Image) -> None:
    """A rendered page has the dark top bar, text and more than a handful of colours."""
    assert img.count(TOPBAR, rows=range(0, 40)) > WIDTH * 20, "the top bar is missing"
    assert img.distinct_colours() > 12, "the page looks blank"
