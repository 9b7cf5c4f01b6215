"""ToolRegistry policy on every call: timeouts, truncation, approval, scrubbing, paths."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from oxydra.config.schema import ApprovalConfig, ToolsConfig
from oxydra.core.errors import PolicyError, ToolError
from oxydra.core.tiers import SafetyTier
from oxydra.security import Scrubber
from oxydra.tools import (
    ApprovalRequest,
    ToolExecutionContext,
    ToolRegistry,
    tool,
    truncate,
)

KEY = "sk-known-0123456789abcdefXYZ"


@tool(timeout=5, safety_tier=SafetyTier.READ_ONLY)
async def echo(text: str) -> str:
    """Echo text.

    Args:
        text: What to echo.
    """
    return text


@tool(timeout=0.05, safety_tier=SafetyTier.READ_ONLY)
async def slow() -> str:
    """Sleep longer than the timeout."""
    await asyncio.sleep(30)
    return "never"


@tool(timeout=30, safety_tier=SafetyTier.SIDE_EFFECTING)
async def wait_forever() -> str:
    """Wait until cancelled."""
    await asyncio.Event().wait()
    return "never"


@tool(timeout=5, safety_tier=SafetyTier.PRIVILEGED)
async def dangerous() -> str:
    """Do something privileged."""
    return "done"


@tool(timeout=5)
async def broken() -> str:
    """Raise a bug."""
    raise KeyError("oops")


@tool(timeout=5)
async def refuses() -> str:
    """Raise a policy error."""
    raise PolicyError("no way")


@tool(timeout=5)
async def fails() -> str:
    """Raise a tool error."""
    raise ToolError("it went wrong")


@tool(timeout=5)
async def leaky(text: str) -> str:
    """Fail with the input in the message.

    Args:
        text: Echoed in the error.
    """
    raise ToolError(f"could not parse {text}")


def registry(**config: object) -> ToolRegistry:
    reg = ToolRegistry(ToolsConfig(**config), scrubber=Scrubber([KEY]))  # type: ignore[arg-type]
    reg.register_all([echo, slow, wait_forever, dangerous, broken, refuses, fails, leaky])
    return reg


class TestRegistration:
    def test_schemas_are_sorted_and_can_be_limited(self) -> None:
        reg = registry()
        assert [d.name for d in reg.schemas()] == sorted(reg.names)
        assert [d.name for d in reg.schemas(["echo", "nope", "broken"])] == ["broken", "echo"]

    def test_duplicate_names_are_refused(self) -> None:
        with pytest.raises(ValueError, match="already registered"):
            registry().register(echo)


class TestOutcomes:
    async def test_success(self, ctx: ToolExecutionContext) -> None:
        result = await registry().execute("echo", {"text": "hi"}, ctx)
        assert (result.ok, result.text, result.error_kind) == (True, "hi", None)

    async def test_unknown_tool_lists_the_real_names(self, ctx: ToolExecutionContext) -> None:
        result = await registry().execute("ech", {}, ctx)
        assert result.error_kind == "unknown_tool" and "echo" in result.text

    async def test_arguments_as_json_text(self, ctx: ToolExecutionContext) -> None:
        assert (await registry().execute("echo", '{"text": "j"}', ctx)).text == "j"

    @pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '{"text": 5}'])
    async def test_bad_arguments_become_feedback(self, ctx: ToolExecutionContext, raw: str) -> None:
        result = await registry().execute("echo", raw, ctx)
        assert result.error_kind == "invalid_arguments"
        assert result.text.startswith("Invalid arguments for tool 'echo'")

    async def test_timeout_stops_the_tool(self, ctx: ToolExecutionContext) -> None:
        result = await registry().execute("slow", {}, ctx)
        assert result.error_kind == "timeout" and "0.05 seconds" in result.text

    async def test_cancelling_the_call_propagates_and_is_not_a_result(
        self, ctx: ToolExecutionContext
    ) -> None:
        call = asyncio.ensure_future(registry().execute("wait_forever", {}, ctx))
        await asyncio.sleep(0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    @pytest.mark.parametrize(
        ("name", "kind", "fragment"),
        [
            ("broken", "failed", "internal error: KeyError"),
            ("refuses", "policy", "refused by policy: no way"),
            ("fails", "failed", "Tool execution failed: it went wrong"),
        ],
    )
    async def test_errors_are_classified(
        self, ctx: ToolExecutionContext, name: str, kind: str, fragment: str
    ) -> None:
        result = await registry().execute(name, {}, ctx)
        assert (result.ok, result.error_kind) == (False, kind) and fragment in result.text


class TestOutputPolicy:
    async def test_long_output_is_truncated_with_marker_and_size(
        self, ctx: ToolExecutionContext
    ) -> None:
        result = await registry(output_limit_bytes=100).execute("echo", {"text": "é" * 500}, ctx)
        assert result.truncated and result.original_bytes == 1000
        assert result.text.endswith("\n...[output truncated: 1000 bytes total]")
        assert len(result.text.split("\n...")[0].encode()) <= 100

    async def test_known_secret_is_scrubbed_even_when_it_would_straddle_the_cut(
        self, ctx: ToolExecutionContext
    ) -> None:
        text = "x" * 90 + KEY
        result = await registry(output_limit_bytes=100).execute("echo", {"text": text}, ctx)
        assert KEY[:10] not in result.text

    async def test_secret_shapes_are_scrubbed_from_errors_too(
        self, ctx: ToolExecutionContext
    ) -> None:
        token = "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8"
        result = await registry().execute("leaky", {"text": f"token={token}"}, ctx)
        assert result.error_kind == "failed" and "could not parse" in result.text
        assert token[4:] not in result.text

    async def test_host_paths_become_virtual(
        self, ctx: ToolExecutionContext, ws_root: Path
    ) -> None:
        text = f"saved to {ws_root}/shared/x.md and {ws_root}/tmp/y"
        result = await registry().execute("echo", {"text": text}, ctx)
        assert result.text == "saved to /shared/x.md and /tmp/y"

    def test_truncate_never_splits_a_character(self) -> None:
        text, size = truncate("aé", 2)
        assert text.startswith("a\n") and size == 3


class TestApproval:
    def approval(self, **kw: object) -> ToolRegistry:
        return registry(approval=ApprovalConfig(require=[SafetyTier.PRIVILEGED], **kw))  # type: ignore[arg-type]

    async def test_tiers_not_listed_run_without_asking(self, ctx: ToolExecutionContext) -> None:
        assert (await self.approval().execute("echo", {"text": "a"}, ctx)).ok

    @pytest.mark.parametrize(("default", "ok"), [("deny", False), ("allow", True)])
    async def test_without_an_approver_the_default_decides(
        self, ctx: ToolExecutionContext, default: str, ok: bool
    ) -> None:
        result = await self.approval(default=default).execute("dangerous", {}, ctx)
        assert result.ok is ok
        assert result.error_kind == (None if ok else "denied")

    @pytest.mark.parametrize("answer", [True, False])
    async def test_the_approver_is_asked_with_the_call(
        self, ctx: ToolExecutionContext, answer: bool
    ) -> None:
        asked: list[ApprovalRequest] = []

        async def approver(request: ApprovalRequest) -> bool:
            asked.append(request)
            return answer

        call_ctx = replace(ctx, approval=approver, call_id="c1")
        result = await self.approval(default="allow").execute("dangerous", {}, call_ctx)
        assert result.ok is answer
        assert [(r.tool, r.safety_tier, r.call_id) for r in asked] == [
            ("dangerous", SafetyTier.PRIVILEGED, "c1")
        ]

    async def test_an_approver_that_never_answers_means_no(self, ctx: ToolExecutionContext) -> None:
        async def silent(request: ApprovalRequest) -> bool:
            await asyncio.Event().wait()
            return True

        reg = self.approval(default="allow", timeout_secs=1)
        result = await reg.execute("dangerous", {}, replace(ctx, approval=silent))
        assert result.error_kind == "denied"


class _GatedScrubber(Scrubber):
    """Scrubs only once another coroutine on the loop has run: on the loop, it would wait out."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__([KEY])
        self.gate = gate
        self.saw_the_loop_run: list[bool] = []

    def scrub(self, text: str) -> str:
        if len(text) > 1000:
            self.saw_the_loop_run.append(self.gate.wait(timeout=10))
        return super().scrub(text)


