"""`oxydra ask "question"`: one turn from the command line, the scripting entry point.

The answer streams to stdout, progress to stderr (`--json`: one JSON event per line on
stdout instead, the last a `timing` record of where the process spent its time, per phase:
`oxydra._phases`; `python -m bench phases` summarises it). Without `--session` each ask
starts a new session (`--name` names it); `--session ID` (or a unique prefix) continues one
of the person's sessions, and an id that names none is refused, never silently created. The
session id is printed to stderr at the end. Exit codes: 0 answered, 3 a budget or limit
stopped the turn, 4 the provider failed, 5 the answer was cut off at the model's output
limit (`finish_reason: length`; what arrived is printed), 130 cancelled (Ctrl+C), 2 bad
configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import Any, NoReturn

import msgspec

from oxydra import _phases as phases
from oxydra.core.ids import new_session_id
from oxydra.core.stream import Progress, StreamItem, Text, ToolExecution
from oxydra.core.terminal import TerminalStream, terminal_safe
from oxydra.runtime import TurnOutcome, TurnRequest

EXIT = {"completed": 0, "provider_error": 4, "cancelled": 130}
EXIT_CUT_OFF = 5
CUT_OFF = (
    "oxydra ask: the answer was cut off at the model's output limit (finish_reason: length); "
    "raise [runtime] max_output_tokens or ask for a shorter answer"
)
_json = msgspec.json.Encoder()


class _Printer:
    """Streams items to the terminal or as JSON lines.

    Text from the model call after a tool round starts on a new line, so "Let me look." and
    the answer that follows the tool do not run together.
    """

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.ended_with_newline = True
        self.tools_ran = False
        self._text = TerminalStream()  # model text never reaches the terminal raw

    async def __call__(self, item: StreamItem) -> None:
        if self.as_json:
            sys.stdout.write(_json.encode(item).decode() + "\n")
            sys.stdout.flush()
        elif isinstance(item, Text):
            shown = self._text.feed(item.text)
            if not shown:
                return
            if self.tools_ran and not self.ended_with_newline:
                sys.stdout.write("\n")
            self.tools_ran = False
            sys.stdout.write(shown)
            sys.stdout.flush()
            self.ended_with_newline = shown.endswith("\n")
        elif isinstance(item, Progress):
            self.tools_ran = self.tools_ran or isinstance(item.kind, ToolExecution)
            if sys.stderr.isatty():
                sys.stderr.write(f"\x1b[2m{terminal_safe(item.message)}\x1b[0m\n")

    def finish(self, outcome: TurnOutcome, session_id: str) -> None:
        if self.as_json:
            doc: dict[str, Any] = {
                "type": "outcome",
                "session_id": session_id,
                "reason": outcome.reason,
                "detail": outcome.detail,
                "cut_off": cut_off(outcome),
                "spend": msgspec.to_builtins(outcome.spend),
            }
            sys.stdout.write(_json.encode(doc).decode() + "\n")
            return
        rest = self._text.flush()
        if rest:
            sys.stdout.write(rest)
            self.ended_with_newline = rest.endswith("\n")
        if not self.ended_with_newline:
            sys.stdout.write("\n")
        sys.stdout.flush()  # the answer's end before the stderr lines, also into one pipe
        if not outcome.ok:
            detail = terminal_safe(outcome.detail)
            print(f"oxydra ask: turn stopped ({outcome.reason}): {detail}", file=sys.stderr)
        elif cut_off(outcome):
            print(CUT_OFF, file=sys.stderr)
        print(f"session: {session_id}", file=sys.stderr)


def default_user(explicit: str | None) -> str:
    """`--user`, else the single user of runner.toml, else `default`."""
    if explicit:
        return explicit
    from oxydra.config.loader import load_toml_struct
    from oxydra.config.runner_schema import RunnerConfig
    from oxydra.config.workspace import runner_config_path

    path = runner_config_path()
    if path is not None:
        runner = load_toml_struct(path, RunnerConfig)
        assert isinstance(runner, RunnerConfig)
        if len(runner.users) == 1:
            return next(iter(runner.users))
    return "default"


def _question(args: argparse.Namespace) -> str:
    if args.question is None and sys.stdin.isatty():
        _usage("give a question, or pipe one on stdin")
    question = str(args.question) if args.question is not None else sys.stdin.read()
    if not question.strip():  # providers refuse an empty user message, and it would be kept
        _usage("the question is empty")
    return question


def _usage(problem: str) -> NoReturn:
    print(f"oxydra ask: {problem}", file=sys.stderr)
    raise SystemExit(2)


def run_ask(args: argparse.Namespace) -> int:
    """Entry of the `ask` mode; with `--json` the last line is the per-phase timing record."""
    if not args.json:
        phases.stop()
    with phases.phase("imports"):
        from oxydra.config.loader import ConfigSources, load_agent_config
        from oxydra.config.workspace import resolve_workspace
        from oxydra.security import protect_agent_process

    with phases.phase("config"):
        protect_agent_process()
        question = _question(args)
        loaded = load_agent_config(ConfigSources(overrides=args.overrides))
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        user = default_user(args.user)
        workspace = resolve_workspace(user, args.workspace)
    try:
        return asyncio.run(_ask(loaded.config, user, workspace, question, args))
    finally:
        timing = phases.report()
        if timing is not None:
            sys.stdout.write(_json.encode({"type": "timing", **timing}).decode() + "\n")


async def _ask(
    config: Any, user: str, workspace: Any, question: str, args: argparse.Namespace
) -> int:
    with phases.phase("imports"):
        from oxydra.runtime import provision_workspace
    with phases.phase("store"):
        provision_workspace(workspace)
        observability = _observability(config, workspace)
    try:
        return await _ask_turn(config, user, workspace, question, args)
    finally:
        with phases.phase("exit"):
            await observability.aclose()


def _observability(config: Any, workspace: Any) -> Any:
    """The span hook for this one turn: its ledger row and trace, OTel export if enabled."""
    with phases.phase("imports"):
        from oxydra.observability import start_observability
        from oxydra.tools import default_scrubber

    env = dict(os.environ)
    scrub = default_scrubber(config, env).scrub
    return start_observability(config.observability, workspace=workspace, environ=env, scrub=scrub)


async def _ask_turn(
    config: Any, user: str, workspace: Any, question: str, args: argparse.Namespace
) -> int:
    with phases.phase("imports"):
        from oxydra.app.services import open_services

    services = await open_services(
        config, user_id=user, workspace=workspace, environ=dict(os.environ)
    )
    try:
        with phases.phase("persistence"):
            session = await _session_for(services, user, args)
    except BaseException:
        await services.aclose()
        raise
    services.agent.runtime.turn_locks.on_wait = _tell_waiting
    return await _turn(services, user, session, question, args)


async def _session_for(services: Any, user: str, args: argparse.Namespace) -> str:
    """A new session, or the person's session `--session` names (id or unique prefix).

    An id that names none of the person's sessions is refused (exit 2): continuing a
    session that does not exist is almost always a typo, and silently starting a fresh one
    would look like the agent forgot everything. A session only `ask` knew before sessions
    were recorded (its conversation is stored) is recorded now and continued.
    """
    from oxydra.gateway import MemorySessionRecords, RefusedError, SessionBook, SessionRecord

    book = SessionBook(MemorySessionRecords(services.memory), services.memory)
    if not args.session:
        record = await book.new(user, channel="cli", display_name=args.name)
        return record.session_id
    try:
        return (await book.find(user, args.session)).session_id
    except RefusedError as exc:
        known = await services.memory.restore_session(args.session)
        if known is not None and known.session.user_id in (None, user):
            legacy = SessionRecord(session_id=args.session, user_id=user, channel_origin="cli")
            await book.store.create_many([legacy])
            return str(args.session)
        _usage(
            f"{exc}; leave out --session to start a new session, "
            "or list yours with `oxydra sessions list`"
        )


async def _count_turn(services: Any, session: str, outcome: TurnOutcome | None) -> None:
    """The session's last activity, turns and cost, as the `vm` records them."""
    from oxydra.gateway import MemorySessionRecords

    spend = outcome.spend if outcome is not None else None
    cost = spend.cost_usd if spend is not None and spend.priced else None
    await MemorySessionRecords(services.memory).touch(session, 1, cost)


