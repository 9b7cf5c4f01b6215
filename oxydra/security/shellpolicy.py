"""Shell command policy at the argv level: every program a command line would start.

This is a guard rail, not confinement. The parser (`_shparse`) finds each simple command
of pipelines, `&&`/`||`/`;`/`&` chains, subshells, `$(...)`, backticks and process
substitutions; here each one's program is found past environment assignments, keywords
and wrappers (`env`, `sudo`, `xargs`, `nice`, `timeout`, `sh -c`, `eval`, `find -exec`...),
reduced to its basename, and checked against `[tools.shell]`:

1. `deny` always wins: a program matching any deny pattern is refused, whatever `allow`
   says (the Rust version let `allow=["*"]` override `deny=["rm"]`).
2. Otherwise the program must match the built-in allowlist (unless `replace_defaults`) or
   an `allow` pattern. Patterns are globs (`*`, `git*`), matched case-insensitively.
3. A few harmless builtins (`cd`, `true`, `export`...) need no allow entry.
4. With `allow_operators = false`, any operator, redirect or substitution is refused.
5. Whatever the parser cannot be sure of (a program name computed at run time, here-docs,
   `case`, unterminated quotes) is refused.

Variables, `eval` of computed strings, interpreters (`python -c`) and aliases can always
run what parsing cannot see; real confinement comes from the sandbox tier (docs/security.md).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence
from typing import Protocol

import msgspec

from oxydra.core.errors import PolicyError
from oxydra.security._shparse import ShellSyntaxError, Word, parse

DEFAULT_ALLOW: tuple[str, ...] = (
    "awk", "cat", "cargo", "cp", "curl", "cut", "echo", "env", "find", "git", "go", "grep",
    "head", "jq", "ls", "mkdir", "mv", "node", "printf", "pwd", "python", "python3", "rustc",
    "sed", "sleep", "sort", "stat", "tail", "touch", "tr", "uniq", "wc", "which",
)  # fmt: skip
HARMLESS_BUILTINS = frozenset(
    {"cd", "true", "false", ":", "export", "unset", "shift", "exit", "return", "read", "local",
     "test", "[", "wait", "set"}
)  # fmt: skip
_RESERVED = frozenset(
    {"!", "{", "}", "if", "then", "else", "elif", "fi", "while", "until", "do", "done"}
)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox-sh"})
# Wrapper -> options that take a separate argument.
_WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir"}),
    "sudo": frozenset({"-u", "-g", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "-h", "--user"}),
    "doas": frozenset({"-u", "-C"}),
    "xargs": frozenset({"-I", "-n", "-P", "-L", "-s", "-d", "-E", "-a", "--arg-file"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p", "-P", "-u"}),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "exec": frozenset({"-a"}),
    "strace": frozenset({"-o", "-e", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-S", "-X"}),
    "ltrace": frozenset({"-o", "-e", "-p", "-s", "-u", "-a", "-n"}),
    "flock": frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}),
    "watch": frozenset({"-n", "-d", "--interval", "-q"}),
    **{name: frozenset() for name in ("nohup", "setsid", "command", "builtin", "time", "unbuffer",
                                      "busybox", "chroot", "taskset", "torsocks", "proxychains")},
}  # fmt: skip
_POSITIONAL = {"timeout": 1, "chroot": 1, "flock": 1, "taskset": 1}
_RECURSE_LIMIT = 8


class ShellRules(Protocol):
    """The `[tools.shell]` keys the policy reads (`oxydra.config.ShellConfig` has them)."""

    @property
    def allow(self) -> Sequence[str]:
        """Allowed program patterns."""
        ...

    @property
    def deny(self) -> Sequence[str]:
        """Denied program patterns; they win over `allow`."""
        ...

    @property
    def replace_defaults(self) -> bool:
        """Whether `allow` replaces the built-in allowlist."""
        ...

    @property
    def allow_operators(self) -> bool:
        """Whether operators, redirects and substitutions are allowed."""
        ...


class ShellVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """The policy's answer for one command line."""

    allowed: bool
    programs: tuple[str, ...] = ()
    reason: str = ""