class TestHostileArguments:
    async def test_deeply_nested_arguments_are_invalid_not_a_crash(
        self, ctx: ToolExecutionContext
    ) -> None:
        raw = '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"
        result = await registry().execute("echo", raw, ctx)
        assert result.error_kind == "invalid_arguments" and "nest deeper" in result.text


class TestScrubbingCost:
    async def test_a_slow_scrub_does_not_stall_other_coroutines(
        self, ctx: ToolExecutionContext
    ) -> None:
        gate = threading.Event()
        scrubber = _GatedScrubber(gate)
        reg = ToolRegistry(ToolsConfig(), scrubber=scrubber)
        reg.register(echo)

        async def other_session() -> None:
            await asyncio.sleep(0)
            gate.set()

        other = asyncio.create_task(other_session())
        result = await reg.execute("echo", {"text": "curl " * 9000}, ctx)
        await other
        assert scrubber.saw_the_loop_run == [True] and result.ok

    async def test_huge_output_is_cut_before_scrubbing_and_reports_the_full_size(
        self, ctx: ToolExecutionContext
    ) -> None:
        limit = 1000
        text = "x" * (limit - 10) + KEY + "curl " * 2_000_000
        result = await registry(output_limit_bytes=limit).execute("echo", {"text": text}, ctx)
        assert result.truncated and result.original_bytes == len(text)
        assert result.text.endswith(f"...[output truncated: {len(text)} bytes total]")
        assert KEY[:8] not in result.text

    async def test_private_key_longer_than_the_margin_is_still_redacted_at_the_cut(
        self, ctx: ToolExecutionContext
    ) -> None:
        body = "-----BEGIN PRIVATE KEY-----\n" + "MIIEvQ\n" * 200_000 + "-----END PRIVATE KEY-----"
        result = await registry(output_limit_bytes=500).execute("echo", {"text": body}, ctx)
        assert "MIIEvQ" not in result.text and "[REDACTED PRIVATE KEY]" in result.text
