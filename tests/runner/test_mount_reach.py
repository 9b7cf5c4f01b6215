"""A `[mounts]` entry that would let the model's tools reach what later runs or steers us.

The archive (`oxydra.pyz`) unpacks its native packages into `~/.cache/oxydra/pyz`, and the
next start loads the `.so` files and compiled modules found there, outside any sandbox. A
user who mounts `~` as the workspace's `shared` folder hands that directory to the shell
(the container sidecar's `/shared`, a micro-VM share): a steered model could plant code
there. The same holds
for the compiled WASM guest cache, and for the workspace's own `ipc/` (gateway token,
sockets) and `.oxydra/` (memory database). Such a config is refused before anything starts,
naming the file, the key and what it would reach.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from oxydra.config.runner_schema import Mounts
from oxydra.core.cachedirs import pyz_cache_root
from oxydra.core.errors import RunnerError
from oxydra.runner._workspace import provision
from tests.runner.support import ROOT, make_sandbox, provider_env

NO_LLM = provider_env("http://127.0.0.1:9/v1")  # the guest would start; no call is made


def _configure(home: Path, mounts: str) -> Path:
    users = home / ".oxydra" / "users"
    users.mkdir(parents=True)
    (home / ".oxydra" / "runner.toml").write_text(
        'default_tier = "process"\n[users.default]\nconfig_path = "users/default.toml"\n'
    )
    user_file = users / "default.toml"
    user_file.write_text(f"[mounts]\n{mounts}\n")
    return user_file


def test_a_mount_of_home_is_refused_before_the_guest_starts(tmp_path: Path) -> None:
    box = make_sandbox(tmp_path, **NO_LLM)
    user_file = _configure(box.home, 'shared = "~"')
    (box.home / ".cache" / "oxydra" / "pyz").mkdir(parents=True)
    out = box.runner("--insecure", "start")
    try:
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"{user_file}: [mounts] shared" in out.stderr
        assert str(box.home / ".cache" / "oxydra" / "pyz") in out.stderr
        assert "runtime_pid" not in out.stdout
        assert not box.workspace().exists()  # refused before anything was created
    finally:
        if out.returncode == 0:
            box.runner("stop")


def test_an_unpack_dir_moved_into_a_mount_is_refused(tmp_path: Path) -> None:
    """`OXYDRA_PYZ_CACHE` pointed inside the folder the tools change."""
    box = make_sandbox(tmp_path, **NO_LLM)
    data = tmp_path / "data"
    _configure(box.home, f'tmp = "{data}"')
    out = box.runner("--insecure", "start", OXYDRA_PYZ_CACHE=str(data / "pyz"))
    try:
        assert out.returncode == 1, out.stdout + out.stderr
        assert "[mounts] tmp" in out.stderr and "OXYDRA_PYZ_CACHE" in out.stderr
    finally:
        if out.returncode == 0:
            box.runner("stop")


def _refused(tmp_path: Path, mounts: Mounts, environ: dict[str, str]) -> str:
    with pytest.raises(RunnerError) as caught:
        provision(
            tmp_path / "ws" / "alice",
            mounts,
            source="users/alice.toml",
            environ=environ,
            home=tmp_path / "home",
        )
    return str(caught.value)


@pytest.mark.parametrize(
    ("mounts", "reaches"),
    [
        (Mounts(shared="/"), "pyz"),  # holds everything
        (Mounts(tmp="{home}/.cache"), "pyz"),
        (Mounts(vault="{home}/.cache/oxydra/pyz/build/numpy"), "pyz"),  # inside the cache
        (Mounts(shared="{home}/.cache/oxydra/wasm"), "wasm"),
        (Mounts(shared="."), "ipc"),  # the workspace itself: gateway token, memory db
        (Mounts(vault="ipc"), "ipc"),
        (Mounts(tmp=".oxydra/cache"), ".oxydra"),
        (Mounts(shared="{home}/.config"), ".config/oxydra"),  # agent.toml lives there
    ],
)
def test_mounts_that_reach_a_protected_place_are_refused(
    tmp_path: Path, mounts: Mounts, reaches: str
) -> None:
    home = tmp_path / "home"
    (home / ".config" / "oxydra").mkdir(parents=True)
    filled = Mounts(**{k: v.format(home=home) for k, v in _set(mounts).items()})
    message = _refused(tmp_path, filled, {"HOME": str(home)})
    assert "users/alice.toml: [mounts]" in message and reaches in message
    assert not (tmp_path / "ws").exists()


def test_a_symlink_to_home_is_seen_through(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "link").symlink_to(home)
    message = _refused(tmp_path, Mounts(shared=str(tmp_path / "link")), {"HOME": str(home)})
    assert "[mounts] shared" in message and str(home / ".cache" / "oxydra" / "pyz") in message


def test_xdg_cache_home_is_where_the_caches_are(tmp_path: Path) -> None:
    cache = tmp_path / "xdg"
    env = {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(cache)}
    assert str(cache / "oxydra" / "pyz") in _refused(tmp_path, Mounts(tmp=str(cache)), env)


def test_ordinary_mounts_are_still_honoured(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".cache" / "oxydra" / "pyz").mkdir(parents=True)
    outside = tmp_path / "data" / "shared"
    ws = provision(
        tmp_path / "ws" / "alice",
        Mounts(shared=str(outside), tmp="scratch", vault=str(home / "notes")),
        source="users/alice.toml",
        environ={"HOME": str(home)},
        home=home,
    )
    assert ws.shared == outside.resolve() and ws.tmp == ws.root / "scratch"
    assert os.path.isdir(home / "notes")


def _set(mounts: Mounts) -> dict[str, str]:
    return {k: v for k in ("shared", "tmp", "vault") if (v := getattr(mounts, k))}


@pytest.mark.parametrize(
    "env",
    [
        {"HOME": "/h"},
        {"HOME": "/h", "XDG_CACHE_HOME": "/x"},
        {"HOME": "/h", "XDG_CACHE_HOME": "/x", "OXYDRA_PYZ_CACHE": "/p"},
    ],
)
def test_the_checked_unpack_dir_is_the_one_the_archive_uses(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bootstrap (`oxydra.py`) runs before the package is importable, so it keeps its
    own copy of the rule: the two must name the same directory."""
    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "oxydra.py")
    assert spec is not None and spec.loader is not None
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    for name in ("HOME", "XDG_CACHE_HOME", "OXYDRA_PYZ_CACHE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert bootstrap._cache_root() == str(pyz_cache_root(env))
