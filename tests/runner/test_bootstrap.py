"""The envelope and environment a guest is handed, and how they reach it."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import msgspec
import pytest

from oxydra.core.errors import RunnerError, WireError
from oxydra.core.tiers import SandboxTier
from oxydra.runner._bootstrap import (
    LaunchSpec,
    build_envelope,
    check_provider_key,
    credential_names,
    generate_token,
    guest_environment,
    load_guest_config,
    startup_status,
    write_bootstrap_file,
    write_token,
)
from oxydra.runner._config import load_context
from oxydra.runner._hardening import HardeningPlan
from oxydra.runner._process import _deliver, _spawn
from oxydra.runner._workspace import provision
from oxydra.wire.envelope import decode_envelope_json, encode_envelope

KEY = "sk-live-abcdefghijklmnopqrstuvwxyz0123456789"


def make_spec(tmp_path: Path, environ: dict[str, str], **ctx_kw: object) -> LaunchSpec:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(exist_ok=True)
    cwd.mkdir(exist_ok=True)
    ctx = load_context(cwd=cwd, home=home, insecure=True, **ctx_kw)  # type: ignore[arg-type]
    workspace = provision(ctx.user_root, ctx.user.mounts)
    return LaunchSpec(ctx, workspace, generate_token(), environ, cwd, home)


@pytest.fixture
def spec(tmp_path: Path) -> LaunchSpec:
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "OPENAI_API_KEY": KEY,
        "OXYDRA__RUNTIME__MAX_TURNS": "7",
        "OXYDRA_BOOTSTRAP_FILE": "/stale/file",
        "AWS_SECRET_ACCESS_KEY": "not-for-the-guest",
        "UNRELATED": "x",
    }
    return make_spec(tmp_path, environ, env=["EXTRA=1"])


def envelope_for(spec: LaunchSpec) -> tuple[msgspec.Struct, list[str]]:
    config = load_guest_config(spec)
    names = credential_names(config, spec.guest_environ)
    status = startup_status(SandboxTier.PROCESS, shell=True, sidecar=False, degraded=[])
    return build_envelope(spec, status, names), names


class TestCredentialsByReference:
    def test_the_envelope_names_the_variable_and_never_holds_the_value(
        self, spec: LaunchSpec
    ) -> None:
        envelope, names = envelope_for(spec)
        assert names == ["OPENAI_API_KEY"]
        assert envelope.credential_env == ["OPENAI_API_KEY"]  # type: ignore[attr-defined]
        assert KEY.encode() not in encode_envelope(envelope)  # type: ignore[arg-type]

    def test_the_guest_environment_is_filtered(self, spec: LaunchSpec) -> None:
        env = guest_environment(spec, ["OPENAI_API_KEY"])
        assert env["OPENAI_API_KEY"] == KEY
        assert env["OXYDRA__RUNTIME__MAX_TURNS"] == "7"
        assert env["EXTRA"] == "1"
        assert env["TZ"] == "UTC"
        assert env["TMPDIR"] == str(spec.workspace.tmp)
        for absent in ("AWS_SECRET_ACCESS_KEY", "UNRELATED", "OXYDRA_BOOTSTRAP_FILE"):
            assert absent not in env

    def test_no_key_stops_before_launch_naming_what_to_set(self, tmp_path: Path) -> None:
        spec = make_spec(tmp_path, {"PATH": "/bin"})
        with pytest.raises(RunnerError) as info:
            check_provider_key(load_guest_config(spec), spec.guest_environ)
        for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "API_KEY"):
            assert name in str(info.value)

    def test_an_invalid_guest_config_is_reported_before_launch(self, tmp_path: Path) -> None:
        spec = make_spec(tmp_path, {"OXYDRA__RUNTIME__MAX_TURNS": "many"})
        with pytest.raises(RunnerError, match="agent config is invalid"):
            load_guest_config(spec)


class TestDelivery:
    def test_the_bootstrap_file_is_read_only_and_decodes_to_the_envelope(
        self, spec: LaunchSpec
    ) -> None:
        envelope, _ = envelope_for(spec)
        path = write_bootstrap_file(spec.workspace, envelope)  # type: ignore[arg-type]
        assert path == spec.workspace.ipc / "bootstrap" / "runner_bootstrap.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
        assert decode_envelope_json(path.read_bytes()) == envelope
        write_bootstrap_file(spec.workspace, envelope)  # a relaunch replaces it

    def test_an_inconsistent_envelope_is_never_written(self, spec: LaunchSpec) -> None:
        status = startup_status(SandboxTier.CONTAINER, shell=True, sidecar=True, degraded=[])
        envelope = build_envelope(spec, status, [])
        with pytest.raises(WireError, match="sidecar_endpoint"):
            write_bootstrap_file(spec.workspace, envelope)

    def test_the_token_file_is_private(self, spec: LaunchSpec) -> None:
        write_token(spec.workspace, spec.token)
        path = spec.workspace.gateway_token_file
        assert path.read_text() == spec.token + "\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_a_process_guest_reads_one_length_prefixed_frame_on_stdin(
        self, spec: LaunchSpec
    ) -> None:
        envelope, _ = envelope_for(spec)
        out = spec.workspace.tmp / "received.json"
        code = (
            "import sys, msgspec; from oxydra.wire.envelope import decode_envelope_frame;"
            f"e = decode_envelope_frame(sys.stdin.buffer.read());"
            f"open({str(out)!r}, 'wb').write(msgspec.json.encode(e))"
        )
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        guest = _spawn(spec, [sys.executable, "-c", code], env, HardeningPlan())
        _deliver(guest, encode_envelope(envelope), spec)  # type: ignore[arg-type]
        assert guest.wait(30) == 0
        received = json.loads(out.read_text())
        assert received["gateway_token"] == spec.token
        assert received["workspace_root"] == str(spec.workspace.root)
        assert received["credential_env"] == ["OPENAI_API_KEY"]


class TestChannels:
    USER = """
