"""The parsed copy of the built-in skills (`builtin.json`, rule 7 of skills discovery)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import msgspec
import pytest

from oxydra.tools.skills import _discovery as discovery


def test_the_shipped_copy_equals_reading_the_folders() -> None:
    read = discovery._scan(discovery.builtin_root(), "builtin", {}, managed=False)
    assert read, "no built-in skill found"
    assert discovery.builtin_skills() == read, (
        "oxydra/tools/skills/builtin.json is stale: run `python -c 'from "
        "oxydra.tools.skills._discovery import write_builtin_cache; write_builtin_cache()'`"
    )
    path = resources.files("oxydra.tools.skills").joinpath(discovery.BUILTIN_CACHE)
    shipped = msgspec.json.decode(path.read_bytes(), type=list[discovery.Skill])
    assert shipped == read


def test_a_changed_folder_is_read_not_taken_from_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = Path(str(resources.files("oxydra.tools.skills")))
    copy = tmp_path / "skills"
    shutil.copytree(package / "builtin", copy / "builtin")
    shutil.copy(package / discovery.BUILTIN_CACHE, copy / discovery.BUILTIN_CACHE)
    manifest = copy / "builtin" / "skill-authoring" / "SKILL.md"
    manifest.write_text(manifest.read_text().replace("description: ", "description: Changed. ", 1))
    monkeypatch.setattr(discovery, "files", lambda _package: copy)
    (skill,) = discovery.builtin_skills()
    assert skill.manifest.description.startswith("Changed. ")


def test_a_start_with_the_copy_current_does_not_import_yaml() -> None:
    code = (
        "import sys; from oxydra.tools.skills._discovery import discover; discover([]); "
        "print('yaml' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
