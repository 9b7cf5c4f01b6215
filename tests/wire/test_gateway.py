"""Gateway frames: every frame round-trips; every malformed frame is a clear FrameError."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from oxydra.core.messages import Message, Response, UsageUpdate
from oxydra.core.stream import Progress, ToolExecution
from oxydra.wire import gateway as g

S = g.GatewaySession(user_id="alice", session_id="s1")
T = g.TurnStatus(turn_id="t1", state="running")

CLIENT_FRAMES: list[Any] = [
    g.Hello(request_id="r", protocol_version=2, user_id="alice", session_id="s1", last_seq=4),
    g.SendTurn(
        request_id="r",
        session_id="s1",
        turn_id="t1",
        prompt="hi",
        attachments=[g.Attachment(mime_type="image/png", data=b"\x89PNG")],
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ),
    g.CancelActiveTurn(request_id="r", session_id="s1", turn_id="t1"),
    g.CancelAllActiveTurns(request_id="r"),
    g.HealthCheck(request_id="r"),
    g.CreateSession(request_id="r", display_name="work", agent_name="coder"),
    g.ListSessions(request_id="r", include_archived=True),
    g.SwitchSession(request_id="r", session_id="s1"),
    g.ApprovalResponse(request_id="r", approval_id="a1", approved=False, reason="no"),
    g.RenameSession(request_id="r", session_id="s1", display_name="plans"),
    g.ArchiveSession(request_id="r", session_id="s1"),
    g.UnarchiveSession(request_id="r", session_id="s1"),
    g.DeleteSession(request_id="r", session_id="s1"),
    g.ExportSession(request_id="r", session_id="s1", format="jsonl"),
]
SERVER_FRAMES: list[Any] = [
    g.HelloAck(request_id="r", protocol_version=2, session=S, active_turn=T, seq=3),
    g.TurnStarted(request_id="r", session=S, turn=T, seq=1),
    g.AssistantDelta(request_id="r", session=S, turn=T, delta="he", seq=2),
    g.TurnProgress(
        request_id="r",
        session=S,
        turn=T,
        seq=3,
        progress=Progress(kind=ToolExecution(tool_names=["a"]), message="m", turn=1, max_turns=5),
    ),
    g.TurnCompleted(
        request_id="r",
        session=S,
        turn=g.TurnStatus(turn_id="t1", state="completed"),
        response=Response(
            message=Message(role="assistant", content="hello"),
            finish_reason="stop",
            usage=UsageUpdate(total_tokens=9),
        ),
    ),
    g.TurnCancelled(request_id="r", session=S, turn=g.TurnStatus(turn_id="t1", state="cancelled")),
    g.ErrorFrame(message="boom", request_id="r", session=S, turn=T, code="turn_limit"),
    g.HealthStatus(request_id="r", healthy=True, message="tui gateway ready"),
    g.ScheduledNotification(schedule_id="sch", schedule_name="daily", message="done"),
    g.SessionCreated(request_id="r", session=S, agent_name="default", display_name="x"),
    g.SessionList(
        request_id="r",
        sessions=[
            g.SessionSummary(
                session_id="s1",
                agent_name="default",
                channel_origin="tui",
                created_at="2026-01-01 00:00:00",
                last_active_at="2026-01-02 00:00:00",
                archived=False,
            )
        ],
    ),
    g.SessionSwitched(request_id="r", session=S),
    g.SessionUpdated(
        request_id="r",
        action="renamed",
        session=g.SessionSummary(
            session_id="s1",
            agent_name="default",
            channel_origin="cli",
            created_at="2026-01-01",
            last_active_at="2026-01-02",
            archived=False,
            parent_session_id="p",
            turns=3,
            cost_usd=0.25,
        ),
    ),
    g.SessionDeleted(request_id="r", session_id="s1", deleted=["c1", "s1"], seq=9),
    g.TurnQueued(request_id="r", session=S, turn_id="t2", position=2, seq=4),
    g.SessionExport(request_id="r", session_id="s1", format="markdown", content="# Session"),
    g.MediaAttachment(
        request_id="r",
        session=S,
        attachment=g.MediaFile(file_path="/shared/a.png", media_type="photo", data=b"img"),
    ),
    g.ApprovalRequest(
        request_id="r",
        session=S,
        turn=T,
        approval_id="a1",
        tool_name="shell_exec",
        arguments={"command": "ls"},
        safety_tier="privileged",
        expires_in_secs=300,
    ),
    g.Usage(
        request_id="r",
        session=S,
        turn_id="t1",
        turn=g.UsageTotals(calls=1, input_tokens=10, output_tokens=2, cost_usd=None),
        total=g.UsageTotals(calls=3, input_tokens=30, output_tokens=6, cost_usd=0.25),
        seq=4,
    ),
]


class TestRoundTrips:
    @pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=lambda f: f.TYPE)
    def test_client_frames_round_trip(self, frame: Any) -> None:
        assert g.decode_client_frame(g.encode_frame(frame)) == frame

    @pytest.mark.parametrize("frame", SERVER_FRAMES, ids=lambda f: f.TYPE)
    def test_server_frames_round_trip(self, frame: Any) -> None:
        assert g.decode_server_frame(g.encode_frame(frame)) == frame

    def test_every_frame_type_is_covered(self) -> None:
        assert {f.TYPE for f in CLIENT_FRAMES} == set(g.CLIENT_TYPES)
        assert {f.TYPE for f in SERVER_FRAMES} == set(g.SERVER_TYPES)


class TestCompatibility:
    def test_a_rust_style_hello_without_optional_fields_parses(self) -> None:
        frame = g.decode_client_frame(
            b'{"type":"hello","payload":{"request_id":"1","protocol_version":2,"user_id":"u"}}'
        )
        assert isinstance(frame, g.Hello) and frame.create_new_session is False
        assert frame.session_id is None and frame.last_seq is None

    def test_unknown_payload_fields_from_newer_peers_are_ignored(self) -> None:
        frame = g.decode_client_frame(
            b'{"type":"health_check","payload":{"request_id":"1","future":true}}'
        )
        assert frame == g.HealthCheck(request_id="1")

    def test_progress_keeps_the_nested_kind_object(self) -> None:
        doc = msgspec.json.decode(g.encode_frame(SERVER_FRAMES[3]))
        assert doc["payload"]["progress"]["kind"] == {"kind": "tool_execution", "tool_names": ["a"]}

    def test_fields_the_rust_client_requires_are_always_sent(self) -> None:
        doc = msgspec.json.decode(g.encode_frame(g.HealthStatus(request_id="r", healthy=True)))
        assert doc["payload"]["healthy"] is True
        doc = msgspec.json.decode(g.encode_frame(SERVER_FRAMES[10]))
        assert doc["payload"]["sessions"][0]["archived"] is False

    def test_attachment_bytes_travel_as_base64(self) -> None:
        doc = msgspec.json.decode(g.encode_frame(CLIENT_FRAMES[1]))
        assert doc["payload"]["attachments"][0]["data"] == "iVBORw=="


class TestMalformed:
    @pytest.mark.parametrize(
        ("data", "needle", "request_id"),
        [
            (b"not json", "not a {type, payload} JSON object", None),
            (b"[1,2]", "not a {type, payload} JSON object", None),
            (b'{"payload":{}}', "missing required field `type`", None),
            (b'{"type":"hello","payload":{},"extra":1}', "unknown field", None),
            (
                b'{"type":"teleport","payload":{"request_id":"q"}}',
                "unknown client frame type 'teleport'",
                "q",
            ),
            (
                b'{"type":"send_turn","payload":{"request_id":"q","session_id":"s"}}',
                "invalid send_turn frame: Object missing required field `turn_id`",
                "q",
            ),
            (
                b'{"type":"hello","payload":{"request_id":"q","protocol_version":"two","user_id":"u"}}',
                "Expected `int`, got `str`",
                "q",
            ),
            (b'{"type":"hello","payload":"nope"}', "invalid hello frame", None),
            (
                b'{"type":"turn_started","payload":{"request_id":"q"}}',
                "unknown client frame type",
                "q",
            ),
            ("\udcff".encode("utf-8", "surrogatepass"), "not a {type, payload}", None),
        ],
    )
    def test_bad_frames_raise_frame_error_with_the_problem(
        self, data: bytes, needle: str, request_id: str | None
    ) -> None:
        with pytest.raises(g.FrameError) as info:
            g.decode_client_frame(data)
        assert needle in str(info.value)
        assert info.value.request_id == request_id
