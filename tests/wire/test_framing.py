"""Length-prefixed framing, the bootstrap envelope and shell-daemon frames."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from oxydra.core.errors import WireError
from oxydra.core.tiers import SandboxTier
from oxydra.wire import envelope as env
from oxydra.wire import shell
from oxydra.wire.framing import FrameTooLargeError, LengthPrefixedDecoder, encode_length_prefixed

PAYLOADS = [b"", b"a", b'{"op":"x"}', bytes(range(256)) * 3]
STREAM = b"".join(encode_length_prefixed(p, 1024) for p in PAYLOADS)


class TestLengthPrefixed:
    @pytest.mark.parametrize("cut", range(len(STREAM) + 1))
    def test_any_split_of_the_stream_gives_the_same_frames(self, cut: int) -> None:
        decoder = LengthPrefixedDecoder(1024)
        frames = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])
        decoder.feed_eof()
        assert frames == PAYLOADS

    def test_byte_by_byte_feeding_works(self) -> None:
        decoder = LengthPrefixedDecoder(1024)
        frames = [f for i in range(len(STREAM)) for f in decoder.feed(STREAM[i : i + 1])]
        assert frames == PAYLOADS

    def test_an_oversized_header_is_refused_before_the_body(self) -> None:
        decoder = LengthPrefixedDecoder(10)
        with pytest.raises(FrameTooLargeError, match="11 bytes"):
            decoder.feed((11).to_bytes(4, "big"))

    def test_eof_inside_a_frame_is_an_error_and_between_frames_is_not(self) -> None:
        decoder = LengthPrefixedDecoder(100)
        decoder.feed(encode_length_prefixed(b"abc", 100))
        decoder.feed_eof()
        decoder.feed(encode_length_prefixed(b"abc", 100)[:5])
        with pytest.raises(WireError, match="middle of a frame"):
            decoder.feed_eof()

    def test_encoding_refuses_oversized_payloads(self) -> None:
        with pytest.raises(FrameTooLargeError):
            encode_length_prefixed(b"x" * 11, 10)


GOOD = env.BootstrapEnvelope(
    user_id="alice",
    sandbox_tier=SandboxTier.PROCESS,
    workspace_root="/srv/ws/alice",
    gateway_token="tok",
    credential_env=["OPENAI_API_KEY"],
    startup_status=env.StartupStatus(
        sandbox_tier=SandboxTier.PROCESS,
        sidecar_available=False,
        shell_available=False,
        browser_available=False,
        degraded_reasons=[env.DegradedReason(code="insecure_process_tier", detail="process")],
    ),
)


class TestEnvelope:
    def test_round_trip_through_a_frame(self) -> None:
        assert env.decode_envelope_frame(env.encode_envelope(GOOD)) == GOOD

    def test_raw_json_form_is_accepted_as_in_a_bootstrap_file(self) -> None:
        assert env.decode_envelope_json(msgspec.json.encode(GOOD)) == GOOD

    @pytest.mark.parametrize(
        ("mutate", "needle"),
        [
            ({"user_id": " "}, "user_id is empty"),
            ({"workspace_root": "relative/path"}, "not absolute"),
            ({"version": 9}, "version 9"),
            ({"sandbox_tier": "container"}, "differs from sandbox_tier"),
        ],
    )
    def test_inconsistent_envelopes_are_refused(self, mutate: dict[str, Any], needle: str) -> None:
        doc = msgspec.to_builtins(GOOD) | mutate
        with pytest.raises(WireError, match=needle):
            env.decode_envelope_json(msgspec.json.encode(doc))

    @pytest.mark.parametrize(
        ("data", "needle"),
        [
            (b"{", "truncated"),
            (b"{]", "malformed"),
            (b'{"user_id":"a"}', "missing required field"),
            (b'{"user_id":"a","sandbox_tier":"cloud","workspace_root":"/x"}', "Invalid enum"),
            (
                b'{"user_id":"a","sandbox_tier":"process","workspace_root":"/x","evil":1}',
                "unknown field",
            ),
            (b"x" * (env.MAX_ENVELOPE_BYTES + 1), "exceeds"),
        ],
    )
    def test_malformed_envelopes_fail_fast_with_the_reason(self, data: bytes, needle: str) -> None:
        with pytest.raises(WireError, match=needle):
            env.decode_envelope_json(data)

    def test_shell_without_sidecar_endpoint_is_refused(self) -> None:
        status = env.StartupStatus(
            sandbox_tier=SandboxTier.PROCESS,
            sidecar_available=True,
            shell_available=True,
            browser_available=False,
        )
        bad = msgspec.structs.replace(GOOD, startup_status=status)
        with pytest.raises(WireError, match="no sidecar_endpoint"):
            env.encode_envelope(bad)

    def test_a_process_guest_may_run_its_own_shell_without_a_sidecar(self) -> None:
        status = env.StartupStatus(
            sandbox_tier=SandboxTier.PROCESS,
            sidecar_available=False,
            shell_available=True,
            browser_available=False,
            hardening=["landlock", "no_new_privs", "rlimits"],
        )
        ok = msgspec.structs.replace(GOOD, startup_status=status)
        assert env.decode_envelope_frame(env.encode_envelope(ok)) == ok

    def test_a_container_guest_needs_a_sidecar_for_its_shell(self) -> None:
        status = env.StartupStatus(
            sandbox_tier=SandboxTier.CONTAINER,
            sidecar_available=False,
            shell_available=True,
            browser_available=False,
        )
        bad = msgspec.structs.replace(
            GOOD, sandbox_tier=SandboxTier.CONTAINER, startup_status=status
        )
        with pytest.raises(WireError, match="without a sidecar"):
            env.encode_envelope(bad)

    def test_truncated_frame_is_refused(self) -> None:
        with pytest.raises(WireError):
            env.decode_envelope_frame(env.encode_envelope(GOOD)[:-3])


REQUESTS: list[Any] = [
    shell.SpawnSession(request_id="1", cwd="/shared", env={"A": "b"}),
    shell.ExecCommand(request_id="2", session_id="s", command="ls", timeout_secs=5),
    shell.StreamOutput(request_id="3", session_id="s", max_bytes=100, wait_ms=50),
    shell.KillSession(request_id="4", session_id="s"),
]
RESPONSES: list[Any] = [
    shell.SessionSpawned(request_id="1", session_id="s"),
    shell.CommandAccepted(request_id="2", accepted=True),
    shell.OutputChunk(
        request_id="3", session_id="s", stream="stdout", data="hi", eof=True, exit_code=3
    ),
    shell.SessionKilled(request_id="4", killed=True),
    shell.ShellError(request_id="5", message="nope"),
]


class TestShellFrames:
    @pytest.mark.parametrize("frame", REQUESTS, ids=lambda f: f.TYPE)
    def test_requests_round_trip(self, frame: Any) -> None:
        assert shell.decode_shell_request(shell.encode_shell_frame(frame)) == frame

    @pytest.mark.parametrize("frame", RESPONSES, ids=lambda f: f.TYPE)
    def test_responses_round_trip(self, frame: Any) -> None:
        assert shell.decode_shell_response(shell.encode_shell_frame(frame)) == frame

    def test_rust_style_chunk_without_exit_code_parses(self) -> None:
        frame = shell.decode_shell_response(
            b'{"op":"stream_output","payload":{"request_id":"r","session_id":"s",'
            b'"stream":"stderr","data":"","eof":true}}'
        )
        assert isinstance(frame, shell.OutputChunk) and frame.exit_code is None

    @pytest.mark.parametrize(
        "data", [b"{}", b'{"op":"format_disk","payload":{}}', b'{"op":"exec_command"}']
    )
    def test_bad_requests_raise_frame_error(self, data: bytes) -> None:
        with pytest.raises(shell.FrameError):
            shell.decode_shell_request(data)