def _tell_waiting(_session_id: str) -> None:
    print("oxydra ask: waiting for the session's running turn to end", file=sys.stderr)


async def _turn(
    services: Any, user: str, session: str, question: str, args: argparse.Namespace
) -> int:
    printer = _Printer(args.json)
    request = TurnRequest(
        user_id=user, session_id=session, turn_id=new_session_id(), prompt=question, channel="cli"
    )
    task = asyncio.create_task(services.agent.runtime.run_turn(request, printer))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        outcome = await task
    except asyncio.CancelledError:
        outcome = TurnOutcome(reason="cancelled", detail="interrupted")
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        with contextlib.suppress(Exception), phases.phase("persistence"):
            await _count_turn(services, session, outcome if task.done() else None)
        with contextlib.suppress(Exception), phases.phase("exit"):
            await services.aclose()
    phases.switch("exit")  # what remains until the record is printed: the answer's end, close
    printer.finish(outcome, session)
    if cut_off(outcome):
        return EXIT_CUT_OFF
    return EXIT.get(outcome.reason, 3)


def cut_off(outcome: TurnOutcome) -> bool:
    """Whether a completed turn's answer stopped at the output limit, not at its end."""
    response = outcome.response
    return outcome.ok and response is not None and response.finish_reason == "length"
