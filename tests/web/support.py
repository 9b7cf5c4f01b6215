"""Helpers for the web tests: the browser fixture, screenshots under `build/`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxydra.testing.cdp import Browser, find_chromium

SHOTS = Path(__file__).resolve().parents[2] / "build" / "web-screenshots"


def need_chromium() -> str:
    """The browser, or a skip locally / a failure in CI (so the check cannot vanish)."""
    exe = find_chromium()
    if exe is None:
        if os.environ.get("OXYDRA_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return exe


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    exe = need_chromium()
    async with await Browser.launch(exe) as b:
        yield b


async def shot(browser: Browser, name: str) -> Path:
    """Save a screenshot for review under build/web-screenshots/."""
    return await browser.screenshot(SHOTS / f"{name}.png")
