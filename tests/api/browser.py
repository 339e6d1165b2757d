"""Debian's headless Chromium driven through its chromedriver by selenium, for the
tests of the /play page. Both binaries are the system's packages (`apt-get install
chromium chromium-driver`): nothing is downloaded, and selenium's own driver
manager is never asked (the driver and the browser are named explicitly)."""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from pathlib import Path

from tests.helpers import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Quiet and offline: no first-run pages, no background fetches, no component updates.
FLAGS = ["--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if absent:
        return f"no browser installed ({', '.join(absent)} missing): apt-get install chromium chromium-driver"
    return None


class Browser:
    def __init__(self, driver):
        self.driver = driver

    def viewport(self, width: int, height: int = 900) -> None:
        """A CSS viewport of exactly width x height (a phone's at 375 px)."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "the page"):
        """predicate()'s first truthy value, polled; fails after `timeout` seconds."""
        return wait_until(predicate, what, timeout, interval)

    def console(self) -> list[dict]:
        """Browser console entries since the last call (errors, warnings, logs)."""
        return self.driver.get_log("browser")

    def screenshot(self, path: Path) -> None:
        """The whole page, not only the viewport."""
        width, height = self.js("return [window.innerWidth, document.documentElement.scrollHeight]")
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.contextmanager
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="lottery-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
        options.add_argument(f"--user-data-dir={profile}")  # a fresh profile each run
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield Browser(driver)
        finally:
            driver.quit()
