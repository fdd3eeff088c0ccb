"""Swagger UI in a real headless Chromium: Authorize with the demo admin, try an operation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.environment import in_ci
from tests.handlers.test_cli import stop
from tests.handlers.test_serve import read_until, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser_page() -> Iterator[object]:
    """A page of a headless Chromium; skipped without one on a developer machine, never in CI."""
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail(f"CI needs Chromium at {CHROMIUM} for the Swagger UI test")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_authorize_then_try_an_authenticated_operation(browser_page: object,
                                                        tmp_path: Path) -> None:
    from playwright.sync_api import Page, expect

    page = browser_page
    assert isinstance(page, Page)
    base, process = serve(tmp_path / "var", "--demo")
    try:
        lines = read_until(process, "Serving on", time.monotonic() + 90)
        email, password = next(line for line in lines if "Demo admin:" in line).split()[2::2]
        page.goto(f"{base}/ui/")
        page.locator("button.authorize").first.click()
        modal = page.locator(".modal-ux")
        oauth2 = modal.locator(".auth-container").filter(has_text="oauth2Password")
        oauth2.locator("#oauth_username").fill(email)
        oauth2.locator("#oauth_password").fill(password)
        oauth2.locator("button.authorize").click()
        expect(modal.get_by_text("Authorized", exact=True)).to_be_visible(timeout=15_000)
        modal.locator("button.close-modal").click()

        operation = page.locator("#operations-auth-get_me")
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table tbody .response-col_status").first
        expect(status).to_have_text("200", timeout=15_000)
        expect(operation.locator(".live-responses-table")).to_contain_text(email)
    finally:
        stop(process)
