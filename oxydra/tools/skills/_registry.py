"""The skills of one session: which are active, the prompt's index, and guarded reads.

Theory of operation:
1. Activation (the Rust rules): `always` is active; `manual` is never listed but can be
   loaded by name; `auto` is active when every `requires` tool is registered and every
   `env` variable is set.
2. The system prompt carries only an index: each active skill's name and a one-line
   description (cut to `MAX_LINE` characters, or shorter so that every name fits), sorted
   by priority then name, within `index_budget` bytes in total; what does not fit is
   counted, not dropped silently.
3. Bodies and files are handed out only through the registry, by skill name and a path that
   must be one of the skill's hashed files; disk reads go through a read-only jail on the
   skill's folder. A managed (approved) skill is re-hashed at each use, so a file changed
   after the session started is refused rather than served.
4. `allowed-tools` and `requires` only narrow: nothing here registers a tool or skips an
   approval, and `skill_load` names which of a skill's tools this session lacks.
5. `{{VAR}}` in a body becomes `$VAR`, so the value is expanded by the shell inside the
   sandbox and never enters the prompt or a provider's logs.
6. Skills are found again as each session starts (`refresh`): an approved, installed or
   removed skill takes effect from the next session, like an operator's persona edit. The
   skill tools serve what the latest session start found.
7. A skill's folder (not a draft's, not a built-in one inside the archive) is readable but
   not writable by `shell_exec`, so its scripts run in the sandbox from where they were
   hashed: a local shell gets a Landlock read-only rule per folder (`folders`); the container
   tier's shell sidecar sees the user's managed skills read-only at `SIDECAR_SKILLS`.
   `skill_load` tells the model the path its shell sees (`shell_view`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from oxydra.core.errors import PolicyError, ToolError
from oxydra.security import Mount, Workspace
from oxydra.tools.skills._discovery import Skill, builtin_root, in_force, load_skill

MAX_LINE = 160
MIN_LINE = 24
INDEX_BUDGET = 2048
MAX_READ = 256 * 1024
_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]{0,63})\}\}")
INDEX_HEADER = "## Active Skills\nBefore one of these tasks, call skill_load(name)."
SIDECAR_SKILLS = "/skills"
ShellView = Callable[[Skill], str | None]


def local_view(skill: Skill) -> str | None:
    """Rule 7, local shell: a skill's own host folder (None for built-in and bare files)."""
    return str(Path(skill.location).parent) if skill.source != "builtin" and skill.files else None


def sidecar_view(skill: Skill) -> str | None:
    """Rule 7, container tier: a managed skill's folder as the shell sidecar mounts it."""
    if skill.source != "managed" or not skill.files:
        return None
    return f"{SIDECAR_SKILLS}/{Path(skill.location).parent.name}"


