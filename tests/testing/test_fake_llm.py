"""The fake LLM itself: routing, strictness, the command line."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest

from oxydra.testing.fake_llm import SCRIPT_ENDED, FakeLLM, Reply, decode_script


async def _drain(lines: AsyncIterator[str]) -> list[str]:
    return [line async for line in lines if line]


async def post(
    url: str, body: dict[str, object], headers: dict[str, str] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, json=body, headers=headers)


class TestRouting:
    async def test_conversations_by_header_then_model_then_default(self) -> None:
        convs = {"alice": [Reply(text="for alice")], "gpt-4o": [Reply(text="for the model")]}
        async with FakeLLM([Reply(text="default")], conversations=convs) as llm:
            url = f"{llm.base_url}/v1/chat/completions"
            answers = [
                await post(url, {"model": "x"}, {"x-fake-conversation": "alice"}),
                await post(url, {"model": "gpt-4o"}),
                await post(url, {"model": "other"}),
            ]
            llm.assert_done()
        texts = [r.json()["choices"][0]["message"]["content"] for r in answers]
        assert texts == ["for alice", "for the model", "default"]

    async def test_requests_past_the_script_fail_and_are_reported(self) -> None:
        async with FakeLLM([]) as llm:
            response = await post(f"{llm.base_url}/v1/messages", {"model": "m"})
            assert response.status_code == 500
            with pytest.raises(AssertionError, match="found no step"):
                llm.assert_done()

    async def test_unused_steps_fail_assert_done(self) -> None:
        async with FakeLLM([Reply(text="never asked")]) as llm:
            with pytest.raises(AssertionError, match="1 unused step"):
                llm.assert_done()

    async def test_a_held_reply_waits_after_its_first_event_while_others_answer(self) -> None:
        convs = {"held": [Reply(text="held answer")], "free": [Reply(text="free")]}
        async with FakeLLM(conversations=convs) as llm, httpx.AsyncClient() as client:
            release = llm.hold("held")
            url = f"{llm.base_url}/v1/chat/completions"
            body = {"model": "held", "stream": True, "messages": []}
            async with client.stream("POST", url, json=body) as held:
                events = held.aiter_lines()
                first = await anext(events)
                assert first.startswith("data: ")
                free = await post(url, {"model": "free"})  # another conversation is not held
                assert free.json()["choices"][0]["message"]["content"] == "free"
                rest = asyncio.ensure_future(_drain(events))
                with pytest.raises(TimeoutError):  # nothing past the first event comes yet
                    await asyncio.wait_for(asyncio.shield(rest), 0.1)
                release.set()
                lines = [first, *await rest]
            llm.assert_done()
        text = "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            for line in lines
            if line.startswith("data: {")
        )
        assert text == "held answer" and lines[-1] == "data: [DONE]"

    async def test_unknown_paths_are_404(self) -> None:
        async with FakeLLM() as llm, httpx.AsyncClient() as client:
            assert (await client.get(f"{llm.base_url}/nothing")).status_code == 404


def test_script_files_accept_a_list_or_conversations() -> None:
    assert decode_script(b'[{"kind": "reply", "text": "hi"}]').conversations == {
        "default": [Reply(text="hi")]
    }
    script = decode_script(b'{"conversations": {"a": [{"kind": "error", "status": 429}]}}')
    assert script.conversations["a"][0].status == 429  # type: ignore[union-attr]


def test_command_line_server_answers_and_records(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_bytes(b'[{"kind": "reply", "text": "from a subprocess"}]')
    record = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oxydra.testing.fake_llm",
            "--port",
            "0",
            "--script",
            str(script),
            "--record",
            str(record),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("FAKE_LLM_URL=")
        url = line.split("=", 1)[1]
        response = httpx.post(f"{url}/v1/chat/completions", json={"model": "m"}, timeout=10)
        assert response.json()["choices"][0]["message"]["content"] == "from a subprocess"
        after = httpx.post(f"{url}/v1/chat/completions", json={"model": "m"}, timeout=10)
        assert after.status_code == 200  # past the script: a friendly reply, not a 500
        assert after.json()["choices"][0]["message"]["content"] == SCRIPT_ENDED
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    recorded = [msgspec.json.decode(line) for line in record.read_bytes().splitlines()]
    assert recorded[0]["path"] == "/v1/chat/completions"
    assert proc.returncode == 0


class TestLlamaCppQuirks:
    """What llama.cpp's server did, so the drivers can be tested against it."""

    async def test_null_content_beside_tool_calls_is_a_500(self) -> None:
        body = {
            "model": "m",
            "messages": [{"role": "assistant", "content": None, "tool_calls": []}],
        }
        async with FakeLLM([Reply(text="unused")], server="llamacpp") as llm:
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"{llm.base_url}/v1/chat/completions", json=body)
        assert answer.status_code == 500

    async def test_a_streamed_request_with_tools_gets_an_empty_200(self) -> None:
        tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        body = {"model": "m", "stream": True, "tools": [tool], "messages": []}
        async with FakeLLM([], server="llamacpp") as llm:
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"{llm.base_url}/v1/chat/completions", json=body)
        assert answer.status_code == 200 and answer.content == b""

    async def test_the_model_list_reports_the_training_context(self) -> None:
        async with FakeLLM([], server="llamacpp", context_window=2048) as llm:
            async with httpx.AsyncClient() as client:
                listed = (await client.get(f"{llm.base_url}/v1/models")).json()
        assert listed["data"][0]["meta"]["n_ctx_train"] == 2048
