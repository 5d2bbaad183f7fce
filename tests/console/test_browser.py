"""The console in a real Chromium (Debian's chromium, driven by chromium-driver through Selenium).

An operator signs in, sees the overview with the servers, presses "Sync now" and watches the
cycle run in the live panel; a viewer sees no such button and is refused when it forges the
request. Screenshots are written as test artifacts (``RECONCILER_TEST_ARTIFACTS``, default
``test-artifacts/console``) and checked not blank. The page must also run without a single
Content-Security-Policy complaint in the browser's console.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from providers.simcloud.admin import admin_delete
from tests.console.conftest import PASSWORDS
from tests.daemon.conftest import DaemonProcess, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
REASON = (
    "Chromium and chromium-driver are needed for the browser tests: run scripts/setup/chromium.sh "
    "(Debian packages 'chromium' and 'chromium-driver')"
)
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None, reason=REASON)
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("RECONCILER_TEST_ARTIFACTS") or REPO / "test-artifacts") / "console"


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _login(driver: Any, base: str, user: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[user])
    driver.find_element(By.ID, "login-button").click()
    wait_until(lambda: driver.current_url.rstrip("/") == base, timeout=10, what="the overview after login")


def _screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path))
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        assert width >= 800 and height >= 600
        colors = rgb.getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 20, f"{path} looks blank"
        if colors is not None:
            assert max(count for count, _ in colors) < 0.97 * width * height, f"{path} is one colour"
    return path


def _csp_complaints(driver: Any) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


def _live(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "live").text)


def test_an_operator_syncs_and_sees_the_cycle_live(console_daemon: DaemonProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    daemon = console_daemon
    wait_until(lambda: len(daemon.running()) == 3, what="the first cycle to converge")
    _login(browser, daemon.base, "alice")
    table = browser.find_element(By.ID, "server-table").text
    assert "shop/web/0" in table and "shop/web/1" in table and "shop/db/0" in table
    assert "running" in table
    _screenshot(browser, "overview-operator")

    admin_delete(daemon.state_dir, "shop/web/1")  # behind the daemon's back
    browser.find_element(By.ID, "sync-now").click()
    wait_until(
        lambda: "sync requested" in browser.find_element(By.ID, "action-result").text,
        timeout=10,
        what="the sync request to be accepted",
    )
    wait_until(
        lambda: "create shop/web/1: succeeded" in _live(browser),
        timeout=20,
        what=f"the create to show in the live panel: {_live(browser)!r}",
    )
    wait_until(
        lambda: "cycle finished: converged" in _live(browser),
        timeout=20,
        what=f"the cycle to finish in the live panel: {_live(browser)!r}",
    )
    assert "console:alice" in _live(browser)
    _screenshot(browser, "overview-after-sync")
    browser.get(daemon.base + "/audit?action=console")
    assert "console:alice" in browser.find_element(By.ID, "audit-table").text
    for path in ("/plan", "/usage", "/backups", "/clusters/shop"):
        browser.get(daemon.base + path)
        assert browser.find_elements(By.TAG_NAME, "h1")
    _screenshot(browser, "cluster")
    assert _csp_complaints(browser) == []


def test_a_viewer_has_no_button_and_a_forged_request_is_refused(
    console_daemon: DaemonProcess, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    daemon = console_daemon
    _login(browser, daemon.base, "victor")
    assert browser.find_elements(By.ID, "sync-now") == []
    assert browser.find_elements(By.ID, "server-table")
    forged = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const csrf = document.querySelector('meta[name="csrf"]').content;
        const results = {};
        fetch('/api/v1/sync', {method: 'POST', headers: {'X-CSRF-Token': csrf}})
          .then(r => { results.withToken = r.status;
                       return fetch('/api/v1/sync', {method: 'POST'}); })
          .then(r => { results.withoutToken = r.status;
                       const body = new FormData(); body.append('csrf', csrf);
                       return fetch('/actions/sync', {method: 'POST', body: body}); })
          .then(r => { results.form = r.status; done(results); })
          .catch(e => done({error: String(e)}));
    """)
    assert forged == {"withToken": 403, "withoutToken": 403, "form": 403}
    _screenshot(browser, "overview-viewer")
    assert _csp_complaints(browser) == []
