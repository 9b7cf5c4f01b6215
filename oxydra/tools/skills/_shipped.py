"""The front matter of the shipped skills, as PyYAML's safe loader reads it, by SHA-256.

A server that has only the shipped skills then never imports PyYAML (about 0.9 MiB of
resident memory and 12 ms of imports). A front matter not listed here, or changed, is parsed
as before. `tests/tools/skills/test_shipped.py` fails when a shipped skill changes without
this table, and prints the entry to paste.
"""

from typing import Any

SHIPPED: dict[str, dict[str, Any]] = {
    "74a7469f8e33803aa0ab3212d98c96f6234acde17f9919696328d68da5d7a224": {
        "name": "skill-authoring",
        "description": (
            "Write or improve a skill (SKILL.md) when the user asks you to remember how to do"
            " a task."
        ),
        "activation": "auto",
        "requires": ["skill_create"],
        "priority": 200,
    },
}
