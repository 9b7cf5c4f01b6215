"""The model's skill tools: load and read through the registry; create and update as drafts.

A draft lands in the managed folder's `.drafts/NAME/SKILL.md`, outside every file-tool
mount, and stays inactive until the operator approves it: `oxydra skills approve NAME`, or,
when the turn comes from the operator's terminal (the TUI, channel `tui`), a `skill_approve`
approval frame showing the draft's name, description, full body and hash, asked right after
it is written. A yes approves exactly what was shown (a draft changed meanwhile is refused)
and takes effect from the next session; a no, or no approver, leaves the draft inactive.
There is no tool that deletes a skill, and no model-side way to answer that question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from oxydra.core.errors import PolicyError, ToolError
from oxydra.core.log import get_logger
from oxydra.core.tiers import SafetyTier
from oxydra.tools._context import ApprovalRequest, ToolExecutionContext
from oxydra.tools._decorator import FunctionTool, tool
from oxydra.tools.skills._discovery import DRAFTS, approve, load_skill
from oxydra.tools.skills._manifest import (
    NAME_RE,
    load_yaml,
    parse_manifest,
    split_front_matter,
)
from oxydra.tools.skills._registry import SkillRegistry

SkillName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
RelPath = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Description = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
_audit = get_logger("oxydra.audit")
APPROVAL = "skill_approve"
APPROVAL_WAIT_SECS = 300
OPERATOR_CHANNELS = frozenset({"tui"})


def skill_tools(registry: SkillRegistry, managed: Path | None) -> tuple[FunctionTool, ...]:
    """`skill_load` and `skill_read`; with a managed folder also `skill_create`/`skill_update`."""

    @tool(name="skill_load", timeout=10, safety_tier=SafetyTier.READ_ONLY)
    async def skill_load(ctx: ToolExecutionContext, name: SkillName) -> str:
        """Load the instructions of a skill listed under Active Skills.

        Args:
            name: The skill's name.
        """
        return registry.body(name)

    @tool(name="skill_read", timeout=10, safety_tier=SafetyTier.READ_ONLY)
    async def skill_read(ctx: ToolExecutionContext, name: SkillName, path: RelPath) -> str:
        """Read a file that belongs to a skill, such as references/api.md.

        Args:
            name: The skill's name.
            path: The file's path inside the skill, as skill_load lists it.
        """
        return registry.read(name, path)

    if managed is None:
        return (skill_load, skill_read)

    @tool(name="skill_create", timeout=APPROVAL_WAIT_SECS, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def skill_create(
        ctx: ToolExecutionContext, name: SkillName, description: Description, body: Body
    ) -> str:
        """Propose a new skill; it stays an inactive draft until the operator approves it.

        Args:
            name: 1-64 characters of a-z, 0-9 and '-'.
            description: One line: what the skill does and when to use it.
            body: The Markdown instructions.
        """
        if name in registry.loadable:
            raise ToolError(f"a skill named {name!r} exists; use skill_update to propose a change")
        saved = write_draft(managed, name, description, body, ctx.user_id)
        return await offer_approval(ctx, managed, name) or saved

    @tool(name="skill_update", timeout=APPROVAL_WAIT_SECS, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def skill_update(
        ctx: ToolExecutionContext, name: SkillName, description: Description, body: Body
    ) -> str:
        """Propose a new version of a skill; the current one stays until the operator approves.

        Args:
            name: The skill to change.
            description: One line: what the skill does and when to use it.
            body: The complete new Markdown instructions.
        """
        if name not in registry.loadable and not (managed / DRAFTS / name).is_dir():
            raise ToolError(f"no skill named {name!r}; use skill_create")
        saved = write_draft(managed, name, description, body, ctx.user_id)
        return await offer_approval(ctx, managed, name) or saved

    return (skill_load, skill_read, skill_create, skill_update)


async def offer_approval(ctx: ToolExecutionContext, managed: Path, name: str) -> str | None:
    """Ask the operator at their terminal to approve the draft just written (module docstring).

    Returns the tool's answer, or None when there is no one to ask (the draft stays).

    Raises:
        PolicyError: the draft changed between the question and the answer.
    """
    if ctx.approval is None or ctx.channel not in OPERATOR_CHANNELS:
        return None
    folder = managed / DRAFTS / name
    shown = load_skill(folder, "draft")
    request = ApprovalRequest(
        tool=APPROVAL,
        safety_tier=SafetyTier.PRIVILEGED,
        arguments={
            "name": name,
            "description": shown.manifest.description,
            "body": shown.body.strip(),
            "sha256": shown.sha256,
        },
        user_id=ctx.user_id,
        session_id=ctx.session_id,
        call_id=ctx.call_id,
        reason=f"activate skill {name!r}: it is listed in new sessions and its body is "
        "followed as operator text",
        taint_sources=tuple(str(s) for s in ctx.taint.sources) if ctx.taint else (),
    )
    attrs = {"audit": "skill_approval", "skill": name, "user": ctx.user_id}
    if not await ctx.approval(request):
        _audit.warning("skill draft declined", extra={"oxy": {**attrs, "outcome": "declined"}})
        return (
            f"The operator declined skill {name!r}; it stays an inactive draft "
            f"(oxydra skills approve {name} can still approve it)."
        )
    if load_skill(folder, "draft").sha256 != shown.sha256:
        raise PolicyError(f"skill draft {name!r} changed while it was shown; not approved")
    approve(managed.parent, name)
    _audit.warning("skill draft approved", extra={"oxy": {**attrs, "outcome": "approved"}})
    return f"The operator approved skill {name!r}; it is active from the next session."


def write_draft(managed: Path, name: str, description: str, body: str, user: str) -> str:
    """Write `.drafts/NAME/SKILL.md` (validated by parsing it back) and audit it."""
    import yaml

    if not NAME_RE.match(name):
        raise PolicyError(f"skill name {name!r} must be a-z, 0-9 and single '-' between parts")
    head = yaml.safe_dump(
        {
            "name": name,
            "description": " ".join(description.split()),
            "metadata": {"author": "agent"},
        },
        sort_keys=False,
        allow_unicode=True,
    )
    text = f"---\n{head}---\n\n{body.strip()}\n"
    origin = f"draft {name}"
    fm, _ = split_front_matter(text, origin)
    parse_manifest(load_yaml(fm, origin), origin)
    folder = managed / DRAFTS / name
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / "SKILL.md").write_text(text, encoding="utf-8")
    _audit.warning(
        "skill draft written", extra={"oxy": {"audit": "skill_draft", "skill": name, "user": user}}
    )
    return (
        f"Draft of skill {name!r} saved. It is inactive until the operator approves it "
        f"(oxydra skills approve {name}); it cannot be used in this session."
    )
