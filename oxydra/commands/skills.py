"""`oxydra skills list|show|check|approve`: the operator's view of every skill and its gate."""

from __future__ import annotations

import argparse

from oxydra.config.workspace import resolve_workspace
from oxydra.tools.skills import Skill, SkillRegistry, approve, discover, skill_sources


def run_skills(args: argparse.Namespace) -> int:
    """Dispatch one `skills` action."""
    workspace = resolve_workspace(args.user or "default", args.workspace)
    if args.action == "approve":
        if not args.name:
            print("usage: oxydra skills approve NAME")
            return 2
        skill = approve(workspace, args.name)
        print(f"approved {skill.name} sha256 {skill.sha256}")
        return 0
    found = discover(skill_sources(workspace), workspace=workspace)
    match args.action:
        case "list":
            print(render_list(found), end="")
            return 0
        case "show":
            return _show(found, args.name)
        case _:
            return _check(found)


def render_list(found: list[Skill]) -> str:
    """One line per copy found: name, status, source, short hash and review flags."""
    registry = SkillRegistry(found)
    lines = []
    for skill in found:
        status: str = skill.status
        if status == "active" and registry.loadable.get(skill.name) is not skill:
            status = "shadowed"
        lines.append(
            f"{skill.name}  {status}  {skill.source}  {skill.sha256[:12]}  {_flags(skill)}"
        )
    return "\n".join(lines) + "\n" if lines else "no skills found\n"


def _flags(skill: Skill) -> str:
    flags = []
    if skill.flags.scripts:
        flags.append(f"scripts={len(skill.flags.scripts)}")
    if skill.flags.network:
        flags.append("network")
    if skill.flags.env_vars:
        flags.append("env=" + ",".join(skill.flags.env_vars))
    return " ".join(flags) or "-"


def _show(found: list[Skill], name: str | None) -> int:
    copies = [s for s in found if s.name == name]
    if not copies:
        print(f"no skill named {name!r}")
        return 1
    for skill in copies:
        m = skill.manifest
        print(f"{skill.name} ({skill.status}{': ' + skill.reason if skill.reason else ''})")
        print(f"  source {skill.source}\n  file {skill.location}\n  sha256 {skill.sha256}")
        print(f"  activation {m.activation}  priority {m.priority}")
        print(f"  requires {' '.join(m.requires) or '-'}")
        print(f"  allowed-tools {' '.join(m.allowed_tools) or '-'}")
        print(f"  flags {_flags(skill)}")
        for file in skill.files:
            print(f"  file: {file}")
        for warning in skill.warnings:
            print(f"  warning: {warning}")
        print(f"  description: {m.description}\n")
        print(skill.body.rstrip() + "\n")
    return 0


def _check(found: list[Skill]) -> int:
    problems = 0
    for skill in found:
        for warning in skill.warnings:
            print(f"warning: {warning}")
        if skill.status in ("invalid", "changed"):
            print(f"error: {skill.name} ({skill.source}): {skill.reason}")
            problems += 1
        elif skill.status in ("draft", "unapproved"):
            print(f"pending: {skill.name} awaits `oxydra skills approve {skill.name}`")
    print(f"{len(found)} skill(s), {problems} problem(s)")
    return 1 if problems else 0
