"""Who is told what after a scheduled run: the `[NOTIFY]` convention and failure notices.

Pure functions, table-tested; the executor performs what they return.

1. `always` notifies with the output of every successful run, `never` with none.
2. `conditional` appends an instruction to the goal; the run decides by starting its reply
   with `[NOTIFY]`, which is stripped from what is stored and sent. Leading whitespace
   before the marker is tolerated; the marker anywhere else does not count.
3. A run that did not succeed never sends its output. Instead, failure notices: one when
   the consecutive failure count reaches `notify_after_failures` (0 turns it off), and one
   when the schedule was disabled after `auto_disable_after_failures`. They are sent
   whatever the notification policy, since they are about the schedule itself.
4. A run cut short by a crash and not run again gets a notice listing the tool calls it had
   made, so the person can check what was half done.
"""

from __future__ import annotations

import msgspec

from oxydra.core.messages import ToolCall
from oxydra.scheduler.types import NotificationPolicy, RunStatus, ScheduleDefinition

NOTIFY_MARKER = "[NOTIFY]"
CONDITIONAL_SUFFIX = (
    "\n\n---\nThis is a scheduled run; the user is not watching. Decide whether its result "
    f"deserves their attention now. If it does, begin your reply with {NOTIFY_MARKER} "
    "followed by the message for them. If it does not, reply without that marker; the "
    "result is kept in the schedule's run history."
)
MAX_MESSAGE_CHARS = 4000
ERROR_EXCERPT_CHARS = 200
MAX_LISTED_CALLS = 10
CALL_ARGUMENT_CHARS = 120


def goal_prompt(schedule: ScheduleDefinition) -> str:
    """The prompt a run sends: the goal, plus the `[NOTIFY]` instruction when conditional."""
    if schedule.notification_policy == "conditional":
        return schedule.goal + CONDITIONAL_SUFFIX
    return schedule.goal


def result_notification(
    policy: NotificationPolicy, status: RunStatus, output: str
) -> tuple[bool, str]:
    """Whether to send a run's output, and the output to store and send (rules 1-2)."""
    if status != "success" or policy == "never":
        return False, output
    if policy == "always":
        return True, output
    stripped = output.lstrip()
    if stripped.startswith(NOTIFY_MARKER):
        return True, stripped[len(NOTIFY_MARKER) :].lstrip()
    return False, output


def failure_notice(
    schedule: ScheduleDefinition,
    status: RunStatus,
    error: str,
    *,
    notify_after_failures: int,
) -> str | None:
    """The notice a failed run calls for (rule 3); `schedule` is as it is after the run."""
    if status != "failed":
        return None
    label = schedule.name or schedule.schedule_id
    count = schedule.consecutive_failures
    excerpt = _excerpt(error)
    if schedule.status == "disabled":
        return (
            f"⛔ Scheduled task '{label}' was disabled after {count} consecutive failures. "
            f"Latest error: {excerpt} (re-enable it with schedule_edit status=active)"
        )
    if notify_after_failures and count == notify_after_failures:
        return (
            f"❌ Scheduled task '{label}' has failed {count} times in a row. "
            f"Latest error: {excerpt}"
        )
    return None


def message_text(output: str, run_id: str) -> str:
    """A notification's text: the output, cut with a pointer to the full run output."""
    if len(output) <= MAX_MESSAGE_CHARS:
        return output
    return (
        output[:MAX_MESSAGE_CHARS]
        + f"\n…(cut; the full output is in schedule_run_output run_id={run_id})"
    )


def _excerpt(error: str) -> str:
    text = " ".join(error.split())
    return text if len(text) <= ERROR_EXCERPT_CHARS else text[: ERROR_EXCERPT_CHARS - 1] + "…"


def interrupted_notice(schedule: ScheduleDefinition, calls: list[ToolCall]) -> str:
    """Why an interrupted run is not run again, and what it had done before it stopped.

    Calls are listed by name with their arguments cut short; a run that made none was not
    retried because it was itself a retry, or retrying is off.
    """
    name = schedule.name or schedule.schedule_id
    if not calls:
        return (
            f"⚠️ Scheduled task '{name}' was cut short when the agent stopped, before it "
            "called any tool. It was not run again; it runs at its next time."
        )
    done = "\n".join(f"- {_call_line(call)}" for call in calls[:MAX_LISTED_CALLS])
    more = len(calls) - MAX_LISTED_CALLS
    if more > 0:
        done += f"\n- ... and {more} more"
    return (
        f"⚠️ Scheduled task '{name}' was cut short when the agent stopped. It was not run "
        "again, since it had already done things that may not be safe to repeat:\n"
        f"{done}\nCheck the result; it runs at its next time."
    )


def _call_line(call: ToolCall) -> str:
    arguments = call.invalid_arguments or msgspec.json.encode(call.arguments).decode()
    if len(arguments) > CALL_ARGUMENT_CHARS:
        arguments = arguments[:CALL_ARGUMENT_CHARS] + "…"
    return f"{call.name} {arguments}"
