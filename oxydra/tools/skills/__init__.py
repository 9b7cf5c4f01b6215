"""Skills: SKILL.md folders found in layered sources, listed in the prompt by name, loaded
on demand through the registry; model-written skills are drafts until the operator approves."""

from oxydra.tools.skills._discovery import (
    Flags,
    Skill,
    Source,
    approve,
    discover,
    in_force,
    load_skill,
    read_approvals,
    skill_sources,
)
from oxydra.tools.skills._manifest import Manifest, SkillError, parse_manifest
from oxydra.tools.skills._registry import (
    INDEX_BUDGET,
    SIDECAR_SKILLS,
    ShellView,
    SkillRegistry,
    local_view,
    sidecar_view,
)
from oxydra.tools.skills._tools import APPROVAL, offer_approval, skill_tools, write_draft

__all__ = [
    "APPROVAL",
    "Flags",
    "INDEX_BUDGET",
    "Manifest",
    "SIDECAR_SKILLS",
    "ShellView",
    "Skill",
    "SkillError",
    "SkillRegistry",
    "Source",
    "approve",
    "discover",
    "in_force",
    "load_skill",
    "local_view",
    "offer_approval",
    "parse_manifest",
    "read_approvals",
    "sidecar_view",
    "skill_sources",
    "skill_tools",
    "write_draft",
]
