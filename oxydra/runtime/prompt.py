"""The system prompt: who the agent is, where its files are, and what the operator added.

Kept short on purpose: every byte is sent with every call. `SYSTEM.md` (first found in
`./.oxydra/`, `~/.config/oxydra/`, `/etc/oxydra/`) is appended after a `---` separator.
"""

from __future__ import annotations

from pathlib import Path

from oxydra.config.schema import AgentConfig

IDENTITY = (
    "You are Oxydra, an agent that gets things done for the user. Act, don't narrate: use "
    "your tools when they help, and answer concisely when you are done."
)
FILES = (
    "Files: /shared (read-write, persistent), /tmp (read-write, scratch), /vault (read-only; "
    "copy out with vault_copyto). Use these virtual paths with the file tools."
)
MEMORY = (
    "Memory: memory_search finds notes and earlier conversation; save durable facts about "
    "the user with memory_save, fix them with memory_update. Older parts of long sessions are "
    "summarised; their full text stays searchable."
)
SCHEDULER = (
    "Scheduling: schedule_create runs a goal later or repeatedly (cron, interval, once); "
    "schedule_search/edit/delete manage them. With notification 'conditional', start the "
    "reply of a scheduled run with [NOTIFY] only when the user should be told."
)


def find_system_md(
    cwd: Path | None = None, home: Path | None = None, system_dir: Path = Path("/etc/oxydra")
) -> str | None:
    """The operator's SYSTEM.md text, if one exists."""
    for directory in (
        (cwd or Path.cwd()) / ".oxydra",
        (home or Path.home()) / ".config" / "oxydra",
        system_dir,
    ):
        path = directory / "SYSTEM.md"
        if path.is_file():
            return path.read_text(encoding="utf-8", errors="replace").strip()
    return None


def build_system_prompt(
    config: AgentConfig,
    *,
    shell_available: bool,
    extra: str | None = None,
    operator_text: str | None = None,
) -> str:
    """The system prompt for this configuration."""
    if config.runtime.system_prompt:
        parts = [config.runtime.system_prompt]
    else:
        parts = [IDENTITY, FILES]
        if not shell_available:
            parts.append("The shell tool is unavailable in this sandbox tier.")
        if config.memory.enabled:
            parts.append(MEMORY)
        if config.scheduler.enabled:
            parts.append(SCHEDULER)
    if extra:
        parts.append(extra)
    if operator_text:
        parts.append("---\n" + operator_text)
    return "\n\n".join(parts)
