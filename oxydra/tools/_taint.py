"""The registry's taint hook: gate a call by the step's taint, then label what it returns.

Per call (the registry calls these around its own steps):
1. `check`: the call's impact class and `[security.taint]` decide allow / approve / deny
   (`security.taint.TaintPolicy`); a tainted `web_fetch` URL or `web_search` query that
   could carry data out is refused (`EgressCheck`). The registry asks the person for
   `approve` and records every gated call with the answer in the audit log.
2. `result_label`: a result is untrusted when the tool declares its results untrusted
   (`untrusted` attribute, built-in web tools), when it read labelled data (memory hits
   reported through `note_read`, a tainted workspace file), or when a shell command
   fetched a URL or touched a tainted file.
3. `after_write`: files written by the call take the step's label (`TaintedPaths`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from oxydra.config.schema import TaintConfig
from oxydra.core.provenance import Label, Source, merge, untrusted
from oxydra.security.scrub import SECRET_ENV_NAME, Scrubber
from oxydra.security.taint import EgressCheck, TaintDecision, TaintPolicy, read_paths, written_paths
from oxydra.security.taint_state import AuditEntry, AuditLog, TaintedPaths
from oxydra.tools._context import ToolExecutionContext
from oxydra.tools._protocol import Tool

UNTRUSTED_RESULTS: dict[str, tuple[str, str]] = {
    "web_fetch": ("web_fetch", "url"),
    "web_search": ("web_search", "query"),
}
"""Built-in tools whose results come from outside: (source kind, argument naming it)."""
AUDIT_ARG_CHARS = 2000
PATHS_FILE = Path(".oxydra") / "tainted_paths.json"
AUDIT_FILE = Path("logs") / "taint-audit.jsonl"


class TaintGuard:
    """Taint policy, tainted files, egress check and audit log for one workspace."""

    def __init__(
        self,
        config: TaintConfig | None = None,
        *,
        secrets: Iterable[str] = (),
        paths: TaintedPaths | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.policy = TaintPolicy(config)
        self.paths = paths if paths is not None else TaintedPaths()
        self.audit = audit if audit is not None else AuditLog()
        self.egress = EgressCheck(
            secrets, max_value_chars=self.policy.config.egress_max_query_value_chars
        )

    @classmethod
    def for_workspace(
        cls,
        config: TaintConfig,
        workspace: Path | None,
        *,
        environ: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
    ) -> TaintGuard:
        """A guard persisting its files in `workspace` (in memory when None)."""
        env = os.environ if environ is None else environ
        known = [*secrets, *(v for k, v in env.items() if SECRET_ENV_NAME.search(k))]
        if workspace is None:
            return cls(config, secrets=known)
        return cls(
            config,
            secrets=known,
            paths=TaintedPaths(workspace / PATHS_FILE),
            audit=AuditLog(workspace / AUDIT_FILE),
        )

    def check(
        self, tool: Tool, args: Mapping[str, Any], ctx: ToolExecutionContext
    ) -> TaintDecision:
        """What to do with this call under the step's taint (rule 1)."""
        impact = self.policy.impact_of(
            tool.name,
            args,
            declared=getattr(tool, "impact", None),
            tier=tool.safety_tier,
        )
        decision = self.policy.decide(tool.name, impact, ctx.taint)
        gating = self.policy.config.mode != "off"
        if gating and decision.action == "allow" and ctx.taint is not None and ctx.taint.untrusted:
            refusal = self._egress_refusal(tool.name, args)
            if refusal is not None:
                return TaintDecision(
                    action="deny",
                    impact=impact,
                    reason=(
                        f"{refusal}; while untrusted content ({ctx.taint.describe()}) is in "
                        "the conversation, URLs that could carry data out are not fetched. "
                        "Ask the user to open it, or fetch a URL without the data"
                    ),
                )
        return decision

    def url_refusal(self, url: str, taint: Label | None) -> str | None:
        """Why a tainted step may not send a request to `url` (None: it may).

        The reusable egress check for HTTP clients outside the built-in tools (MCP HTTP
        calls): pass the call's `ctx.taint`. Untainted steps and `mode = "off"` pass.
        """
        if taint is None or not taint.untrusted or self.policy.config.mode == "off":
            return None
        return self.egress.refusal(url)

    def _egress_refusal(self, name: str, args: Mapping[str, Any]) -> str | None:
        if name == "web_fetch" and isinstance(args.get("url"), str):
            return self.egress.refusal(args["url"])
        if name == "web_search" and isinstance(args.get("query"), str):
            return self.egress.text_refusal(args["query"])
        return None

    async def record(
        self,
        tool: Tool,
        args: Mapping[str, Any],
        ctx: ToolExecutionContext,
        decision: TaintDecision,
        answer: str,
        scrubber: Scrubber,
    ) -> None:
        """Append the gated call and the answer to the audit log."""
        entry = AuditEntry(
            at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            user_id=ctx.user_id,
            session_id=ctx.session_id,
            call_id=ctx.call_id,
            tool=tool.name,
            impact=str(decision.impact),
            action=decision.action,
            answer=answer,
            sources=tuple(str(s) for s in (ctx.taint.sources if ctx.taint else ())),
            arguments={
                k: scrubber.scrub(str(v))[:AUDIT_ARG_CHARS] if isinstance(v, str) else v
                for k, v in args.items()
            },
            reason=decision.reason,
        )
        await asyncio.to_thread(self.audit.append, entry)

    def result_label(self, tool: Tool, args: Mapping[str, Any], reads: list[Label]) -> Label | None:
        """The label of the call's result (rule 2)."""
        labels: list[Label | None] = [*reads]
        builtin = UNTRUSTED_RESULTS.get(tool.name)
        declared = getattr(tool, "untrusted", None)
        if declared:
            kind, _, ref = str(declared).partition(" ")
            labels.append(untrusted(kind, ref))
        elif builtin is not None:
            named = args.get(builtin[1])
            labels.append(untrusted(builtin[0], named if isinstance(named, str) else ""))
        for path in read_paths(tool.name, args):
            labels.append(self.paths.label_for(path))
        if tool.name == "shell_exec" and isinstance(args.get("command"), str):
            labels.append(self._shell_label(args["command"]))
        return merge(*labels)

    def _shell_label(self, command: str) -> Label | None:
        if "://" in command:
            return Label(sources=(Source(kind="shell", ref=command[:120]),))
        return self.paths.mentioned_in(command)

    async def after_write(
        self, tool: Tool, args: Mapping[str, Any], ctx: ToolExecutionContext
    ) -> None:
        """Files the call wrote take the step's label (rule 3)."""
        paths = written_paths(tool.name, args)
        if tool.name == "file_delete" and isinstance(args.get("path"), str):
            await asyncio.to_thread(self.paths.forget, args["path"])
        for path in paths:
            await asyncio.to_thread(
                self.paths.record, path, ctx.taint, whole_file=tool.name != "file_edit"
            )
