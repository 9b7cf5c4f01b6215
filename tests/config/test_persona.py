"""Persona files: found per file across the layers, later wins, capped, hashed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from oxydra.config.persona import PERSONA_FILES, load_persona, persona_dirs
from oxydra.core.errors import ConfigError
from oxydra.security.jail import PERSONA_NAMES


def layers(tmp: Path) -> dict[str, Path]:
    names = ["etc", "xdg", "home", "cwd", "ws"]
    dirs = persona_dirs(tmp / "ws", cwd=tmp / "c", home=tmp / "h", system_dir=tmp / "etc")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dict(zip(names, dirs, strict=True))


def load(tmp: Path, **kw: object) -> object:
    return load_persona(tmp / "ws", cwd=tmp / "c", home=tmp / "h", system_dir=tmp / "etc", **kw)  # type: ignore[arg-type]


def test_each_file_has_its_own_precedence_and_later_layers_win(tmp_path: Path) -> None:
    d = layers(tmp_path)
    (d["etc"] / "SOUL.md").write_text("etc soul")
    (d["xdg"] / "SOUL.md").write_text("xdg soul")
    (d["etc"] / "SYSTEM.md").write_text("etc rules")
    (d["ws"] / "USER.md").write_text("likes tea")
    persona = load(tmp_path)
    assert persona.soul.text == "xdg soul"  # type: ignore[attr-defined]
    assert persona.soul.shadowed == (str(d["etc"] / "SOUL.md"),)  # type: ignore[attr-defined]
    assert persona.system.text == "etc rules"  # type: ignore[attr-defined]
    assert persona.user.path == str(d["ws"] / "USER.md")  # type: ignore[attr-defined]
    assert persona.user.sha256 == hashlib.sha256(b"likes tea").hexdigest()  # type: ignore[attr-defined]


def test_the_workspace_layer_beats_every_config_layer(tmp_path: Path) -> None:
    d = layers(tmp_path)
    for name in ("etc", "xdg", "home", "cwd", "ws"):
        (d[name] / "SOUL.md").write_text(name)
    assert load(tmp_path).soul.text == "ws"  # type: ignore[attr-defined]


def test_a_file_over_budget_is_cut_with_a_visible_marker(tmp_path: Path) -> None:
    d = layers(tmp_path)
    (d["etc"] / "SOUL.md").write_text("é" * 100)
    soul = load(tmp_path, budget=51).soul  # type: ignore[attr-defined]
    assert soul.truncated and soul.size == 200
    assert soul.text.startswith("é" * 25) and "[truncated: 200 bytes, budget 51]" in soul.text


def test_a_missing_soul_file_of_an_agent_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="soul_file"):
        load_persona(soul_file=tmp_path / "nope.md", cwd=tmp_path, home=tmp_path)


def test_the_jail_guards_every_persona_name() -> None:
    assert {n.casefold() for n in PERSONA_FILES} == PERSONA_NAMES


def test_a_layer_the_agent_can_write_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = tmp_path / "ws"
    cwd = ws / "shared" / "project"  # the operator ran oxydra from inside the agent's files
    (cwd / ".oxydra").mkdir(parents=True)
    (cwd / ".oxydra" / "SOUL.md").write_text("planted by the agent")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "SOUL.md").write_text("the operator's")
    persona = load_persona(ws, cwd=cwd, home=tmp_path / "h", system_dir=tmp_path / "etc")
    assert persona.soul is not None and persona.soul.text == "the operator's"
    assert "the agent can write there" in caplog.text


def test_a_layer_beside_an_agent_writable_one_is_kept(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for name in ("shared", "tmp"):
        (ws / name).mkdir(parents=True)
    cwd = ws / "shared-not"  # a name that only starts like `shared`
    (cwd / ".oxydra").mkdir(parents=True)
    (cwd / ".oxydra" / "SOUL.md").write_text("the operator's")
    persona = load_persona(ws, cwd=cwd, home=tmp_path / "h", system_dir=tmp_path / "etc")
    assert persona.soul is not None and persona.soul.text == "the operator's"


def test_a_layer_made_after_a_session_started_is_read_by_the_next(tmp_path: Path) -> None:
    assert load(tmp_path).soul is None  # type: ignore[attr-defined]
    (tmp_path / "c" / ".oxydra").mkdir(parents=True)
    (tmp_path / "c" / ".oxydra" / "SOUL.md").write_text("new")
    assert load(tmp_path).soul.text == "new"  # type: ignore[attr-defined]