[[people]]
id = "alice"
telegram = ["111"]

[channels.telegram]
enabled = true
bot_token_env = "BOT_TOKEN"
api_base_url = "http://127.0.0.1:9"

[[channels.telegram.senders]]
platform_ids = ["222"]
display_name = "Bob"
"""

    def _spec(self, tmp_path: Path, user: str) -> LaunchSpec:
        root = tmp_path / "conf"
        (root / "users").mkdir(parents=True)
        (root / "runner.toml").write_text('[users.alice]\nconfig_path = "users/alice.toml"\n')
        (root / "users" / "alice.toml").write_text(user)
        environ = {"PATH": "/bin", "OPENAI_API_KEY": KEY, "BOT_TOKEN": "1:secret-bot"}
        return make_spec(tmp_path, environ, config=str(root / "runner.toml"), user="alice")

    def test_channels_and_people_reach_the_guest_and_the_token_only_by_environment(
        self, tmp_path: Path
    ) -> None:
        from oxydra.app.channels import user_config

        spec = self._spec(tmp_path, self.USER)
        envelope, names = envelope_for(spec)
        data = encode_envelope(envelope)  # type: ignore[arg-type]
        assert b"1:secret-bot" not in data
        assert guest_environment(spec, names)["BOT_TOKEN"] == "1:secret-bot"
        received = user_config(decode_envelope_json(data[4:]), None)  # after the length prefix
        assert received is not None and received.channels == spec.ctx.user.channels
        assert received.people == spec.ctx.user.people

    def test_one_telegram_id_for_two_people_stops_the_runner_naming_both(
        self, tmp_path: Path
    ) -> None:
        user = self.USER.replace('platform_ids = ["222"]', 'platform_ids = ["111"]')
        with pytest.raises(RunnerError) as caught:
            self._spec(tmp_path, user)
        assert "alice.toml" in str(caught.value)
        assert "people[0].telegram (alice) and channels.telegram.senders[0]" in str(caught.value)
