"""A real headless Chromium for tests: Debian's `chromium` and `chromium-driver`, driven with Selenium,
never downloading a browser or a driver and reaching nothing beyond loopback."""
from __future__ import annotations

import base64
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DRIVER = Path("/usr/bin/chromedriver")  # Debian's chromium-driver
# The browser itself, not the /usr/bin/chromium wrapper script: that one adds Google API keys and
# extension flags, and costs half a second per start.
CHROMIUM = Path("/usr/lib/chromium/chromium")
PAGE_LOAD_SECONDS = 20

# Only if Selenium Manager ever ran (it does not: the driver's path is given), it must not download.
os.environ.setdefault("SE_OFFLINE", "true")


def missing() -> str | None:
    """Why no browser can be started here, or None."""
    absent = [str(path) for path in (DRIVER, CHROMIUM) if not os.access(path, os.X_OK)]
    if absent:
        return f"{' and '.join(absent)} not found: apt-get install chromium chromium-driver"
    return None


needs_browser = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def skip_without_browser() -> None:
    if reason := missing():
        pytest.skip(reason)


@contextmanager
def open_browser(width: int, height: int, *, mobile: bool = False, lang: str = "es") -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a `width`x`height` viewport (a phone's, touch and user agent, if
    `mobile`), asking for pages in `lang`; quit on exit."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars",
                 f"--window-size={width},{height}", f"--lang={lang}",
                 # No name resolves but loopback's, so nothing (page or browser) reaches further.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    # The exact viewport: a headless window of --window-size keeps room for a frame inside it.
    emulation = {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0, "mobile": mobile,
                                   "touch": mobile}}
    if mobile:
        emulation["clientHints"] = {"platform": "Android", "mobile": True}  # and so a phone's user agent
    options.add_experimental_option("mobileEmulation", emulation)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # for requested_urls
    driver = webdriver.Chrome(options=options, service=Service(str(DRIVER)))
    try:
        driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
        driver.set_script_timeout(PAGE_LOAD_SECONDS)
        yield driver
    finally:
        driver.quit()


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """The whole page, not only the viewport, as the screen shows it, in artifacts/screenshots/<name>.png."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    # A phone zooms out a page laid out wider than itself (no viewport meta): so does the picture.
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
            "scale": metrics["cssVisualViewport"]["scale"]}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                             "clip": clip})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the pages asked for since the last call (data: and blob: ones aside)."""
    events = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    return [event["params"]["request"]["url"] for event in events
            if event["method"] == "Network.requestWillBeSent"
            and not event["params"]["request"]["url"].startswith(("data:", "blob:"))]
