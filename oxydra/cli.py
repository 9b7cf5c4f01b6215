"""Command line: parse arguments, then import only the chosen mode.

Start-up speed matters (`--help` is the first thing a user runs), so this module imports
nothing heavy: each mode's module is imported inside its handler.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from oxydra import __version__

TYPE_CHECKING = False  # not `typing`'s: importing it costs `--help` ~1.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import NoReturn

# mode -> (module, function, help); the function takes the parsed args and returns an exit code
MODES: dict[str, tuple[str, str, str]] = {
    "ask": ("oxydra.app.ask", "run_ask", "run one turn and print the answer"),
    "vm": ("oxydra.app.vm", "run_vm", "the guest: agent runtime + gateway server"),
    "tui": ("oxydra.tui.app", "run_tui", "terminal client for a running vm"),
    "runner": ("oxydra.runner.cli", "run_runner", "host side: workspaces and guests"),
    "shell-daemon": ("oxydra.runner.shell_daemon", "run_shell_daemon", "shell command server"),
    "catalog": (
        "oxydra.commands.catalog",
        "run_catalog",
        "fetch, verify or show the model catalog",
    ),
    "config": ("oxydra.commands.config", "run_config", "show or check the effective config"),
    "mcp": (
        "oxydra.commands.mcp",
        "run_mcp",
        "MCP servers: list, check, import an mcpServers file; serve the agent over stdio",
    ),
    "usage": (
        "oxydra.commands.observability",
        "run_usage",
        "tokens and cost per person, session, model, agent or day",
    ),
    "trace": (
        "oxydra.commands.observability",
        "run_trace",
        "a recent turn's spans as a waterfall (no id: list recent turns)",
    ),
    "persona": ("oxydra.commands.persona", "run_persona", "show the persona files in effect"),
    "skills": ("oxydra.commands.skills", "run_skills", "list, show, check or approve skills"),
    "store": (
        "oxydra.commands.store",
        "run_store",
        "the memory store: status, migrate between SQLite and PostgreSQL, rollback",
    ),
    "sessions": (
        "oxydra.commands.sessions",
        "run_sessions",
        "list, rename, archive, unarchive, delete or export sessions; the audit log",
    ),
}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (repeatable; wins over files and environment)",
    )


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's own formatter, as wide as the terminal the way `shutil.get_terminal_size`
    finds it (`COLUMNS`, else the terminal, else 80), without importing shutil: with the
    bz2, lzma and fnmatch it loads, that was 2.2 ms of every `--help` and usage error."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return argparse.HelpFormatter(prog, width=(columns or 80) - 2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every mode, or with `only` one whose other modes are names
    with their help line (enough for the overview; `ask` then skips building 13 parsers)."""
    parser = argparse.ArgumentParser(
        prog="oxydra",
        description="Oxydra: a self-hosted AI agent orchestrator.",
        epilog="Config: /etc/oxydra < ~/.config/oxydra < ~/.oxydra < ./.oxydra < "
        "OXYDRA__SECTION__KEY < --set.",
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"oxydra {__version__}")
    modes = parser.add_subparsers(dest="mode", metavar="MODE")
    for name, (_module, _func, text) in MODES.items():
        sub = modes.add_parser(name, help=text, description=text, formatter_class=_formatter)
        if only is None or only == name:
            _add_config_flags(sub)
            _MODE_ARGS.get(name, lambda p: None)(sub)
    return parser


def _ask_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("question", nargs="?", help="the question (default: read stdin)")
    p.add_argument("--user", help="user id (default: the single configured user or 'default')")
    p.add_argument("--workspace", help="workspace directory of the user")
    p.add_argument(
        "--session", help="continue this session (id or unique prefix; an unknown one is refused)"
    )
    p.add_argument("--name", help="name the new session (without --session)")
    p.add_argument("--json", action="store_true", help="print a JSON event stream")


def _vm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user-id", default="default", help="the user this guest serves")
    p.add_argument("--workspace-root", help="the user's workspace directory")
    p.add_argument(
        "--bootstrap-stdin",
        action="store_true",
        help="read the runner's bootstrap envelope (length-prefixed JSON) from stdin",
    )
    p.add_argument("--bootstrap-file", help="read the bootstrap envelope from this JSON file")
    p.add_argument("--gateway-bind", help="host:port to listen on (default 127.0.0.1:0)")
    p.add_argument(
        "--user-config",
        help="the user's runner file (users/<id>.toml) for [channels] and [[people]], "
        "when no runner hands them over",
    )


def _tui_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gateway-endpoint", help="ws://host:port/ws (default: discovered)")
    p.add_argument("--user", default="default", help="user id to connect as")
    p.add_argument("--session", help="join this session")
    p.add_argument("--workspace", help="workspace to discover the gateway from")


