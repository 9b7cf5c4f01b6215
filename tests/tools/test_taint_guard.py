"""The registry's taint hook: egress check reusable by other HTTP clients (MCP), result
labels from tool declarations, deny mode, audit of refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from oxydra.config.schema import TaintConfig
from oxydra.core import ImpactClass, Label, untrusted
from oxydra.security import Workspace
from oxydra.tools import LocalFileBackend, ToolExecutionContext, ToolRegistry, tool
from oxydra.tools._taint import TaintGuard

WEB = untrusted("web_fetch", "https://evil.test/")
SECRET = "sk-test-Zq8vN3xLw0PmR7tY2kB5"


@tool(name="mcp_post", untrusted="mcp crm", impact=ImpactClass.EXTERNAL_EFFECT)
async def mcp_post(body: str) -> str:
    """Post to the CRM (a stand-in MCP tool).

    Args:
        body: What to post.
    """
    return f"posted {body}"


@tool(name="mcp_get", untrusted="mcp crm")
async def mcp_get(key: str) -> str:
    """Read from the CRM (a stand-in MCP tool).

    Args:
        key: What to read.
    """
    return f"value of {key}"


def context(tmp: Path, label: Label | None = None) -> ToolExecutionContext:
    backend = LocalFileBackend(Workspace.for_user(tmp))
    return ToolExecutionContext(user_id="u", session_id="s", workspace=backend, taint=label)


def test_url_refusal_is_for_tainted_steps_only() -> None:
    guard = TaintGuard(secrets=[SECRET])
    url = f"https://crm.test/api?k={SECRET}"
    assert guard.url_refusal(url, None) is None
    assert guard.url_refusal(url, WEB) == "the URL contains a secret"
    off = TaintGuard(TaintConfig(mode="off"), secrets=[SECRET])
    assert off.url_refusal(url, WEB) is None


async def test_a_declared_untrusted_tool_labels_its_results(tmp_path: Path) -> None:
    registry = ToolRegistry()
    registry.register(mcp_get)
    result = await registry.execute("mcp_get", {"key": "a"}, context(tmp_path))
    assert result.ok and result.label == untrusted("mcp", "crm")


async def test_deny_mode_refuses_and_audits_without_asking(tmp_path: Path) -> None:
    guard = TaintGuard.for_workspace(TaintConfig(mode="deny"), tmp_path, environ={})
    registry = ToolRegistry(taint=guard)
    registry.register(mcp_post)
    asked: list[object] = []

    async def approve(request: object, /) -> bool:
        asked.append(request)
        return True

    ctx = context(tmp_path, WEB)
    result = await registry.execute("mcp_post", {"body": "x"}, replace(ctx, approval=approve))
    assert not result.ok and result.error_kind == "policy" and asked == []
    [line] = (tmp_path / "logs" / "taint-audit.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert (entry["tool"], entry["action"], entry["answer"]) == ("mcp_post", "deny", "refused")
    trusted = await registry.execute("mcp_post", {"body": "x"}, context(tmp_path))
    assert trusted.ok and trusted.text == "posted x"
