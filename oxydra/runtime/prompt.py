"""The system prompt: who the agent is, where its files are, and what the operator added.

Kept short on purpose: every byte is sent with every call. Order (the Rust version's, with
the persona added): identity, `SOUL.md` (persona), files, tiers, memory, scheduler, the
active skills' one-line index, extra sections, `USER.md` (facts about the person), then
`SYSTEM.md` (operator rules) last after a `---` separator. Persona and skill text is operator
text and goes in as written; untrusted content never reaches this function.
"""

from __future__ import annotations

from oxydra.config.persona import Persona
from oxydra.config.schema import AgentConfig

IDENTITY = (
    "You are Oxydra, an agent that gets things done for the user. Act, don't narrate: use "
    "tools when they help; answer concisely when done."
)
FILES = (
    "Files: /shared (persistent), /tmp (scratch), /vault (read-only; copy out with "
    "vault_copyto). Use these paths with the file tools; relative ones are under /shared."
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


def build_system_prompt(
    config: AgentConfig,
    *,
    shell_available: bool,
    extra: str | None = None,
    operator_text: str | None = None,
    persona: Persona | None = None,
    skills_index: str | None = None,
) -> str:
    """The system prompt for this configuration.

    `operator_text` is a SYSTEM.md text given directly; `persona` supplies SOUL, USER and
    (unless `operator_text` is given) SYSTEM; `skills_index` is the active skills' list.
    """
    persona = persona or Persona()
    parts = [config.runtime.system_prompt or IDENTITY]
    if persona.soul is not None:
        parts.append("## Persona\n" + persona.soul.text)
    if not config.runtime.system_prompt:
        parts.append(FILES)
        if not shell_available:
            parts.append("The shell tool is unavailable in this sandbox tier.")
        if config.memory.enabled:
            parts.append(MEMORY)
        if config.scheduler.enabled:
            parts.append(SCHEDULER)
    if skills_index:
        parts.append(skills_index)
    if extra:
        parts.append(extra)
    if persona.user is not None:
        parts.append("## About the user\n" + persona.user.text)
    if operator_text is None and persona.system is not None:
        operator_text = persona.system.text
    if operator_text:
        parts.append("---\n" + operator_text)
    return "\n\n".join(parts)
