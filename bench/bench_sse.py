"""SSE decode throughput and first-byte-to-first-item latency.

1. Decode a ~10 MB OpenAI-style chat completion stream (as the fake LLM renders it, fed in
   16 KiB network-sized chunks): the SSE decoder alone, then decoder plus the OpenAI
   translator. Prints MB/s and events/s.
2. Stream a short answer from the fake LLM over loopback through a real `WireProvider`, many
   times, and measure from the fake server's first body byte to the first `StreamItem` the
   consumer receives. Prints the median and the 90th percentile.

Run: `python -m bench.bench_sse` (or `make bench`).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from oxydra.catalog import load_catalog
from oxydra.config.schema import AgentConfig, ProviderEntry, ProvidersConfig, Selection
from oxydra.core import Context, Message, ModelId, ProviderId
from oxydra.providers import build_provider
from oxydra.testing._fake_formats import FORMATS
from oxydra.testing.fake_llm import FakeLLM, Reply
from oxydra.wire import SSEDecoder
from oxydra.wire.openai_chat import OpenAIChatStream

TARGET_BYTES = 10 * 1024 * 1024
NETWORK_CHUNK = 16 * 1024
LATENCY_RUNS = 200


def make_stream() -> bytes:
    """A ~10 MB stream of `chat.completion.chunk` events with a few characters each."""
    words = "the quick brown fox jumps over a lazy dog; 世界 naïve café ".split(" ")
    text = " ".join(words[i % len(words)] for i in range(60_000))
    block = b"".join(FORMATS["openai"].stream(Reply(text=text, chunk=5), "gpt-4o-mini", {}))
    return (block * (TARGET_BYTES // len(block) + 1))[:TARGET_BYTES]


def chunks_of(data: bytes) -> list[bytes]:
    return [data[i : i + NETWORK_CHUNK] for i in range(0, len(data), NETWORK_CHUNK)]


def bench_decode(data: bytes, translate: bool) -> tuple[float, int]:
    """Seconds and events for one pass over `data`."""
    chunks = chunks_of(data)
    start = time.perf_counter()
    decoder = SSEDecoder()
    translator = OpenAIChatStream()
    events = 0
    for chunk in chunks:
        for event in decoder.feed(chunk):
            events += 1
            if translate and event.data != "[DONE]":
                translator.on_event(event)
    events += len(decoder.feed_eof())
    return time.perf_counter() - start, events


async def bench_first_item() -> list[float]:
    """Milliseconds from the server's first body byte to the first item, per run."""
    with tempfile.TemporaryDirectory() as home:
        catalog = load_catalog({"HOME": home}, cwd=Path(home))
        async with (
            FakeLLM([Reply(text="hello there") for _ in range(LATENCY_RUNS)]) as llm,
            httpx.AsyncClient() as client,
        ):
            entry = ProviderEntry(provider_type="openai", base_url=llm.base_url, api_key="k")
            config = AgentConfig(
                selection=Selection(provider="fake"),
                providers=ProvidersConfig(registry={"fake": entry}),
            )
            provider = build_provider("fake", config, {}, catalog, client)
            context = Context(
                provider=ProviderId("fake"),
                model=ModelId("gpt-4o-mini"),
                messages=(Message(role="user", content="hi"),),
            )
            samples = []
            for _ in range(LATENCY_RUNS):
                stream = provider.stream(context)
                await anext(stream)
                received = time.perf_counter()
                samples.append((received - llm.first_byte_times[-1]) * 1000)
                async for _item in stream:
                    pass
            return samples


def main() -> None:
    """Print the figures."""
    data = make_stream()
    mb = len(data) / 1e6
    for label, translate in (("SSE decode", False), ("SSE decode + OpenAI translate", True)):
        runs = [bench_decode(data, translate) for _ in range(3)]
        seconds = min(r[0] for r in runs)
        events = runs[0][1]
        print(
            f"{label}: {mb:.1f} MB, {events} events: "
            f"{mb / seconds:.1f} MB/s, {events / seconds:,.0f} events/s"
        )
    samples = asyncio.run(bench_first_item())
    q = statistics.quantiles(samples, n=10)
    print(
        f"first byte -> first StreamItem over loopback ({LATENCY_RUNS} runs): "
        f"median {statistics.median(samples):.3f} ms, p90 {q[-1]:.3f} ms"
    )


if __name__ == "__main__":
    main()
