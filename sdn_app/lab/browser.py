"""A real browser for the topology page's tests: headless Chromium (Debian's
``chromium`` and ``chromium-driver``, installed by scripts/setup.sh) driven by
Selenium, with its console kept so a test can require that nothing went wrong."""

from __future__ import annotations

import contextlib
import shutil

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextlib.contextmanager
def headless_chromium(width: int = 1600, height: int = 1000):
    """A Chrome WebDriver on headless Chromium; the driver Debian ships, found by path
    (Selenium Manager would try to download one)."""
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=%d,%d" % (width, height), "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list[dict]:
    """The console's SEVERE entries since the last call (JavaScript errors, failed
    requests)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def click(driver, selector: str) -> bool:
    """Click the element ``selector`` names, found and clicked in one step (the page
    redraws every second, so an element found earlier may be gone); False if absent."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "if (!e) return false;"
        "e.dispatchEvent(new MouseEvent('click', {bubbles: true})); return true;", selector)


def count(driver, selector: str) -> int:
    return driver.execute_script("return document.querySelectorAll(arguments[0]).length;",
                                 selector)
