"""Progressive disclosure: a bounded index in the prompt, bodies and files only through the
registry, activation that can only narrow what a session has."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from oxydra.core.errors import OxydraError
from oxydra.tools.skills import (
    INDEX_BUDGET,
    SkillRegistry,
    approve,
    discover,
    local_view,
    sidecar_view,
)
from oxydra.tools.skills._discovery import Source

DATA = Path(__file__).resolve().parents[2] / "data" / "skills"


def many(tmp: Path, count: int, description_chars: int = 60) -> list[Source]:
    root = tmp / "skills"
    for i in range(count):
        folder = root / f"skill-{i:03d}"
        folder.mkdir(parents=True)
        text = f"Does task {i} " + "x" * description_chars
        (folder / "SKILL.md").write_text(
            f"---\nname: skill-{i:03d}\ndescription: {text}\n---\nSecret body {i}\n"
        )
    return [Source(label=str(root), root=str(root))]


class TestIndex:
    def test_fifty_skills_fit_the_budget_and_no_body_is_listed(self, tmp_path: Path) -> None:
        registry = SkillRegistry(discover(many(tmp_path, 50)), tools=["skill_create"])
        index = registry.index()
        assert len(index.encode()) <= INDEX_BUDGET
        assert "Secret body" not in index
        assert index.startswith("## Active Skills")
        assert all(f"- skill-{i:03d}: Does task {i}" in index for i in range(50)), "every name"

    def test_overflow_is_counted_not_dropped_silently(self, tmp_path: Path) -> None:
        registry = SkillRegistry(discover(many(tmp_path, 200, 300)))
        index = registry.index()
        assert len(index.encode()) <= INDEX_BUDGET
        assert "more (skill_load lists every name)" in index

    def test_long_descriptions_are_cut_to_one_line(self, tmp_path: Path) -> None:
        registry = SkillRegistry(discover(many(tmp_path, 1, 2000)), index_budget=10_000)
        line = registry.index().splitlines()[-1]
        assert len(line) < 200 and line.endswith("...")


def rust_sources(tmp: Path) -> list[Source]:
    root = tmp / "skills"
    shutil.copytree(DATA / "rust", root)
    return [Source(label=str(root), root=str(root))]


class TestActivation:
    def test_auto_needs_its_tools_and_env_and_manual_is_never_listed(self, tmp_path: Path) -> None:
        found = discover(rust_sources(tmp_path))
        bare = SkillRegistry(found, tools=[], environ={})
        assert "browser-automation" not in bare.active
        ready = SkillRegistry(found, tools=["shell_exec"], environ={"PINCHTAB_URL": "http://x"})
        assert "browser-automation" in ready.active
        assert "release-notes" not in ready.active and "release-notes" in ready.loadable
        assert "release-notes" not in ready.index()

    def test_allowed_tools_never_grant_a_tool(self, tmp_path: Path) -> None:
        root = tmp_path / "skills"
        shutil.copytree(DATA / "agentskills", root)
        registry = SkillRegistry(discover([Source(label="t", root=str(root))]), tools=["file_read"])
        assert registry.tools == {"file_read"}
        assert "Not available in this session: Bash(python:*), Read." in registry.body("pdf-forms")

    def test_placeholders_become_shell_variables_not_values(self, tmp_path: Path) -> None:
        found = discover(rust_sources(tmp_path))
        env = {"PINCHTAB_URL": "http://secret-host:9867"}
        body = SkillRegistry(found, tools=["shell_exec"], environ=env).body("browser-automation")
        assert "$PINCHTAB_URL/navigate" in body and "secret-host" not in body


class TestRead:
    @pytest.fixture
    def registry(self, tmp_path: Path) -> SkillRegistry:
        return SkillRegistry(
            discover(rust_sources(tmp_path)), tools=["shell_exec"], environ={"PINCHTAB_URL": "u"}
        )

    def test_a_listed_file_is_read(self, registry: SkillRegistry) -> None:
        assert "Endpoint list" in registry.read("browser-automation", "references/pinchtab-api.md")

    @pytest.mark.parametrize(
        "path",
        [
            "../release-notes.md",
            "/etc/passwd",
            "references/../../release-notes.md",
            "references",
            "",
        ],
    )
    def test_anything_else_is_refused(self, registry: SkillRegistry, path: str) -> None:
        with pytest.raises(OxydraError, match="is not a file of skill"):
            registry.read("browser-automation", path)

    def test_an_unknown_skill_names_the_known_ones(self, registry: SkillRegistry) -> None:
        with pytest.raises(OxydraError, match="available: browser-automation"):
            registry.body("nope")

    def test_a_builtin_skill_is_read_from_package_data(self, registry: SkillRegistry) -> None:
        assert "skill_create" in registry.read("skill-authoring", "SKILL.md")


def test_a_file_swapped_for_a_symlink_after_discovery_is_not_followed(tmp_path: Path) -> None:
    sources = rust_sources(tmp_path)
    registry = SkillRegistry(discover(sources), tools=["shell_exec"], environ={"PINCHTAB_URL": "u"})
    ref = tmp_path / "skills" / "BrowserAutomation" / "references" / "pinchtab-api.md"
    ref.unlink()
    ref.symlink_to("/etc/passwd")
    with pytest.raises(OxydraError):
        registry.read("browser-automation", "references/pinchtab-api.md")


class TestShellView:
    """Where `skill_load` tells the model its shell finds a skill's scripts."""

    def skills(self, tmp: Path) -> tuple[Path, list[Source]]:
        ws = tmp / "ws"
        folder = ws / "skills" / "greeter"
        (folder / "scripts").mkdir(parents=True)
        (folder / "SKILL.md").write_text("---\nname: greeter\ndescription: Greets.\n---\nHi.\n")
        (folder / "scripts" / "hello.sh").write_text("echo hi\n")
        approve(ws, "greeter")
        return ws, [Source(label="managed", root=str(ws / "skills"), managed=True)]

    def test_the_container_sidecar_sees_managed_skills_under_skills(self, tmp_path: Path) -> None:
        ws, sources = self.skills(tmp_path)
        registry = SkillRegistry(discover(sources, workspace=ws), shell_view=sidecar_view)
        assert "at /skills/greeter: run a script by its full path, e.g. " in registry.body(
            "greeter"
        )
        assert "/skills/greeter/scripts/hello.sh" in registry.body("greeter")

    def test_a_local_shell_sees_the_host_folder_and_no_shell_sees_nothing(
        self, tmp_path: Path
    ) -> None:
        ws, sources = self.skills(tmp_path)
        local = SkillRegistry(discover(sources, workspace=ws), shell_view=local_view)
        assert f"{ws / 'skills' / 'greeter' / 'scripts' / 'hello.sh'}" in local.body("greeter")
        assert local.folders() == [str(ws / "skills" / "greeter")]
        none = SkillRegistry(discover(sources, workspace=ws))
        assert "shell_exec" not in none.body("greeter")
