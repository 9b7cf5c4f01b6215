"""The `[NOTIFY]` convention and failure notices, as pure decisions."""

from __future__ import annotations

import pytest

from oxydra.scheduler._notify import (
    CONDITIONAL_SUFFIX,
    MAX_MESSAGE_CHARS,
    failure_notice,
    goal_prompt,
    message_text,
    result_notification,
)
from oxydra.scheduler.types import Interval, ScheduleDefinition


def schedule(**fields: object) -> ScheduleDefinition:
    base: dict[str, object] = {
        "schedule_id": "s1",
        "user_id": "u",
        "name": "backup",
        "goal": "Back up the notes.",
        "cadence": Interval(every_secs=600),
        "created_at": "",
        "updated_at": "",
    }
    return ScheduleDefinition(**{**base, **fields})  # type: ignore[arg-type]


class TestResults:
    @pytest.mark.parametrize(
        ("policy", "status", "output", "expected"),
        [
            ("always", "success", "done", (True, "done")),
            ("never", "success", "done", (False, "done")),
            ("always", "failed", "Error: x", (False, "Error: x")),
            ("conditional", "success", "[NOTIFY]\nNew mail.", (True, "New mail.")),
            ("conditional", "success", "\n [NOTIFY] New mail.", (True, "New mail.")),
            ("conditional", "success", "No news. [NOTIFY]", (False, "No news. [NOTIFY]")),
            ("conditional", "failed", "[NOTIFY] x", (False, "[NOTIFY] x")),
            ("conditional", "interrupted", "", (False, "")),
        ],
    )
    def test_who_is_told(
        self, policy: str, status: str, output: str, expected: tuple[bool, str]
    ) -> None:
        assert result_notification(policy, status, output) == expected  # type: ignore[arg-type]

    def test_only_conditional_goals_get_the_instruction(self) -> None:
        assert goal_prompt(schedule()) == "Back up the notes."
        conditional = goal_prompt(schedule(notification_policy="conditional"))
        assert conditional == "Back up the notes." + CONDITIONAL_SUFFIX
        assert "[NOTIFY]" in CONDITIONAL_SUFFIX

    def test_long_outputs_are_cut_with_a_pointer_to_the_full_text(self) -> None:
        assert message_text("short", "r1") == "short"
        long = message_text("x" * (MAX_MESSAGE_CHARS + 1), "r1")
        assert long.startswith("x" * MAX_MESSAGE_CHARS) and "run_id=r1" in long


class TestFailureNotices:
    @pytest.mark.parametrize(
        ("failures", "status", "kind"),
        [(1, "active", None), (2, "active", "❌"), (3, "active", None), (5, "disabled", "⛔")],
    )
    def test_notices_at_the_threshold_and_on_disable(
        self, failures: int, status: str, kind: str | None
    ) -> None:
        after = schedule(consecutive_failures=failures, status=status)
        notice = failure_notice(after, "failed", "Error: boom", notify_after_failures=2)
        assert (notice[0] if notice else None) == kind
        if notice:
            assert "'backup'" in notice and "Error: boom" in notice

    def test_no_notice_for_other_outcomes_or_when_turned_off(self) -> None:
        after = schedule(consecutive_failures=3)
        assert failure_notice(after, "interrupted", "x", notify_after_failures=3) is None
        assert failure_notice(after, "failed", "x", notify_after_failures=0) is None

    def test_the_error_is_cut_and_a_nameless_schedule_is_named_by_id(self) -> None:
        after = schedule(name=None, consecutive_failures=3)
        notice = failure_notice(after, "failed", "e" * 1000, notify_after_failures=3)
        assert notice is not None and "'s1'" in notice and "e" * 200 not in notice
