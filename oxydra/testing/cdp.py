"""A small Chrome DevTools Protocol driver for Debian's `chromium`, over `websockets`.

Tests and benchmarks drive the web page in a real headless browser with it: no extra Python
dependency, and nothing downloaded (the browser is the Debian package). One `Browser` is one
fresh profile and one page; it is killed by its own process id when closed.

    async with Browser.launch() as browser:
        await browser.goto("http://127.0.0.1:8080/")
        await browser.wait_for("document.title === 'Oxydra'")
        await browser.screenshot(path)
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

FLAGS = [
    "--headless",
    "--no-sandbox",  # root in a container; never a flag for anything user-facing
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--remote-debugging-port=0",
    "--window-size=1100,800",
]


def find_chromium() -> str | None:
    """The browser binary, if installed (`OXYDRA_CHROMIUM` overrides)."""
    return os.environ.get("OXYDRA_CHROMIUM") or shutil.which("chromium")


class CdpError(Exception):
    """The browser answered a command with an error, or a wait timed out."""


class Browser:
    """One headless Chromium with one page, driven over CDP."""

    def __init__(self, proc: subprocess.Popen[bytes], profile: str, ws: ClientConnection) -> None:
        self.proc, self.profile, self.ws = proc, profile, ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._loaded = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def launch(cls, binary: str | None = None, timeout: float = 30) -> Browser:
        """Start the browser on a fresh profile and attach to its first page."""
        exe = binary or find_chromium()
        if exe is None:
            raise CdpError("chromium not found: apt-get install chromium")
        profile = tempfile.mkdtemp(prefix="oxydra-chromium-")
        proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port = await _devtools_port(Path(profile), proc, timeout)
            targets = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{port}/json/list")
            page = next(t for t in targets if t.get("type") == "page")
            ws = await connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20)
        except BaseException:
            _kill(proc, profile)
            raise
        browser = cls(proc, profile, ws)
        await browser.send("Page.enable")
        await browser.send("Runtime.enable")
        return browser

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Kill the browser (by its own process group) and remove its profile."""
        self._reader.cancel()
        await self.ws.close()
        _kill(self.proc, self.profile)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Run one CDP command and return its result."""
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        await self.ws.send(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        return await asyncio.wait_for(future, 60)

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            future = self._pending.pop(message.get("id", -1), None)
            if future is None:
                self.events.append(message)
                if message.get("method") == "Page.loadEventFired":
                    self._loaded.set()
            elif "error" in message:
                future.set_exception(CdpError(str(message["error"])))
            else:
                future.set_result(message.get("result"))

    async def goto(self, url: str) -> None:
        """Load `url` and wait for its load event."""
        await self._loading("Page.navigate", {"url": url})

    async def reload(self) -> None:
        """Reload the page and wait for its load event."""
        await self._loading("Page.reload", {})

    async def _loading(self, method: str, params: dict[str, Any], timeout: float = 20) -> None:
        self._loaded.clear()
        await self.send(method, params)
        await asyncio.wait_for(self._loaded.wait(), timeout)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            raise CdpError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    async def wait_for(self, condition: str, timeout: float = 20) -> Any:
        """Wait until a JavaScript expression is truthy in the page; return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                value = await self.evaluate(condition)
            except CdpError:
                value = None  # the page is navigating
            if value:
                return value
            if loop.time() > deadline:
                raise CdpError(f"timed out waiting for: {condition}")
            await asyncio.sleep(0.05)

    async def type_text(self, selector: str, text: str) -> None:
        """Focus an element and type `text` into it as keyboard input."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", {"text": text})

    async def press(self, key: str, *, shift: bool = False) -> None:
        """Press and release a key (`Enter`, `Escape`, `Tab`) in the focused element."""
        codes = {"Enter": 13, "Escape": 27, "Tab": 9}
        event = {
            "key": key,
            "code": key,
            "windowsVirtualKeyCode": codes[key],
            "modifiers": 8 if shift else 0,
        }
        text = {"text": "\r"} if key == "Enter" else {}
        await self.send("Input.dispatchKeyEvent", {"type": "keyDown", **event, **text})
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", **event})

    async def click(self, selector: str) -> None:
        """Click an element (through the DOM: the element must exist)."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    async def screenshot(self, path: Path) -> Path:
        """Save a PNG of the page."""
        data = await self.send("Page.captureScreenshot", {"format": "png"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path


async def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    marker = profile / "DevToolsActivePort"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if proc.poll() is not None:
            raise CdpError(f"chromium exited with {proc.returncode}")
        if marker.exists():
            first = marker.read_text().split("\n", 1)[0].strip()
            if first.isdigit():
                return int(first)
        await asyncio.sleep(0.05)
    raise CdpError("chromium did not open its DevTools port")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _kill(proc: subprocess.Popen[bytes], profile: str) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
    shutil.rmtree(profile, ignore_errors=True)
