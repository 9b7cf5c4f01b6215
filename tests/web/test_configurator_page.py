"""The configurator page in a real browser: edits with a bad type and a good one."""

from __future__ import annotations

import tomllib
from pathlib import Path

from oxydra.testing.cdp import Browser
from tests.web.support import browser, shot
from tests.web.test_configurator import start

__all__ = ["browser"]

FIELD = "document.querySelector('input[data-key=\"runtime.max_turns\"]')"


async def test_a_bad_value_shows_its_error_by_the_field_and_a_good_one_is_saved(
    browser: Browser, tmp_path: Path
) -> None:
    api, server = await start(tmp_path)
    try:
        agent = api.dir / "agent.toml"
        before = agent.read_bytes()
        await browser.goto(api.base)
        await browser.wait_for(f"!!{FIELD}")
        await browser.wait_for("document.querySelectorAll('#models tr').length > 0")
        secret = await browser.evaluate(
            "document.querySelector('input[data-key=\"providers.registry.openai.api_key\"]').value"
        )
        assert secret == "********", "the key never reaches the browser"
        await browser.evaluate(f"{FIELD}.value = 'lots'")
        await browser.click("#save")
        error = await browser.wait_for(
            f"document.getElementById({FIELD}.id + '-error').textContent"
        )
        assert "runtime.max_turns" in error
        assert await browser.evaluate(f"{FIELD}.getAttribute('aria-invalid')") == "true"
        await shot(browser, "config-error")
        assert agent.read_bytes() == before, "file unchanged"
        await browser.evaluate(f"{FIELD}.value = '25'")
        await browser.click("#save")
        await browser.wait_for(
            "document.getElementById('diff').textContent.includes('+max_turns = 25')"
        )
        await shot(browser, "config-saved")
        stored = tomllib.loads(agent.read_text())
        assert stored["runtime"]["max_turns"] == 25
        assert stored["providers"]["registry"]["openai"]["api_key"] == "sk-secret-123"
        assert [p.read_bytes() for p in api.dir.glob("agent.toml.bak-*")] == [before]
        guests = await browser.evaluate("document.getElementById('guests').textContent")
        assert "alice" in guests and "stopped" in guests
        logs = api.dir / "ws" / "alice" / "logs"
        logs.mkdir(parents=True)
        (logs / "oxydra-vm.stdout.log").write_text("2026-12-03T09:00:00Z guest says hello\n")
        await browser.click("button[aria-label='Logs alice']")
        await browser.wait_for("document.getElementById('logs').textContent.includes('hello')")
        with (logs / "oxydra-vm.stdout.log").open("a") as fh:
            fh.write("2026-12-03T09:00:02Z and goes on\n")
        await browser.wait_for("document.getElementById('logs').textContent.includes('goes on')")
    finally:
        await api.http.aclose()
        await server.close()


async def test_in_token_mode_the_page_asks_for_the_token_first(
    browser: Browser, tmp_path: Path
) -> None:
    api, server = await start(tmp_path, token="operator-token-1234")
    try:
        await browser.goto(api.base)
        await browser.wait_for("!document.getElementById('signin').hidden")
        assert await browser.evaluate("document.getElementById('app').hidden")
        await browser.type_text("#token", "wrong")
        await browser.press("Enter")
        await browser.wait_for("document.getElementById('signin-error').textContent")
        await browser.type_text("#token", "operator-token-1234")
        await browser.press("Enter")
        await browser.wait_for(f"!!{FIELD}")
        stored = await browser.evaluate(
            "JSON.stringify([location.href, document.cookie, {...localStorage},"
            " {...sessionStorage}])"
        )
        assert "operator-token-1234" not in stored
    finally:
        await api.http.aclose()
        await server.close()