def _runner_flags(p: argparse.ArgumentParser) -> None:
    """The runner's flags, the one declaration of them: they are accepted before the
    subcommand and after it (`runner start --insecure`, `runner logs --follow`)."""
    p.add_argument("-c", "--config", help="runner.toml (default .oxydra/runner.toml)")
    p.add_argument("-u", "--user", help="user id (default: the single user in runner.toml)")
    p.add_argument("--insecure", action="store_true", help="force the process tier")
    p.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pass a variable to the guest (repeatable)",
    )
    p.add_argument("--env-file", help="pass the KEY=VALUE lines of this file to the guest")
    logs = p.add_argument_group("logs")
    logs.add_argument(
        "--role", choices=["runtime", "sidecar", "all"], default="runtime", help="whose log"
    )
    logs.add_argument(
        "--stream", choices=["stdout", "stderr", "both"], default="both", help="which stream"
    )
    logs.add_argument("--tail", nargs="?", type=int, metavar="N", help="the last N lines")
    logs.add_argument("--since", help="only lines after an RFC 3339 time or a duration (10m)")
    logs.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    web = p.add_argument_group("web")
    web.add_argument("--bind", help="web: host:port to serve on (default [web] bind)")
    web.add_argument(
        "--insecure-http", action="store_true", help="web: allow plain HTTP on a non-loopback bind"
    )


def _runner_args(p: argparse.ArgumentParser) -> None:
    _runner_flags(p)
    p.add_argument("--tui", action="store_true", help="attach the TUI to a running guest")
    p.add_argument("--probe", action="store_true", help="with --tui: print metadata and exit")
    p.add_argument("--daemon", action="store_true", help="stay resident serving the control socket")
    p.add_argument("--detach-when-ready", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "command", nargs="?", help="start | stop | status | restart | logs | web | image build"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def _merge_runner_rest(args: argparse.Namespace) -> None:
    """Flags given after the runner's subcommand join those given before it."""
    parser = argparse.ArgumentParser(
        prog=f"oxydra runner {args.command}", formatter_class=_formatter
    )
    _add_config_flags(parser)
    _runner_flags(parser)
    rest = parser.parse_args(args.rest)
    for key, value in vars(rest).items():
        current = getattr(args, key)
        if isinstance(current, list):
            setattr(args, key, [*current, *value])
        elif value != parser.get_default(key):
            setattr(args, key, value)
    args.rest = []


def _shell_daemon_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", required=True, help="Unix socket path to listen on")
    p.add_argument(
        "--writable",
        action="append",
        metavar="DIR",
        help="a directory commands may change (repeat; default: the cwd and the temp dir)",
    )
    p.add_argument(
        "--allow-unconfined",
        action="store_true",
        help="run commands even where Landlock is unavailable (their files unconfined)",
    )


def _catalog_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "argv",
        nargs=argparse.REMAINDER,
        metavar="fetch|verify|show ...",
        help="`fetch [--pinned] [--all]`, `verify`, `show [--all]`",
    )


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=["show", "check"],
        help="show: the effective config and each value's source; check: list every problem",
    )


def _mcp_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=["list", "check", "import", "serve"],
        help="list or check the servers, import an mcpServers file, or serve the agent",
    )
    p.add_argument("file", nargs="?", help="import: the mcpServers JSON file")
    p.add_argument("--append", metavar="TOML", help="import: append to this agent.toml")
    p.add_argument("--json", action="store_true", help="list/check: print JSON")
    p.add_argument("--user", help="user id (default: the single configured user or 'default')")
    p.add_argument("--workspace", help="workspace directory of the user")


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", help="user id (default: 'default')")
    p.add_argument("--workspace", help="workspace directory of the user")


def _usage_args(p: argparse.ArgumentParser) -> None:
    _store_args(p)
    p.add_argument(
        "--by",
        choices=["person", "session", "model", "agent", "day"],
        default="person",
        help="group the rows by this (default: person)",
    )
    p.add_argument("--since", help="12h, 7d, 2w or an ISO date (default: everything)")
    p.add_argument("--json", action="store_true", help="print JSON rows")


def _trace_args(p: argparse.ArgumentParser) -> None:
    _store_args(p)
    p.add_argument("turn_id", nargs="?", help="turn id or a unique prefix of it")


def _persona_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["show"], help="show: each file's winner, hash and size")
    p.add_argument("--user", help="include this user's workspace .oxydra/ layer")
    p.add_argument("--workspace", help="workspace directory of the user")


def _skills_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=["list", "show", "check", "approve"],
        help="list every copy; show one; check for problems; approve a draft or a change",
    )
    p.add_argument("name", nargs="?", help="the skill (show, approve)")
    p.add_argument("--user", help="user whose managed skills folder to use (default 'default')")
    p.add_argument("--workspace", help="workspace directory of the user")