class ShellPolicy:
    """Checks command lines against `[tools.shell]` (see the module rules)."""

    def __init__(self, config: ShellRules) -> None:
        base = () if config.replace_defaults else DEFAULT_ALLOW
        self.allow = tuple(p.lower() for p in (*base, *config.allow))
        self.deny = tuple(p.lower() for p in config.deny)
        self.allow_operators = config.allow_operators

    def check(self, command: str) -> ShellVerdict:
        """Decide one command line without raising."""
        try:
            parsed = parse(command)
            programs = tuple(p for words in parsed.commands for p in _programs(words, 0))
        except ShellSyntaxError as exc:
            return ShellVerdict(allowed=False, reason=f"cannot check this command: {exc}")
        if not programs:
            return ShellVerdict(allowed=False, reason="no command to run")
        operators = parsed.operators
        if not self.allow_operators and (operators or len(parsed.commands) > 1):
            shown = ", ".join(sorted(operators)) or "several commands"
            return ShellVerdict(
                allowed=False,
                programs=programs,
                reason=f"operators are disabled ([tools.shell] allow_operators = false): {shown}",
            )
        for program in programs:
            reason = self._refusal(program)
            if reason:
                return ShellVerdict(allowed=False, programs=programs, reason=reason)
        return ShellVerdict(allowed=True, programs=programs)

    def enforce(self, command: str) -> tuple[str, ...]:
        """The programs of an allowed command; PolicyError with the reason otherwise."""
        verdict = self.check(command)
        if not verdict.allowed:
            raise PolicyError(f"shell command refused: {verdict.reason}")
        return verdict.programs

    def _refusal(self, program: str) -> str:
        name = program.lower()
        denied = [p for p in self.deny if fnmatch.fnmatchcase(name, p)]
        if denied:
            return f"'{program}' is denied by [tools.shell] deny ({denied[0]})"
        if name in HARMLESS_BUILTINS or any(fnmatch.fnmatchcase(name, p) for p in self.allow):
            return ""
        return f"'{program}' is not in the [tools.shell] allow list"


def programs_of(command: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """Every program `command` would start, in order, and the operators it uses."""
    parsed = parse(command)
    programs: list[str] = []
    for words in parsed.commands:
        programs.extend(_programs(words, 0))
    return tuple(programs), frozenset(parsed.operators)


def _programs(words: list[Word], depth: int) -> list[str]:
    if depth > _RECURSE_LIMIT:
        raise ShellSyntaxError("wrappers are nested too deeply")
    index = _command_start(words)
    if index is None:
        return []
    head = words[index]
    if head.text in ("case", "function", "coproc", "select"):
        raise ShellSyntaxError(f"'{head.text}' is not supported")
    if head.dynamic:
        raise ShellSyntaxError(
            f"the program name {head.text or '(expansion)'!r} is computed at run time"
        )
    name = posixpath.basename(head.text.rstrip("/"))
    if not name:
        raise ShellSyntaxError(f"{head.text!r} is not a program name")
    return [name, *_inner(name.lower(), words[index + 1 :], depth)]


def _command_start(words: list[Word]) -> int | None:
    for index, word in enumerate(words):
        if word.text in ("for", "[["):
            return None
        if word.text in _RESERVED and not word.dynamic:
            continue
        if _is_assignment(word):
            continue
        return index
    return None


def _is_assignment(word: Word) -> bool:
    name, sep, _ = word.text.partition("=")
    return bool(sep) and name.rstrip("+").isidentifier()


def _inner(name: str, args: list[Word], depth: int) -> list[str]:
    if name in _SHELLS:
        return _shell_c(args, depth)
    if name == "eval":
        return _from_text(args, depth)
    if name == "find":
        return _find_exec(args, depth)
    if name == "watch":
        rest = _after_options(name, args)
        return _from_text(rest, depth) if rest else []
    if name not in _WRAPPERS:
        return []
    rest = _after_options(name, args)
    if name == "env":
        env_rest = _env_rest(args, rest, depth)
        if env_rest is None:
            return []
        rest = env_rest
    if not rest:
        return ["echo"] if name == "xargs" else []
    return _programs(rest, depth + 1)


def _after_options(name: str, args: list[Word]) -> list[Word]:
    takes_arg = _WRAPPERS.get(name, frozenset())
    index = 0
    while index < len(args):
        text = args[index].text
        if text == "--":
            index += 1
            break
        if not text.startswith("-") or text == "-":
            break
        index += 2 if text in takes_arg else 1
    return args[index + _POSITIONAL.get(name, 0) :]


def _env_rest(args: list[Word], rest: list[Word], depth: int) -> list[Word] | None:
    for index, word in enumerate(args):
        if word.text in ("-S", "--split-string") and index + 1 < len(args):
            _from_text([args[index + 1]], depth)
            raise ShellSyntaxError("env -S is not supported; write the command directly")
    while rest and _is_assignment(rest[0]):
        rest = rest[1:]
    return rest


def _shell_c(args: list[Word], depth: int) -> list[str]:
    for index, word in enumerate(args):
        text = word.text
        if text.startswith("-") and not text.startswith("--") and "c" in text[1:]:
            scripts = [w for w in args[index + 1 :] if not w.text.startswith("-")]
            if not scripts:
                raise ShellSyntaxError("'-c' without a command string")
            return _from_text(scripts[:1], depth)
    return []


def _from_text(words: list[Word], depth: int) -> list[str]:
    if any(w.dynamic for w in words):
        raise ShellSyntaxError("a command string built at run time cannot be checked")
    programs: list[str] = []
    for inner in parse(" ".join(w.text for w in words)).commands:
        programs.extend(_programs(inner, depth + 1))
    return programs


def _find_exec(args: list[Word], depth: int) -> list[str]:
    programs: list[str] = []
    index = 0
    while index < len(args):
        if args[index].text in ("-exec", "-execdir", "-ok", "-okdir"):
            end = index + 1
            while end < len(args) and args[end].text not in (";", "+"):
                end += 1
            programs.extend(_programs(args[index + 1 : end], depth + 1))
            index = end
        index += 1
    return programs
