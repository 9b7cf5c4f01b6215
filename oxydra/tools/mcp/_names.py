"""Tool names every provider accepts: `<server>__<tool>`, `[A-Za-z0-9_-]`, at most 64 chars.

OpenAI and Anthropic accept `^[a-zA-Z0-9_-]{1,64}$`; Gemini also wants the first character to be
a letter or underscore. A name that had to change (characters replaced, or cut with a hash
suffix so two long names stay distinct) keeps a stable spelling across restarts because the
suffix is derived from the original name only.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 64
SEPARATOR = "__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sanitize(part: str) -> str:
    """`part` with every character outside `[A-Za-z0-9_-]` replaced by `_`."""
    return _UNSAFE.sub("_", part)


def server_prefix(server: str) -> str:
    """How every registered name of `server`'s tools starts (`<server>__`, provider-safe)."""
    prefix = f"{sanitize(server)}{SEPARATOR}"
    return prefix if prefix[0].isalpha() or prefix[0] == "_" else f"m{prefix}"


def tool_name(server: str, tool: str) -> str:
    """The registered name of `tool` from `server`, bounded and provider-safe."""
    name = f"{server_prefix(server)}{sanitize(tool)}"
    if len(name) <= MAX_NAME and name == f"{server}{SEPARATOR}{tool}":
        return name
    digest = hashlib.sha1(f"{server}\0{tool}".encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"
