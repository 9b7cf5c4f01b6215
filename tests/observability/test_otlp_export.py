"""A real `vm` subprocess exporting OTLP/HTTP to a loopback receiver that decodes protobuf.

The caller's trace context crosses the process boundary on the `send_turn` frame; the
delegated agent's turn hangs under the caller's `execute_tool delegate_to_agent` span.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from oxydra.testing.fake_llm import Usage as FakeUsage
from oxydra.wire import gateway as g
from tests.gateway.support import VmProcess, client, send, terminal, until
from tests.observability.receiver import Receiver

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
RUNNER_TRACE = "0af7651916cd43dd8448eb211c80319c"
RUNNER_SPAN = "b7ad6b7169203331"
SECRET = "sk-proj-Zx81kQ2mW9vR4tY7uI0oP3aS6dF5gH8jK1lZ4xC7vB0nM2"
INTERNAL, CLIENT = 1, 3


@pytest.fixture
def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver()
    rx.start()
    yield rx  # type: ignore[misc]
    rx.stop()


def otel_vm(tmp: Path, llm: FakeLLM, rx: Receiver, *extra: str) -> VmProcess:
    vm = VmProcess(
        tmp,
        llm.base_url,
        extra=[
            "observability.enabled=true",
            f"observability.otlp_endpoint=http://127.0.0.1:{rx.port}",
            "observability.headers.authorization=OTLP_AUTH",
            "observability.service_name=oxydra-test",
            "agents.researcher.system_prompt=You research.",
            'agents.researcher.tools=["file_write"]',
            *extra,
        ],
    )
    vm.env["OTLP_AUTH"] = "Bearer collector-secret"
    return vm


async def one_turn(vm: VmProcess, prompt: str, traceparent: str | None) -> list[object]:
    endpoint = await vm.start()
    ws, ack = await client(endpoint)
    assert ack.session is not None
    frame = g.SendTurn(
        request_id="r1",
        session_id=ack.session.session_id,
        turn_id=uuid.uuid4().hex,
        prompt=prompt,
        traceparent=traceparent,
    )
    await send(ws, frame)
    frames = await until(ws, terminal)
    await ws.close()
    assert await vm.stop() == 0  # shutdown flushes the span queue and the metric reader
    return frames


async def test_the_turn_tree_crosses_the_process_and_the_delegation(
    tmp_path: Path, receiver: Receiver
) -> None:
    script = [
        Reply(
            tool_calls=[
                Call(name="delegate_to_agent", arguments={"agent_name": "researcher", "goal": "g"})
            ],
            usage=FakeUsage(prompt_tokens=900, completion_tokens=20),
        ),
        Reply(
            tool_calls=[Call(name="file_write", arguments={"path": "/shared/r", "content": "x"})]
        ),
        Reply(text="found it"),
        Reply(text="All done.", usage=FakeUsage(prompt_tokens=1000, completion_tokens=5)),
    ]
    async with FakeLLM(script) as llm:
        vm = otel_vm(tmp_path, llm, receiver)
        envelope = tmp_path / "envelope.json"
        envelope.write_text(
            json.dumps(
                {
                    "user_id": "alice",
                    "sandbox_tier": "process",
                    "workspace_root": str(vm.workspace),
                    "traceparent": f"00-{RUNNER_TRACE}-{RUNNER_SPAN}-01",
                }
            )
        )
        vm.cmd += ["--bootstrap-file", str(envelope)]
        frames = await one_turn(vm, "research", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    usage = [f for f in frames if isinstance(f, g.Usage)]
    assert isinstance(frames[-1], g.TurnCompleted) and isinstance(frames[-2], g.Usage)
    # the turn pays for its delegate too: 2 calls of its own, 2 of the sub-agent
    assert usage[0].turn.calls == 4 and usage[0].turn.input_tokens == 1920

    (main,) = [s for s in receiver.named("invoke_agent default")]
    (sub,) = receiver.named("invoke_agent researcher")
    (delegate,) = receiver.named("execute_tool delegate_to_agent")
    (write,) = receiver.named("execute_tool file_write")
    (start,) = receiver.named("oxydra.vm.start")  # the runner's span, via the envelope
    assert (start.trace_id, start.parent_id) == (RUNNER_TRACE, RUNNER_SPAN)
    # across the process boundary: the guest's turn is a child of the caller's span
    assert (main.trace_id, main.parent_id) == (CALLER_TRACE, CALLER_SPAN)
    assert delegate.parent_id == main.span_id
    assert sub.parent_id == delegate.span_id and sub.trace_id == CALLER_TRACE
    assert write.parent_id == sub.span_id and write.attrs["oxydra.outcome"] == "ok"
    chats = receiver.named("chat gpt-4o-mini")
    assert sorted(c.parent_id for c in chats) == sorted(
        [main.span_id, main.span_id, sub.span_id, sub.span_id]
    )
    assert {c.kind for c in chats} == {CLIENT} and main.kind == INTERNAL
    first = next(c for c in chats if c.attrs.get("gen_ai.usage.input_tokens") == 900)
    assert first.attrs["gen_ai.operation.name"] == "chat"
    assert first.attrs["gen_ai.provider.name"] == "openai"  # the catalog's name for the route
    assert first.attrs["oxydra.route"] == "fake"
    assert first.attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert first.attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert first.attrs["gen_ai.usage.output_tokens"] == 20
    assert first.attrs["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert first.attrs["gen_ai.usage.cost"] > 0
    assert main.attrs["gen_ai.conversation.id"] == frames[-1].session.session_id  # type: ignore[attr-defined]
    assert main.attrs["gen_ai.agent.name"] == "default"
    assert delegate.attrs["gen_ai.tool.name"] == "delegate_to_agent"
    assert all("gen_ai.input.messages" not in s.attrs for s in receiver.spans)  # capture off
    assert {s.service for s in receiver.spans} == {"oxydra-test"}
    assert all(h.get("authorization") == "Bearer collector-secret" for h in receiver.headers)
    tokens = receiver.metrics["gen_ai.client.token.usage"][-1].histogram.data_points
    by_type = {
        dict((a.key, a.value.string_value) for a in p.attributes)["gen_ai.token.type"]: p.sum
        for p in tokens
        if any(a.value.string_value == "gpt-4o-mini" for a in p.attributes)
    }
    assert by_type["input"] == 900 + 1000 + 20  # +10 and +10 from the sub-agent's default usage


async def test_captured_content_is_scrubbed_and_clipped(tmp_path: Path, receiver: Receiver) -> None:
    huge = "y" * 50_000
    async with FakeLLM([Reply(text=f"noted {huge}")]) as llm:
        vm = otel_vm(
            tmp_path,
            llm,
            receiver,
            "observability.capture_content=true",
            "observability.max_attribute_chars=1000",
        )
        await one_turn(vm, f"my key is {SECRET}", None)
    (chat,) = receiver.named("chat ")
    sent = chat.attrs["gen_ai.input.messages"]
    assert "my key is" in sent and SECRET not in sent
    answer = chat.attrs["gen_ai.output.messages"]
    assert len(answer) <= 1000 and answer.endswith("…[truncated]")
