"""The chat page in headless chromium against a real `vm` and the fake LLM (in-process).

Figures: page load to interactive (navigation start to the sign-in form, cache off; median
of 5), bytes transferred on a first load (page, script, styles), time from the fake LLM
sending a token to the next frame after it is in the DOM (median of 20 turns; the page
batches a burst of deltas for 30 ms), and the page's JS heap and DOM nodes after N messages
(`OXYDRA_WEB_BENCH_MESSAGES`, default 1,000: half prompts, half answers), after a GC.

    python -m bench web
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from oxydra.testing.cdp import Browser, find_chromium
from oxydra.testing.fake_llm import FakeLLM, Reply

TOKEN = "bench-token-0123456789abcdef"


async def _vm(tmp: Path, url: str) -> tuple[asyncio.subprocess.Process, str]:
    ws = tmp / "ws"
    sets = [
        f"providers.registry.fake.base_url={url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
    ]
    args = ["-m", "oxydra", "vm", "--user-id", "bench", "--workspace-root", str(ws)]
    for item in sets:
        args += ["--set", item]
    env = {**os.environ, "HOME": str(tmp / "home"), "OXYDRA__GATEWAY__AUTH_TOKEN": TOKEN}
    proc = await asyncio.create_subprocess_exec(sys.executable, *args, env=env,
                                                stdout=asyncio.subprocess.DEVNULL)  # fmt: skip
    marker = ws / "ipc" / "gateway-endpoint"
    while not marker.exists():
        await asyncio.sleep(0.05)
    endpoint = marker.read_text().strip()
    return proc, endpoint.replace("ws://", "http://").removesuffix("ws")


async def _load(browser: Browser, url: str) -> tuple[float, int]:
    """Seconds to an interactive sign-in form, and bytes received, on an uncached load."""
    await browser.send("Network.enable")
    await browser.send("Network.setCacheDisabled", {"cacheDisabled": True})
    await browser.send("Network.clearBrowserCookies")
    start = time.perf_counter()
    await browser.goto(url)  # waits for the new document's load event
    await browser.wait_for("!document.getElementById('signin')?.hidden", timeout=30)
    took = time.perf_counter() - start
    size = await browser.evaluate(
        "performance.getEntries().filter(e => 'transferSize' in e)"
        ".reduce((n, e) => n + e.transferSize, 0)"
    )
    return took, int(size)


async def _sign_in(browser: Browser) -> None:
    await browser.type_text("#token", TOKEN)
    await browser.press("Enter")
    await browser.wait_for("document.getElementById('conn').dataset.state === 'open'")


WATCH = """new Promise(done => {
  const log = document.getElementById('log');
  const seen = new MutationObserver(() => {
    if (log.textContent.includes(MARK)) {
      seen.disconnect();
      requestAnimationFrame(() => done(performance.timeOrigin + performance.now()));
    }
  });
  seen.observe(log, {subtree: true, childList: true, characterData: true});
})"""


async def _token_to_paint(browser: Browser, llm: FakeLLM, runs: int) -> list[float]:
    offset = time.time() - time.perf_counter()
    out = []
    for i in range(runs):
        mark = f"tok{i}x"
        llm.add([Reply(text=mark)])
        sent = len(llm.first_byte_times)
        watch = asyncio.create_task(browser.evaluate(WATCH.replace("MARK", repr(mark))))
        await asyncio.sleep(0.05)
        await browser.type_text("#prompt", "go")
        await browser.press("Enter")
        painted_ms = await watch
        first_byte = llm.first_byte_times[sent] + offset
        out.append(painted_ms - first_byte * 1000)
        await browser.wait_for(
            f"document.querySelectorAll('.turn .state[data-state=completed]').length === {i + 1}"
        )
    return out


async def _many(browser: Browser, llm: FakeLLM, messages: int, done_before: int) -> dict[str, Any]:
    turns = messages // 2
    llm.add(
        [
            Reply(text=f"answer number {i} with a little **Markdown** and `code`.")
            for i in range(turns)
        ]
    )
    for i in range(turns):
        await browser.type_text("#prompt", f"message {i}")
        await browser.press("Enter")
        await browser.wait_for(
            "document.querySelectorAll('.turn .state[data-state=completed]').length === "
            f"{done_before + i + 1}",
            timeout=60,
        )
    await browser.send("HeapProfiler.collectGarbage")
    await browser.send("Performance.enable")
    metrics = {
        m["name"]: m["value"] for m in (await browser.send("Performance.getMetrics"))["metrics"]
    }
    return {"heap_mib": metrics["JSHeapUsedSize"] / 2**20, "nodes": int(metrics["Nodes"])}


async def run() -> None:
    if find_chromium() is None:
        print("chromium not installed (apt-get install chromium); skipped")
        return
    messages = int(os.environ.get("OXYDRA_WEB_BENCH_MESSAGES", "1000"))
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeLLM() as llm:
            vm, url = await _vm(Path(tmp), llm.base_url)
            try:
                async with await Browser.launch() as browser:
                    loads = [await _load(browser, url) for _ in range(5)]
                    await browser.send("Network.setCacheDisabled", {"cacheDisabled": False})
                    await _sign_in(browser)
                    paints = await _token_to_paint(browser, llm, 20)
                    memory = await _many(browser, llm, messages, 20)
            finally:
                vm.terminate()
                await vm.wait()
    times = [t for t, _ in loads]
    load_ms = statistics.median(times) * 1000
    print(f"page load to interactive (uncached, median of 5): {load_ms:.0f} ms")
    print(f"bytes transferred on a first load (headers and bodies): {loads[0][1]:,} B")
    print(
        f"token to paint (median of {len(paints)}): {statistics.median(paints):.1f} ms "
        f"(min {min(paints):.1f}, max {max(paints):.1f})"
    )
    print(
        f"after {messages:,} messages (+40 warm-up): JS heap {memory['heap_mib']:.1f} MiB, "
        f"{memory['nodes']:,} DOM nodes"
    )


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
