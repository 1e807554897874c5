"""The operator console in a real browser (Debian's chromium, driven by Playwright).

`ais demo` (a short one), `ais serve` as a real process, then: the overview's NAV is the
exact string of /v1/portfolio; NAV moves live while a paper session (`ais run`) writes
new marks; a viewer trying the kill switch sees the API's 403; an operator engages it
after confirming and sees it on the overview and the risk decisions; an auditor fetches
and checks an inclusion proof. Every page is saved as a PNG under test-output/console/.

Skipped without chromium, except in CI (`CI=true` or AIS_REQUIRE_TOOLS=1,
set by .ci/run, which installs chromium), where that fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e_helpers import CLI, ROOT, ais, environ, serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("AIS_REQUIRE_TOOLS") == "1"
SHOTS = ROOT / "test-output" / "console"
END = "2018-01-12T12:00:00"  # long enough for orders, fills and realized lots
PAPER = ["--data", "data/ADABTC_5m.csv", "--data", "data/ETCBTC_5m.csv"]  # held at END

if not Path(CHROMIUM).exists():
    if REQUIRED:
        raise RuntimeError(f"the browser tests need Debian's chromium at {CHROMIUM}")
    pytest.skip("chromium missing (apt-get install chromium)", allow_module_level=True)


@dataclass
class Console:
    url: str
    home: Path
    tokens: dict[str, str]
    client: httpx.Client

    def read(self, path: str, role: str = "viewer", **params: Any) -> Any:
        response = self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {self.tokens[role]}"}
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    home = tmp_path_factory.mktemp("console") / "home"
    ais("demo", "--end", END, home=home)
    tokens = {
        role: ais("token", "create", name, "--role", role, home=home).stdout.strip()
        for role, name in (
            ("viewer", "view-vera"),
            ("operator", "ops-olga"),
            ("auditor", "aud-ada"),
        )
    }
    with serving(home) as client:
        yield Console(str(client.base_url).rstrip("/"), home, tokens, client)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield found
        finally:
            found.close()


# What the page's Content-Security-Policy blocked, across every page of the module: the
# console must work inside its own policy.
BLOCKED: list[str] = []


def signed_in(browser: Browser, console: Console, role: str) -> Page:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(10_000)
    page.on(
        "console",
        lambda message: (
            BLOCKED.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(console.url + "/")
    page.fill("#token", console.tokens[role])
    page.press("#token", "Enter")
    expect(page.locator("body")).to_have_attribute("data-loaded", "overview")
    return page


def visit(page: Page, name: str, shot: str) -> None:
    page.click(f"nav a[href='#{name}']")
    expect(page.locator("body")).to_have_attribute("data-loaded", name)
    page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
    assert not BLOCKED, BLOCKED


def confirm(page: Page, button: str, reason: str) -> None:
    page.click(button)
    expect(page.locator("#confirm")).to_be_visible()
    page.fill("#confirm-reason", reason)
    page.click("#confirm-ok")


def test_viewer_sees_the_portfolio_and_gets_403_on_the_kill_switch(
    console: Console, browser: Browser
) -> None:
    policy = console.client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    page = signed_in(browser, console, "viewer")
    portfolio = console.read("/v1/portfolio")
    nav = page.locator("#nav-value .v")
    expect(nav).to_have_text(portfolio["nav"])
    expect(page.locator("#hwm .v")).to_have_text(portfolio["high_water_mark"])
    expect(page.locator("#daily-pnl .v")).to_have_text(portfolio["daily_pnl"])
    expect(page.locator("#kill-state")).to_have_text("ACTIVE")
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

    confirm(page, "#kill-engage", "viewer tries")
    expect(page.locator("#message")).to_contain_text("(403)")
    expect(page.locator("#message")).to_contain_text("operator")
    page.screenshot(path=str(SHOTS / "viewer-403.png"), full_page=True)
    assert console.read("/v1/risk/kill-switch")["kill_state"] == "ACTIVE"

    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#token", "ais_not-a-token")
    page.press("#token", "Enter")
    expect(page.locator("#signin-error")).to_have_text("That token is not valid.")
    page.close()


def test_nav_moves_live_then_the_operator_engages_the_kill_switch(
    console: Console, browser: Browser
) -> None:
    page = signed_in(browser, console, "operator")
    before = console.read("/v1/portfolio")
    expect(page.locator("#nav-value .v")).to_have_text(before["nav"])

    paper = subprocess.run(
        [*CLI, "run", "--mode", "paper", *PAPER,
         "--interval", "0.2", "--cycles", "10"],
        cwd=ROOT, env=environ(console.home), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert paper.returncode == 0, paper.stderr[-2000:]
    head = int(console.client.get("/readyz").json()["head"])
    after = console.read("/v1/portfolio", min_position=head)
    assert after["nav"] != before["nav"]  # the session marked the held instruments
    # No reload: the stream said the position moved and the page fetched it again.
    expect(page.locator("#nav-value .v")).to_have_text(after["nav"])
    expect(page.locator("#position")).to_have_text(str(after["position"]))
    expect(page.locator("#live")).to_contain_text("live")

    started = console.client.post(
        "/v1/sessions",
        json={"mode": "paper", "starting_capital": "10"},
        headers={"Authorization": f"Bearer {console.tokens['operator']}"},
    )
    assert started.status_code == 201, started.text
    session_id = started.json()["session_id"]
    page.click("nav a[href='#sessions']")
    halted = page.locator(f"[title='{session_id}']")
    row = page.locator("#sessions-table tbody tr").filter(has=halted)
    expect(row).to_contain_text("ACTIVE")
    row.get_by_role("button", name="Halt…").click()
    expect(page.locator("#confirm-text")).to_contain_text(session_id)
    page.fill("#confirm-reason", "console halt")
    page.click("#confirm-ok")
    expect(row).to_contain_text("HALTED")
    expect(row).to_contain_text("console halt (requested by ops-olga)")
    page.click("nav a[href='#overview']")

    confirm(page, "#kill-engage", "console drill")
    expect(page.locator("#kill-state")).to_have_text("HALTED")
    expect(page.locator("#message")).to_contain_text("kill switch HALTED")
    expect(page.locator("#kill-detail")).to_contain_text("ops-olga")
    page.screenshot(path=str(SHOTS / "overview-halted.png"), full_page=True)

    page.click("nav a[href='#risk']")
    page.select_option("#risk-filters select[name=decision]", "KILL_SWITCH_ENGAGED")
    page.click("#risk-filters button[type=submit]")
    row = page.locator("#risk-table tbody tr").filter(has_text="console drill")
    expect(row).to_contain_text("ops-olga")
    expect(page.locator("#risk-kill-state")).to_have_text("HALTED")
    page.screenshot(path=str(SHOTS / "risk.png"), full_page=True)
    kill = console.read("/v1/risk/kill-switch")
    assert (kill["kill_state"], kill["actor"]) == ("HALTED", "ops-olga")

    for name in ("charts", "exposure", "positions", "orders", "reconciliation", "sessions",
                 "reports"):  # fmt: skip
        visit(page, name, name)
    expect(page.locator("#chart-nav svg polyline")).to_have_count(1)
    orders = console.read("/v1/orders", limit=500)["items"]
    expect(page.locator("#orders-table tbody tr")).to_have_count(min(len(orders), 100))
    page.fill("#lots-year", "2018")
    page.select_option("#lots-format", "koinly")
    with page.expect_download() as download:
        page.click("#lots-form button[type=submit]")
    assert download.value.suggested_filename == "ais-lots-2018-koinly.csv"
    saved = Path(download.value.path()).read_text()
    assert saved.startswith("Date,Sent Amount,Sent Currency") and saved.count("\n") > 2
    page.click("nav a[href='#audit']")
    expect(page.locator("#audit-checkpoint")).to_contain_text("(403)")  # auditors only
    page.close()


def test_auditor_checks_an_inclusion_proof(console: Console, browser: Browser) -> None:
    page = signed_in(browser, console, "auditor")
    checkpoints = console.read("/v1/audit/checkpoints", role="auditor")["items"]
    visit(page, "audit", "audit")
    expect(page.locator("#audit-checkpoint")).to_contain_text(checkpoints[-1]["chain_head"])
    page.fill("#proof-position", "5")
    page.click("#proof-form button[type=submit]")
    expect(page.locator("#proof-verdict")).to_contain_text("Included: event 5")
    page.screenshot(path=str(SHOTS / "audit-proof.png"), full_page=True)
    page.fill("#proof-position", str(checkpoints[-1]["tree_size"] + 10_000))
    page.click("#proof-form button[type=submit]")
    expect(page.locator("#proof-result")).to_contain_text("(404)")
    page.close()
