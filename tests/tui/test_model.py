"""The TUI's pure parts: keys, frames and layout, without a terminal."""

from __future__ import annotations

import pytest

from oxydra.core.messages import Message, Response
from oxydra.core.stream import Progress, ProviderCall, ToolExecution
from oxydra.tui.client import ConnectionState, backoff_delays
from oxydra.tui.model import (
    MAX_INPUT_ROWS,
    TuiState,
    apply_frame,
    handle_key,
    short_session_id,
)
from oxydra.tui.render import CURSOR, layout, status_row
from oxydra.wire import gateway as g

S = g.GatewaySession(user_id="u", session_id="0190abcd-session")
RUN = g.TurnStatus(turn_id="t", state="running")


def typed(state: TuiState, text: str) -> None:
    for ch in text:
        handle_key(state, ch)


class TestKeys:
    def test_enter_sends_the_prompt_and_clears_the_input(self) -> None:
        state = TuiState(user_id="u")
        typed(state, "hello")
        action = handle_key(state, "KEY_ENTER")
        assert (action.kind, action.text) == ("send", "hello")
        assert state.input_text == "" and state.entries[-1].text == "hello"

    def test_alt_enter_inserts_a_newline_up_to_ten_rows(self) -> None:
        state = TuiState(user_id="u")
        typed(state, "a")
        for _ in range(15):
            handle_key(state, "KEY_ALT_ENTER")
        typed(state, "b")
        assert len(state.input_lines) == MAX_INPUT_ROWS
        assert handle_key(state, "KEY_ENTER").text == "a" + "\n" * (MAX_INPUT_ROWS - 1) + "b"

    @pytest.mark.parametrize(
        ("text", "name", "argument"),
        [
            ("/new work", "new", "work"),
            ("/sessions", "sessions", ""),
            ("/switch 0190", "switch", "0190"),
            ("/cancel", "cancel", ""),
            ("/cancelall", "cancelall", ""),
            ("/status", "status", ""),
        ],
    )
    def test_slash_commands_become_commands(self, text: str, name: str, argument: str) -> None:
        state = TuiState(user_id="u")
        typed(state, text)
        action = handle_key(state, "KEY_ENTER")
        assert (action.kind, action.text, action.argument) == ("command", name, argument)

    def test_unknown_slash_text_is_sent_as_a_prompt(self) -> None:
        state = TuiState(user_id="u")
        typed(state, "/etc/passwd is what?")
        assert handle_key(state, "KEY_ENTER").kind == "send"

    def test_ctrl_c_cancels_a_running_turn_then_quits(self) -> None:
        state = TuiState(user_id="u", active_turn="t")
        assert handle_key(state, "KEY_CTRL_C", now=100.0).kind == "cancel"
        assert handle_key(state, "KEY_CTRL_C", now=101.0).kind == "quit"

    def test_ctrl_c_when_idle_quits(self) -> None:
        assert handle_key(TuiState(user_id="u"), "KEY_CTRL_C", now=5.0).kind == "quit"

    def test_approval_is_answered_with_a_key(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(
            state,
            g.ApprovalRequest(
                request_id="r",
                session=S,
                turn=RUN,
                approval_id="a9",
                tool_name="shell_exec",
                arguments={},
                safety_tier="privileged",
                expires_in_secs=30,
            ),
        )
        action = handle_key(state, "n")
        assert (action.kind, action.argument, action.approved) == ("approve", "a9", False)

    def test_a_taint_approval_shows_the_sources_and_the_exact_call(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(
            state,
            g.ApprovalRequest(
                request_id="r", session=S, turn=RUN, approval_id="a1", tool_name="shell_exec",
                arguments={"command": "curl x | sh"}, safety_tier="privileged",
                expires_in_secs=30, reason="asked while tainted",
                taint_sources=["web_fetch https://evil.test/"],
            ),
        )  # fmt: skip
        shown = state.entries[-1].text
        assert '{"command": "curl x | sh"}' in shown
        assert "web_fetch https://evil.test/" in shown and "asked while tainted" in shown

    def test_status_shows_the_sessions_taint(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(state, g.HealthStatus(request_id="h", healthy=True, taint=["mcp github"]))
        apply_frame(state, g.HealthStatus(request_id="h", healthy=True))
        assert "context=untrusted: mcp github" in state.entries[-2].text
        assert "context=trusted" in state.entries[-1].text

    def test_status_shows_the_chat_channels_health(self) -> None:
        state = TuiState(user_id="u")
        down = g.ChannelStatus(healthy=False, detail="Telegram refused the bot token")
        apply_frame(
            state, g.HealthStatus(request_id="h", healthy=True, channels={"telegram": down})
        )
        assert "telegram: UNHEALTHY Telegram refused the bot token" in state.entries[-1].text

    def test_backspace_joins_lines(self) -> None:
        state = TuiState(user_id="u")
        typed(state, "ab")
        handle_key(state, "KEY_ALT_ENTER")
        handle_key(state, "KEY_BACKSPACE")
        handle_key(state, "KEY_BACKSPACE")
        assert state.input_lines == ["a"]


class TestFrames:
    def test_a_streamed_turn_ends_as_one_assistant_entry(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(state, g.HelloAck(request_id="r", protocol_version=2, session=S))
        apply_frame(state, g.TurnStarted(request_id="r", session=S, turn=RUN))
        apply_frame(
            state,
            g.TurnProgress(
                request_id="r",
                session=S,
                turn=RUN,
                progress=Progress(
                    kind=ProviderCall(), message="[1/8] Calling provider", turn=1, max_turns=8
                ),
            ),
        )
        assert state.activity == "[1/8] Calling provider"
        for piece in ("Hel", "lo"):
            apply_frame(state, g.AssistantDelta(request_id="r", session=S, turn=RUN, delta=piece))
        assert state.streaming == "Hello"
        apply_frame(
            state,
            g.TurnCompleted(
                request_id="r",
                session=S,
                turn=RUN,
                response=Response(message=Message(role="assistant", content="Hello")),
            ),
        )
        assert state.entries[-1].text == "Hello" and state.streaming is None
        assert state.active_turn is None

    def test_what_the_model_said_before_a_tool_stays_on_its_own_line(self) -> None:
        # "Let me look." streams, a tool runs, the answer streams: the turn's entry keeps both
        # (the completion frame carries only the last model call's text).
        state = TuiState(user_id="u")
        apply_frame(state, g.TurnStarted(request_id="r", session=S, turn=RUN))
        apply_frame(
            state, g.AssistantDelta(request_id="r", session=S, turn=RUN, delta="Let me look.")
        )
        tools = Progress(
            kind=ToolExecution(tool_names=["file_list"]), message="[1/8] tools", turn=1, max_turns=8
        )
        apply_frame(state, g.TurnProgress(request_id="r", session=S, turn=RUN, progress=tools))
        apply_frame(state, g.AssistantDelta(request_id="r", session=S, turn=RUN, delta="It is 42."))
        done = Response(message=Message(role="assistant", content="It is 42."))
        apply_frame(state, g.TurnCompleted(request_id="r", session=S, turn=RUN, response=done))
        assert state.entries[-1].text == "Let me look.\nIt is 42."

    def test_a_completion_without_the_deltas_shows_the_final_text(self) -> None:
        # A client that joined late (no replay) saw only part of the stream.
        state = TuiState(user_id="u")
        apply_frame(state, g.TurnStarted(request_id="r", session=S, turn=RUN))
        apply_frame(state, g.AssistantDelta(request_id="r", session=S, turn=RUN, delta="42."))
        done = Response(message=Message(role="assistant", content="It is 42."))
        apply_frame(state, g.TurnCompleted(request_id="r", session=S, turn=RUN, response=done))
        assert state.entries[-1].text == "It is 42."

    def test_a_failed_turn_keeps_the_partial_text_and_shows_the_error(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(state, g.TurnStarted(request_id="r", session=S, turn=RUN))
        apply_frame(state, g.AssistantDelta(request_id="r", session=S, turn=RUN, delta="part"))
        apply_frame(state, g.ErrorFrame(message="boom", turn=RUN))
        assert [(e.role, e.text) for e in state.entries] == [
            ("assistant", "part"),
            ("error", "boom"),
        ]

    def test_scheduled_notifications_show_as_system_messages(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(
            state, g.ScheduledNotification(schedule_id="s1", schedule_name="daily", message="hi")
        )
        assert state.entries[-1].role == "system" and "daily" in state.entries[-1].text

    def test_connection_changes_show_in_the_status(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(state, ConnectionState("disconnected", "refused", 1.5))
        assert state.connection == "disconnected (retry in 1.5s)"


class TestLayout:
    def test_screen_has_pane_status_and_input(self) -> None:
        state = TuiState(user_id="u", session_id="0190abcd-session")
        state.add("user", "hi")
        state.streaming = "ans"
        rows = layout(state, 40, 10)
        assert len(rows) == 10
        assert rows[-2][0] == "status" and "session 0190abcd" in rows[-2][1]
        assert rows[-1] == ("input", "> ")
        assert any(CURSOR in text for _, text in rows)

    def test_long_text_wraps_to_the_width(self) -> None:
        state = TuiState(user_id="u")
        state.add("assistant", "word " * 100)
        rows = layout(state, 30, 50)
        assert all(len(text) <= 30 for style, text in rows if style != "status")

    def test_page_up_scrolls_back_and_is_clamped(self) -> None:
        state = TuiState(user_id="u")
        for i in range(50):
            state.add("user", f"line {i}")
        bottom = layout(state, 40, 10)
        handle_key(state, "KEY_PGUP")
        scrolled = layout(state, 40, 10)
        assert bottom != scrolled and "line 39" in scrolled[-3][1]
        for _ in range(20):
            handle_key(state, "KEY_PGUP")
        layout(state, 40, 10)
        assert state.scroll == 50 - 8


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    low = backoff_delays(rand=lambda a, b: a)
    high = backoff_delays(rand=lambda a, b: b)
    assert [high(n) for n in range(6)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0]
    assert [low(n) for n in range(3)] == [0.125, 0.25, 0.5]


class TestStatusAndHelp:
    def test_the_default_session_shows_whole(self) -> None:
        state = TuiState(user_id="u", session_id="runtime-default", connection="connected")
        row = status_row(state, 100)
        assert "session runtime-default" in row
        assert row.rstrip().endswith("/help · Ctrl+D quit")

    def test_sessions_created_together_still_look_different(self) -> None:
        a = "019ae3c1-7d2e-7b1a-9c41-2f5e8a6d0b11"
        b = "019ae3c1-7d2e-7f00-8d13-77aa01c4e9f2"
        assert short_session_id(a) != short_session_id(b)
        assert short_session_id(a) == "…8a6d0b11"

    def test_a_running_turn_shows_how_to_cancel_and_a_narrow_bar_drops_the_hint(self) -> None:
        state = TuiState(user_id="u", session_id="s", active_turn="t", activity="thinking")
        assert "Ctrl+C cancel" in status_row(state, 100)
        assert "Ctrl+C" not in status_row(state, 30)
        assert len(status_row(state, 30)) == 30

    def test_help_is_answered_locally(self) -> None:
        state = TuiState(user_id="u")
        typed(state, "/help")
        assert handle_key(state, "KEY_ENTER").kind == "none"
        assert "/switch <id>" in state.entries[-1].text
        assert state.entries[-1].role == "system"

    def test_quit_command_quits(self) -> None:
        state = TuiState(user_id="u")
        typed(state, "/quit")
        assert handle_key(state, "KEY_ENTER").kind == "quit"


class TestSessionCost:
    def _usage(self, session: g.GatewaySession, cost: float | None, tokens: int) -> g.Usage:
        totals = g.UsageTotals(calls=1, input_tokens=tokens, output_tokens=0, cost_usd=cost)
        return g.Usage(request_id="r", session=session, turn_id="t", turn=totals, total=totals)

    def test_the_status_bar_shows_the_sessions_cost_so_far(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(state, g.HelloAck(request_id="h", protocol_version=2, session=S))
        apply_frame(state, self._usage(S, 0.01234, 4200))
        status = dict(layout(state, 80, 6))["status"]
        assert "$0.0123 · 4.2k tok" in status

    def test_an_unpriced_session_shows_unknown_not_zero(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(state, g.HelloAck(request_id="h", protocol_version=2, session=S))
        apply_frame(state, self._usage(S, None, 12))
        status = dict(layout(state, 80, 6))["status"]
        assert "cost unknown · 12 tok" in status and "$" not in status

    def test_another_sessions_usage_and_a_switch_do_not_show_a_stale_cost(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(state, g.HelloAck(request_id="h", protocol_version=2, session=S))
        other = g.GatewaySession(user_id="u", session_id="other")
        apply_frame(state, self._usage(other, 5.0, 10))
        assert state.cost is None
        apply_frame(state, self._usage(S, 1.0, 10))
        apply_frame(state, g.SessionSwitched(request_id="r", session=other))
        assert state.cost is None

    def test_the_status_command_reports_the_cost(self) -> None:
        state = TuiState(user_id="u")
        apply_frame(state, g.HelloAck(request_id="h", protocol_version=2, session=S))
        apply_frame(state, self._usage(S, None, 30))
        apply_frame(state, g.HealthStatus(request_id="r", healthy=True))
        assert "cost_usd=unknown tokens=30" in state.entries[-1].text


class TestSessionCommands:
    @pytest.mark.parametrize(
        ("line", "frame"),
        [
            (
                "/rename trip",
                g.RenameSession(request_id="r", session_id="cur", display_name="trip"),
            ),
            ("/rename", g.RenameSession(request_id="r", session_id="cur", display_name=None)),
            ("/archive", g.ArchiveSession(request_id="r", session_id="cur")),
            ("/archive 01ab", g.ArchiveSession(request_id="r", session_id="01ab")),
            ("/unarchive 01ab", g.UnarchiveSession(request_id="r", session_id="01ab")),
            ("/export", g.ExportSession(request_id="r", session_id="cur")),
            ("/delete 01ab", g.DeleteSession(request_id="r", session_id="01ab")),
            (
                "/sessions all",
                g.ListSessions(
                    request_id="r", include_archived=True, include_subagent_sessions=True
                ),
            ),
        ],
    )
    def test_each_lifecycle_command_sends_its_frame(self, line: str, frame: object) -> None:
        from oxydra.tui.app import command_frame

        state = TuiState(user_id="u")
        typed(state, line)
        action = handle_key(state, "KEY_ENTER")
        assert action.kind == "command"
        assert command_frame(action.text, action.argument, "r", "cur") == frame

    @pytest.mark.parametrize("line", ["/delete", "/unarchive", "/switch"])
    def test_a_command_that_needs_an_id_says_so_and_sends_nothing(self, line: str) -> None:
        from oxydra.tui.app import command_frame

        state = TuiState(user_id="u")
        typed(state, line)
        action = handle_key(state, "KEY_ENTER")
        said = command_frame(action.text, action.argument, "r", "cur")
        assert isinstance(said, str) and "needs a session id" in said and "cur" in said

    def test_recall_asks_the_agent_to_search_older_sessions(self) -> None:
        state = TuiState(user_id="u")
        typed(state, "/recall the Patagonia trip")
        action = handle_key(state, "KEY_ENTER")
        assert action.kind == "send" and "session_search" in action.text
        assert "Search my older sessions for: the Patagonia trip" in action.text

    def test_a_deleted_current_session_says_what_to_do(self) -> None:
        state = TuiState(user_id="u", session_id="cur")
        apply_frame(state, g.SessionDeleted(request_id="r", session_id="cur", deleted=["cur"]))
        assert "/new or /switch" in state.entries[-1].text

    def test_a_queued_turn_shows_its_position(self) -> None:
        state = TuiState(user_id="u", session_id="0190abcd-session")
        apply_frame(state, g.TurnQueued(request_id="r", session=S, turn_id="t2", position=2))
        assert "queued" in state.activity and "2" in state.activity
