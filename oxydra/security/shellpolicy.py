"""Shell command policy at the argv level: every program a command line would start.

This is a guard rail, not confinement. The parser (`_shparse`) finds each simple command
of pipelines, `&&`/`||`/`;`/`&` chains, subshells, `$(...)`, backticks and process
substitutions; here each one's program is found past environment assignments, keywords
and launchers (`_launchers.LAUNCHERS`: env, sudo, nice, timeout, xargs, unshare, chrt,
prlimit, setpriv, script -c, flock, find -exec, sh -c, eval, trap...), reduced to its
basename, and checked against `[tools.shell]`:

1. `deny` always wins: a program matching any deny pattern is refused, whatever `allow`
   says (the Rust version let `allow=["*"]` override `deny=["rm"]`).
2. Otherwise the program must match the built-in allowlist (unless `replace_defaults`) or
   an `allow` pattern. Patterns are globs (`*`, `git*`), matched case-insensitively.
3. A few harmless builtins (`cd`, `true`, `export`...) need no allow entry.
4. With `allow_operators = false`, any operator, redirect or substitution is refused.
5. Whatever the parser cannot be sure of is refused (fail closed): a program name computed
   at run time (including words xargs or `find -exec {}` fill in from data), here-docs,
   `case`, unterminated quotes, syntax dash and bash read differently, an unknown option of
   a launcher, a launcher left to start an interactive shell, a shell reading commands
   from stdin or a file (`... | sh`), `sed` `e`, `awk` `system()`/pipes, tar's program
   options, `git -c`, `source`, aliases, and setting a variable that decides what later
   commands run or load (`PATH` outside system directories, `LD_*`, `BASH_ENV`, `PS4`...).

Interpreters (`python -c`), build tools (`make`, `cargo`) and git's own configuration can
always run what parsing cannot see; real confinement comes from the sandbox tier
(docs/security.md). tests/security/test_shell_differential.py runs the hostile lines in
dash and bash to show each attack is real and refused.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence
from typing import Protocol

import msgspec

from oxydra.core.errors import PolicyError
from oxydra.security._launchers import (
    LAUNCHERS,
    REFUSED_PROGRAMS,
    REMOTE_OPTIONS,
    awk_refusal,
    launch,
    remote_refusal,
    sed_refusal,
    tar_refusal,
)
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
_SHELL_FLAGS = frozenset("abefhklmnprtuvxBCEHPT")
_SHELL_LONG = frozenset(
    {"--norc", "--noprofile", "--posix", "--login", "--restricted", "--noediting", "--verbose"}
)
_SEDS = frozenset({"sed", "gsed"})
_AWKS = frozenset({"awk", "gawk", "mawk", "nawk"})
_TARS = frozenset({"tar", "gtar"})
# Builtins that set the variables named by their operands.
_SETTERS = frozenset(
    {"export", "declare", "typeset", "readonly", "local", "read", "mapfile", "readarray",
     "getopts", "printf", "unset"}
)  # fmt: skip
# Variables that decide what a later command runs or loads: setting one is refused.
DANGEROUS_VARIABLES = frozenset(
    {"PATH", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "IFS",
     "CDPATH", "GLOBIGNORE", "EXECIGNORE", "PAGER", "EDITOR", "VISUAL", "BROWSER", "MANPAGER",
     "LESSOPEN", "LESSCLOSE", "SUDO_ASKPASS", "SSH_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND",
     "GIT_EXTERNAL_DIFF", "GIT_PAGER", "GIT_EDITOR", "GIT_ASKPASS", "GIT_PROXY_COMMAND",
     "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR", "GIT_CONFIG", "GIT_CONFIG_GLOBAL",
     "GIT_CONFIG_SYSTEM", "GIT_CONFIG_COUNT", "NODE_OPTIONS", "PYTHONSTARTUP", "PYTHONPATH",
     "PYTHONHOME", "PERL5OPT", "PERL5LIB", "RUBYOPT", "JAVA_TOOL_OPTIONS", "TAR_OPTIONS",
     "XARGS_OPTIONS"}
)  # fmt: skip
_SYSTEM_PATH = frozenset(
    {"/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin", "/usr/local/sbin"}
)
_DANGEROUS_PREFIXES = ("LD_", "DYLD_", "BASH_FUNC_", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")
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
            for name in parsed.assigned:
                _check_variable(name)
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
    for name in parsed.assigned:
        _check_variable(name)
    programs: list[str] = []
    for words in parsed.commands:
        programs.extend(_programs(words, 0))
    return tuple(programs), frozenset(parsed.operators)


def _programs(words: list[Word], depth: int) -> list[str]:
    if depth > _RECURSE_LIMIT:
        raise ShellSyntaxError("wrappers are nested too deeply")
    index = _command_start(words)
    for word in words[: len(words) if index is None else index]:
        if _is_assignment(word):
            name, _, value = word.text.partition("=")
            _check_variable(name.rstrip("+"), value if not word.dynamic else None)
    if words and words[0].text == "for" and len(words) > 1:
        _check_variable(words[1].text)
    if index is None:
        _check_test(words)
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


def _check_variable(name: str, value: str | None = None) -> None:
    """Refuse setting a variable that decides what later commands run or load.

    `PATH` may be set to system directories only (`env -i PATH=/usr/bin:/bin ...`).
    """
    if name == "PATH" and value is not None and set(value.split(":")) <= _SYSTEM_PATH:
        return
    if "[" in name:
        raise ShellSyntaxError(f"{name!r}: array subscripts are evaluated as code by bash")
    if name.upper() in DANGEROUS_VARIABLES or name.upper().startswith(_DANGEROUS_PREFIXES):
        raise ShellSyntaxError(f"setting {name} changes what later commands run")


def _check_test(words: list[Word]) -> None:
    if words and words[0].text == "[[":
        _check_test_operators(words)


def _check_test_operators(args: list[Word]) -> None:
    arithmetic = {"-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-v"}
    if any(w.text in arithmetic for w in args):
        raise ShellSyntaxError(
            "arithmetic tests and -v evaluate variable values as code in bash; compare strings"
        )


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
    if name in REFUSED_PROGRAMS:
        raise ShellSyntaxError(f"'{name}' {REFUSED_PROGRAMS[name]}")
    if name in _SHELLS:
        return _shell_c(name, args, depth)
    if name == "eval":
        return _from_text(args, depth)
    if name == "trap":
        handler = args[:1]
        static_reset = handler and not handler[0].dynamic and handler[0].text in ("-", "")
        return [] if not handler or static_reset else _from_text(handler, depth)
    if name == "find":
        return _find_exec(args, depth)
    if name in _SETTERS:
        _check_setter(name, args)
        return []
    if name in ("test", "["):
        _check_test_operators(args)
        return []
    if name in ("let", "alias", "hash"):
        _check_builtin(name, args)
        return []
    refusal = _language_refusal(name, args)
    if refusal:
        raise ShellSyntaxError(f"'{name}': {refusal}")
    if name == "git":
        _check_git(args)
    if name not in LAUNCHERS:
        return []
    launched = launch(name, args)
    if launched.text is not None:
        return _from_text(launched.text, depth)
    if launched.argv is None:
        return []
    rest = launched.argv
    if name == "xargs":
        rest = _with_input(args, rest)
    if name == "env":
        while rest and _is_assignment(rest[0]):
            name, _, value = rest[0].text.partition("=")
            _check_variable(name, None if rest[0].dynamic else value)
            rest = rest[1:]
        if not rest:
            return []
    return _programs(rest, depth + 1)


def _with_input(options: list[Word], command: list[Word]) -> list[Word]:
    """xargs's command as it will run: input words appended, or put in place of `-I R`.

    What xargs reads is data the model controls, so those words are dynamic: `xargs env`
    or `xargs -I X X` run a program named by the input, and are refused for that reason.
    """
    replace = _replace_string(options[: len(options) - len(command)])
    if replace is None:
        return [*command, Word("", dynamic=True)]
    return [Word(w.text, w.dynamic or replace in w.text) for w in command]


def _replace_string(options: list[Word]) -> str | None:
    for index, word in enumerate(options):
        text = word.text
        if text == "-I" and index + 1 < len(options):
            return options[index + 1].text
        if text.startswith("-I") or text.startswith("-i"):
            return text[2:] or "{}"
        if text.startswith("--replace"):
            return text.partition("=")[2] or "{}"
    return None


def _language_refusal(name: str, args: list[Word]) -> str:
    if name in _SEDS:
        return sed_refusal(args)
    if name in _AWKS:
        return awk_refusal(args)
    if name in _TARS:
        return tar_refusal(args)
    if name in REMOTE_OPTIONS:
        return remote_refusal(name, args)
    return ""


def _check_setter(name: str, args: list[Word]) -> None:
    options = [w.text for w in args if w.text.startswith("-")]
    if name in ("declare", "typeset", "local") and any(
        set(o[1:]) & set("inx") for o in options if not o.startswith("--")
    ):
        raise ShellSyntaxError(f"'{name} -i/-n' evaluates or redirects variables as code")
    for word in args:
        if word.text.startswith(("-", "+")) or (name == "printf" and "-v" not in options):
            continue
        target = word.text.partition("=")[0]
        if name == "unset" and target not in DANGEROUS_VARIABLES:
            continue
        if target.isidentifier() or "[" in target:
            _check_variable(target)


def _check_builtin(name: str, args: list[Word]) -> None:
    if name == "let":
        raise ShellSyntaxError("'let' evaluates variable values as code in bash")
    if name == "alias" and any("=" in w.text for w in args):
        raise ShellSyntaxError("defining an alias changes what later commands run")
    if name == "hash" and any(w.text.startswith("-") and "p" in w.text for w in args):
        raise ShellSyntaxError("'hash -p' changes what a program name runs")


def _check_git(args: list[Word]) -> None:
    for word in args:
        if word.text in ("-c", "--config-env") or word.text.startswith(
            ("--config-env=", "--exec-path=", "-c")
        ):
            raise ShellSyntaxError("'git -c/--config-env/--exec-path' can make git run programs")
        if not word.text.startswith("-"):
            return


def _shell_c(name: str, args: list[Word], depth: int) -> list[str]:
    command = False
    index = 0
    while index < len(args):
        text = args[index].text
        if args[index].dynamic:
            raise ShellSyntaxError(f"an argument of '{name}' is computed at run time")
        if text == "--" or not text.startswith(("-", "+")) or text in ("-", "+"):
            break
        if text.startswith("--"):
            if text not in _SHELL_LONG:
                raise ShellSyntaxError(f"'{name} {text}' is not supported")
            index += 1
            continue
        letters = text[1:]
        for letter in letters:
            if letter == "c":
                command = True
            elif letter in "oO":
                index += 1  # the option name follows
            elif letter not in _SHELL_FLAGS:
                raise ShellSyntaxError(f"'{name} -{letter}' reads commands we cannot see")
        index += 1
    if not command:
        raise ShellSyntaxError(
            f"'{name}' without -c reads its commands from stdin or a file, which cannot be checked"
        )
    scripts = args[index:]
    if scripts and scripts[0].text == "--":
        scripts = scripts[1:]
    if not scripts:
        raise ShellSyntaxError("'-c' without a command string")
    return _from_text(scripts[:1], depth)


def _from_text(words: list[Word], depth: int) -> list[str]:
    if any(w.dynamic for w in words):
        raise ShellSyntaxError("a command string built at run time cannot be checked")
    parsed = parse(" ".join(w.text for w in words))
    for name in parsed.assigned:
        _check_variable(name)
    programs: list[str] = []
    for inner in parsed.commands:
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
            # `{}` becomes each path found: file names the model chose, so dynamic.
            command = [Word(w.text, w.dynamic or "{}" in w.text) for w in args[index + 1 : end]]
            programs.extend(_programs(command, depth + 1))
            index = end
        index += 1
    return programs
