"""The browser harness (tests/browser.py): Debian's Chromium, started with nothing downloaded, loads
the real app's pages from gunicorn, as a desktop and as a phone, asks for nothing beyond loopback, and
photographs whole pages."""
from __future__ import annotations

import json
import struct
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.selenium_manager import SeleniumManager

from tests.browser import DRIVER, needs_browser, open_browser, requested_urls, screenshot

pytestmark = needs_browser


def png_size(path) -> tuple[int, int]:
    """A PNG's width and height, from its IHDR chunk."""
    return struct.unpack(">II", path.read_bytes()[16:24])


@pytest.mark.parametrize("device, width, mobile", [("browser", 1280, False), ("phone_browser", 390, True)])
def test_browser_loads_the_apps_pages_and_photographs_them(gunicorn_server, request, device, width, mobile):
    driver = request.getfixturevalue(device)
    base_url = gunicorn_server["base_url"]

    driver.get(base_url + "/api/v1/openapi.json")
    document = json.loads(driver.find_element(By.TAG_NAME, "pre").text)
    assert document["info"]["title"] == "WhatsApp knowledge assistant" and "/healthz" in document["paths"]
    driver.get(base_url + "/healthz")
    assert json.loads(driver.find_element(By.TAG_NAME, "pre").text) == {"status": "ok"}
    assert ("Mobile" in driver.execute_script("return navigator.userAgent")) == mobile
    assert driver.execute_script("return navigator.languages") == ["es"]

    # This short page, not the OpenAPI one: 50,000 pixels high, that takes 8 s to photograph.
    assert png_size(screenshot(driver, f"harness-healthz-{device}"))[0] == width

    assert driver.service.path == str(DRIVER)
    assert {urlsplit(url).hostname for url in requested_urls(driver)} == {"127.0.0.1"}


def test_browser_starts_without_selenium_manager_and_photographs_whole_pages(monkeypatch):
    """Selenium Manager would download a browser or a driver: the harness never runs it."""
    def download(*args):
        raise AssertionError("Selenium Manager ran")

    monkeypatch.setattr(SeleniumManager, "binary_paths", download)
    with open_browser(800, 600, lang="en") as driver:
        assert driver.service.path == str(DRIVER)
        driver.get("data:text/html,<body style='margin:0'><div style='height:3000px'>hi</div>")
        assert driver.execute_script("return navigator.languages") == ["en"]
        assert png_size(screenshot(driver, "harness-tall-page")) == (800, 3000)  # the whole page, not the viewport