class SkillRegistry:
    """The skills in force for a session.

    Args:
        skills: everything discovery found, in precedence order.
        tools: names of the tools registered for this session.
        environ: the environment `env` requirements are checked against.
        index_budget: the most bytes the prompt index may take.
        shell_view: where the session's shell sees a skill's folder, if it does (rule 7).
    """

    def __init__(
        self,
        skills: list[Skill],
        *,
        tools: Collection[str] = (),
        environ: Mapping[str, str] | None = None,
        index_budget: int = INDEX_BUDGET,
        shell_view: ShellView | None = None,
    ) -> None:
        self.index_budget = index_budget
        self.shell_view = shell_view
        self.refresh(skills, tools=tools, environ=environ)

    def refresh(
        self,
        skills: list[Skill],
        *,
        tools: Collection[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Rule 6: take a new discovery's skills and the session's tools."""
        env = os.environ if environ is None else environ
        self.found = skills
        self.tools = frozenset(tools)
        self.loadable = in_force(skills)
        self.active = {n: s for n, s in self.loadable.items() if self._activates(s, env)}

    def folders(self) -> list[str]:
        """Rule 7: the host folders of the loadable skills that have one on disk."""
        return [f for f in map(local_view, self.loadable.values()) if f is not None]

    def _activates(self, skill: Skill, env: Mapping[str, str]) -> bool:
        match skill.manifest.activation:
            case "always":
                return True
            case "manual":
                return False
            case "auto":
                has_tools = set(skill.manifest.requires) <= self.tools
                return has_tools and all(v in env for v in skill.manifest.env)

    def index(self) -> str:
        """Rule 2: the bounded list for the system prompt ('' when nothing is active).

        Every name is listed when it fits: descriptions share what the budget leaves (but
        never less than `MIN_LINE` characters each); past that, the rest are counted.
        """
        if not self.active:
            return ""
        ordered = sorted(self.active.values(), key=lambda s: (s.manifest.priority, s.name))
        used = len(INDEX_HEADER.encode())
        share = (self.index_budget - used) // len(ordered) - 1
        lines = [INDEX_HEADER]
        for count, skill in enumerate(ordered):
            room = max(MIN_LINE, min(MAX_LINE, share - len(skill.name) - 4))
            line = f"- {skill.name}: {_one_line(skill.manifest.description, room)}"
            more = f"- ...and {len(ordered) - count} more (skill_load lists every name)"
            reserve = len(more.encode()) + 1 if count < len(ordered) - 1 else 0
            if used + len(line.encode()) + 1 + reserve > self.index_budget:
                lines.append(more)
                break
            lines.append(line)
            used += len(line.encode()) + 1
        return "\n".join(lines)

    def get(self, name: str) -> Skill:
        """A loadable skill by name, re-checked (rule 3)."""
        skill = self.loadable.get(name)
        if skill is None:
            known = ", ".join(sorted(self.loadable)) or "none"
            raise ToolError(f"no skill named {name!r}; available: {known}")
        if skill.source == "managed":
            entry = Path(skill.location)
            current = load_skill(entry.parent if entry.name == "SKILL.md" else entry, "managed")
            if current.sha256 != skill.sha256:
                raise PolicyError(f"skill {name!r} changed since it was approved; not loaded")
        return skill

    def body(self, name: str) -> str:
        """Rules 4 and 5: the instructions of a skill, for `skill_load`."""
        skill = self.get(name)
        text = _PLACEHOLDER.sub(r"$\1", skill.body.strip())
        notes = []
        wanted = set(skill.manifest.allowed_tools) | set(skill.manifest.requires)
        missing = sorted(t for t in wanted if _base_tool(t) not in self.tools)
        if missing:
            notes.append(f"Not available in this session: {', '.join(missing)}.")
        if skill.files:
            notes.append("Files (read with skill_read): " + ", ".join(skill.files))
        folder = self.shell_view(skill) if self.shell_view is not None else None
        if folder is not None and skill.flags.scripts:
            notes.append(
                f"shell_exec can read and run (not change) this skill's folder at {folder}: "
                f"run a script by its full path, e.g. {folder}/{skill.flags.scripts[0]}."
            )
        return "\n\n".join([f"# Skill: {skill.name}", text, *notes])

    def read(self, name: str, path: str) -> str:
        """Rule 3: one file of a skill's folder, by its relative path."""
        skill = self.get(name)
        rel = path.strip().removeprefix("./")
        if rel not in skill.files:
            raise PolicyError(
                f"{path!r} is not a file of skill {name!r}; it has: " + ", ".join(skill.files)
            )
        if skill.source == "builtin":
            data = builtin_root().joinpath(skill.location.split(":", 1)[1], *rel.split("/"))
            raw = data.read_bytes()[:MAX_READ]
            return raw.decode("utf-8", errors="replace")
        folder = str(Path(skill.location).parent)
        jail = Workspace([Mount(virtual="/skill", host=folder, writable=False)])
        text, cut = jail.read_text(f"/skill/{rel}", max_bytes=MAX_READ)
        return text + (f"\n...[file is larger than {MAX_READ} bytes]" if cut else "")


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _base_tool(spec: str) -> str:
    """`Bash(git:*)` → `Bash`: an Agent Skills tool pattern names its tool first."""
    return spec.split("(", 1)[0]