def _store_cmd_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=["status", "migrate", "rollback"],
        help="status: backend, schema version, rows and hash per table; migrate: copy the "
        "store to --to and verify it; rollback: restore the snapshot taken before the last "
        "schema upgrade",
    )
    p.add_argument("--to", help="migrate: a postgresql:// URL (no password) or a SQLite path")
    _store_args(p)


def _sessions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=["list", "rename", "archive", "unarchive", "delete", "export", "audit", "prune"],
        help="what to do (audit: every new, rename, archive, delete and export, newest first; "
        "prune: delete archived sessions idle past [sessions] retain_days)",
    )
    p.add_argument("session", nargs="?", help="the session: id or unique prefix")
    p.add_argument("name", nargs="?", help="the new name (rename; none removes it)")
    p.add_argument("--user", help="user id (default: the single configured user or 'default')")
    p.add_argument("--workspace", help="workspace directory of the user")
    p.add_argument("--all", action="store_true", help="list archived sessions too")
    p.add_argument("--subagents", action="store_true", help="list sub-agent sessions too")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--format", choices=["markdown", "jsonl"], default="markdown", help="export format"
    )
    p.add_argument("-o", "--output", help="write the export to this file")
    p.add_argument("--days", type=int, help="prune: retention in days (default: retain_days)")


_MODE_ARGS = {
    "ask": _ask_args,
    "vm": _vm_args,
    "tui": _tui_args,
    "runner": _runner_args,
    "shell-daemon": _shell_daemon_args,
    "catalog": _catalog_args,
    "config": _config_args,
    "mcp": _mcp_args,
    "usage": _usage_args,
    "trace": _trace_args,
    "persona": _persona_args,
    "skills": _skills_args,
    "store": _store_cmd_args,
    "sessions": _sessions_args,
}


def _skip_httpx_cli() -> None:
    """Keep `import httpx` from loading its own command line (click, pygments, rich).

    httpx imports `httpx._main` inside a `try`, and falls back to a stub when it is missing;
    a `None` entry in `sys.modules` makes that import fail at once. We never run httpx's
    CLI, and it cost about 20 ms of every start wherever click and pygments are installed.
    """
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def entry() -> NoReturn:
    """The process's entry (`python -m oxydra`, the `oxydra` script, `oxydra.pyz`)."""
    raise SystemExit(main(exit_process=True))


def _exit_now(code: int) -> NoReturn:
    """End a one-shot process without the interpreter's teardown (~45 ms of CPU for `ask`:
    freeing ~500 modules one object at a time). What the teardown does that matters still
    happens: non-daemon threads are waited for, `atexit` handlers run (logging's flush, the
    confinement server's stop, `weakref.finalize` callbacks) and the output is flushed.
    """
    import atexit
    import os
    import threading

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, as the interpreter would end
            code = code or 120
    os._exit(code)


def main(argv: Sequence[str] | None = None, *, exit_process: bool = False) -> int:
    """Run the command line; returns the process exit code.

    `exit_process` (the process's entry only): a one-shot `ask` ends the process itself
    once its answer is out (`_exit_now`).
    """
    from oxydra import _phases as phases

    phases.start("arguments")
    _skip_httpx_cli()
    words = sys.argv[1:] if argv is None else list(argv)
    mode = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(mode if mode in MODES else "")  # "": the overview needs no options
    args = parser.parse_args(words)
    if args.mode != "ask":  # the only mode that reports them (`ask --json`)
        phases.stop()
    if not args.mode:
        parser.print_help()
        return 0
    if args.mode == "runner" and args.rest and args.command != "image":
        _merge_runner_rest(args)
    module_name, func_name, _ = MODES[args.mode]
    if args.mode == "runner" and args.command == "web":  # the configurator lives in oxydra.web
        module_name, func_name = "oxydra.web.runweb", "run_configurator"
    from oxydra.core.log import configure_logging

    configure_logging()
    with phases.phase("imports"):
        run = getattr(importlib.import_module(module_name), func_name)
    phases.switch("turn")  # what no finer phase claims: the event loop, the runtime's steps
    code = _run(run, args)
    if exit_process and args.mode == "ask":
        _exit_now(code)
    return code


def _run(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """A mode's handler; its errors become a sentence on stderr and an exit code."""
    from oxydra.core.errors import ConfigError, OxydraError

    try:
        return int(run(args))
    except ConfigError as exc:
        print(f"oxydra {args.mode}: {exc}", file=sys.stderr)
        return 2
    except OxydraError as exc:
        print(f"oxydra {args.mode}: error: {exc}", file=sys.stderr)
        return 1
    except RecursionError:
        print(f"oxydra {args.mode}: error: input nested too deeply to process", file=sys.stderr)
        return 1
    except OSError as exc:  # the last resort: still a sentence naming the file, no traceback
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"oxydra {args.mode}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"oxydra {args.mode}: interrupted", file=sys.stderr)
        return 130
