"""The dashboards page in a real headless Chromium against `commonwatt serve --demo` with a
month of readings: log in, the balance, a zoom that asks the series again, a dashboard that
survives a reload, and a member who sees only their own part. Screenshots go to
tests/artefacts/; the page's weight and time to first chart are printed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.clients import DemoServer, demo_server
from tests.conftest import REPO_ROOT
from tests.environment import in_ci

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTEFACTS = REPO_ROOT / "tests" / "artefacts"
MEMBER = "mario.rossi@example.org"  # member `rossi` of valle-verde, meter sens-0010
MEMBER_PASSWORD = "member password of the page test"
MONTH = "2026-03"


def month_of_readings() -> list[dict[str, Any]]:
    """March 2026 of valle-verde: the town hall produces, Rossi feeds in and withdraws (and
    his power every 10 minutes), Bianchi and the town hall withdraw."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    readings: list[dict[str, Any]] = []
    for hour in range(31 * 24):
        ts = start + timedelta(hours=hour + 1)
        sun = max(0.0, 1 - abs((hour % 24) - 12) / 6)
        stamp = ts.isoformat()
        readings += [
            {"sensor_id": "sens-0001", "channel": "energy_produced", "ts": stamp,
             "value": round(4000 * sun, 1)},
            {"sensor_id": "sens-0002", "channel": "energy_import", "ts": stamp, "value": 900},
            {"sensor_id": "sens-0010", "channel": "energy_import", "ts": stamp,
             "value": 300 if sun == 0 else 50},
            {"sensor_id": "sens-0010", "channel": "energy_export", "ts": stamp,
             "value": round(1200 * sun, 1)},
            {"sensor_id": "sens-0011", "channel": "energy_import", "ts": stamp, "value": 500},
        ]
    for step in range(31 * 24 * 6):
        ts = start + timedelta(minutes=10 * step)
        readings.append({"sensor_id": "sens-0010", "channel": "power", "ts": ts.isoformat(),
                         "value": 500 + (step * 37) % 900})
    return readings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DemoServer]:
    """The demo with a member's account and a month of readings."""
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail(f"CI needs Chromium at {CHROMIUM} for the page test")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    data_dir = tmp_path / "var"
    subprocess.run([sys.executable, "-m", "handlers.cli", "users", "create", MEMBER],
                   input=MEMBER_PASSWORD + "\n", text=True, check=True, capture_output=True,
                   env={**os.environ, "COMMONWATT_DATA_DIR": str(data_dir)})
    with demo_server(data_dir) as demo:
        login = httpx.post(f"{demo.base_url}/auth/login",
                           json={"email": demo.email, "password": demo.password}, timeout=30)
        token = login.json()["access_token"]
        stored = httpx.post(f"{demo.base_url}/telemetry/readings",
                            json={"readings": month_of_readings()}, timeout=120,
                            headers={"Authorization": f"Bearer {token}"})
        assert stored.status_code == 200, stored.text
        yield demo


class Watcher:
    """What a page did wrong (console errors, failed requests) and the series it asked."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.series: list[dict[str, list[str]]] = []
        self.bytes = 0
        page.on("console", lambda message: message.type == "error"
                and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("requestfailed", lambda request: self.errors.append(
            f"failed {request.url}"))
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.url}")
        if "/api/telemetry/series" in response.url:
            self.series.append(parse_qs(urlparse(response.url).query))


def span(query: dict[str, list[str]]) -> timedelta:
    """The time range a series request asked for."""
    return datetime.fromisoformat(query["to"][0]) - datetime.fromisoformat(query["from"][0])


def log_in(page: Any, root: str, email: str, password: str) -> None:
    page.goto(f"{root}/?month={MONTH}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)


def test_the_page_draws_the_balance_and_dashboards(server: DemoServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    root = server.base_url.removesuffix("/api")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            watcher = Watcher(page)
            page.on("response", lambda response: setattr(
                watcher, "bytes", watcher.bytes + int(response.headers.get(
                    "content-length", "0") or 0)))
            started = time.monotonic()
            page.goto(f"{root}/?month={MONTH}")
            page.wait_for_load_state("load")
            first_load_bytes = watcher.bytes
            page.get_by_label("Email").fill(server.email)
            page.get_by_label("Password").fill(server.password)
            clicked = time.monotonic()
            page.get_by_role("button", name="Log in").click()
            page.get_by_label("Community", exact=True).select_option("valle-verde")
            page.wait_for_selector("#balance-chart[data-drawn='31']", timeout=30_000)
            first_chart = time.monotonic() - clicked
            expect(page.locator("#balance-figures")).to_contain_text("Self-sufficiency")
            expect(page.locator("#balance-members tbody tr")).to_have_count(6)
            page.locator("#balance").screenshot(path=str(ARTEFACTS / "balance.png"))

            page.get_by_label("Name", exact=True).fill("Rossi's power")
            page.get_by_label("Sensor of the line chart").select_option("sens-0010")
            page.get_by_label("Channel", exact=True).select_option("power")
            page.get_by_role("button", name="Create with a line chart and the balance").click()
            line = page.locator("figure[data-kind=line]")
            expect(line).to_have_attribute("data-max-points", str(round(
                line.locator(".chart").evaluate("node => node.clientWidth"))), timeout=30_000)
            expect(page.locator("figure[data-kind=balance] svg")).to_be_visible()
            asked = len(watcher.series)
            before = watcher.series[-1]
            line.get_by_role("button", name="Zoom in").click()
            expect(line).not_to_have_attribute("data-from", before["from"][0])
            after = watcher.series[asked]
            assert span(after) == span(before) / 2
            assert after["max_points"] == [line.get_attribute("data-max-points")]
            assert int(line.get_attribute("data-drawn") or 0) > 0
            line.locator(".chart").focus()
            page.keyboard.press("-")  # zoom out from the keyboard
            for _ in range(100):
                if len(watcher.series) > asked + 1:
                    break
                page.wait_for_timeout(100)
            assert span(watcher.series[asked + 1]) == span(before)

            page.reload()
            page.wait_for_selector("body[data-ready=true]", timeout=30_000)
            page.get_by_label("Community", exact=True).select_option("valle-verde")
            page.get_by_label("Dashboard", exact=True).select_option(label="Rossi's power")
            expect(page.locator("figure[data-kind=line] svg polyline")).to_have_count(1)
            page.locator("#dashboards").screenshot(path=str(ARTEFACTS / "dashboard.png"))
            page.screenshot(path=str(ARTEFACTS / "page.png"), full_page=True)
            assert watcher.errors == []

            member_page = browser.new_context(viewport={"width": 640, "height": 900},
                                              device_scale_factor=2).new_page()
            member_watcher = Watcher(member_page)
            log_in(member_page, root, MEMBER, MEMBER_PASSWORD)
            expect(member_page.locator("#community option")).to_have_count(1)
            expect(member_page.locator("#balance-members tbody tr")).to_have_count(1)
            expect(member_page.locator("#balance-members tbody th")).to_have_text("rossi")
            expect(member_page.locator("#balance-chart")).to_contain_text("withheld")
            expect(member_page.locator("#new-sensor option")).to_have_text(
                ["sens-0010 (rossi)"])
            expect(member_page.locator("#dashboard option")).to_have_count(0)
            member_page.screenshot(path=str(ARTEFACTS / "member.png"), full_page=True)
            assert member_watcher.errors == []
        finally:
            browser.close()
    print(f"\npage weight on first load: {first_load_bytes} bytes; "
          f"time to first chart after login: {first_chart * 1000:.0f} ms; "
          f"total load to chart: {(time.monotonic() - started):.1f} s (whole test)")
