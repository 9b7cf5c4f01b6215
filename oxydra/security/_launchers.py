"""Programs that run other programs, and how to find what they run (a maintained table).

A launcher's command line is read the way the launcher reads it: its options (short
clusters, attached and separate arguments, GNU long options with `=` and unique
abbreviations), then any fixed operands (`timeout DURATION`), then the command it runs,
given either as an argv (`nice -n 5 CMD ARGS`) or as shell text (`script -c 'CMD'`).
Failing closed is the rule: an option not in the table, an option that names a program or
script we cannot see (`env -S`, `tar --to-command`, `strace -o '|cmd'`), and a launcher
that would start an interactive shell for lack of a command are all `ShellSyntaxError`.

Programs that interpret a language of their own are checked where that language can run
commands: `sed` (the `e` command and `s///e` flag), `awk` (`system()`, pipes, `getline`
from a command), `tar` (checkpoint actions, compress/info/rsh programs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from oxydra.security._shparse import ShellSyntaxError, Word


@dataclass(frozen=True)
class Launch:
    """What a launcher runs: an argv (`argv`), shell text (`text`), or nothing."""

    argv: list[Word] | None = None
    text: list[Word] | None = None


NOTHING = Launch()


@dataclass(frozen=True)
class Launcher:
    """How one launcher takes its command.

    Attributes:
        flags: short options without an argument (letters).
        short_args: short options that take an argument (attached or the next word).
        short_optional: short options whose argument, if any, is attached (`-i{}`).
        long_flags / long_args / long_optional: the same for `--long` options.
        refused: options whose argument is a program or script we cannot check.
        text_options: options whose argument is shell text to check (`-c`).
        operands: fixed operands before the command (`timeout DURATION`).
        no_command: options after which the operands are ids, not a command (`-p PID`).
        bare: what it does with no command: "nothing", "shell" (refused), "echo" (xargs).
        digits: `-<number>` is an option (`nice -5`).
    """

    flags: str = ""
    short_args: str = ""
    short_optional: str = ""
    long_flags: frozenset[str] = frozenset()
    long_args: frozenset[str] = frozenset()
    long_optional: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()
    text_options: frozenset[str] = frozenset()
    operands: int = 0
    no_command: frozenset[str] = frozenset()
    bare: str = "nothing"
    digits: bool = False


def _set(*names: str) -> frozenset[str]:
    return frozenset(names)


_NS = ("mount", "uts", "ipc", "net", "pid", "user", "cgroup", "time")
_PRLIMIT = (
    "core", "data", "fsize", "memlock", "rss", "nofile", "stack", "cpu", "nproc", "as",
    "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime",
)  # fmt: skip

LAUNCHERS: dict[str, Launcher] = {
    "env": Launcher(
        flags="i0v",
        short_args="uC",
        long_flags=_set("--ignore-environment", "--null", "--debug"),
        long_args=_set("--unset", "--chdir"),
        long_optional=_set("--default-signal", "--ignore-signal", "--block-signal"),
        refused=_set("-S", "--split-string", "-P"),
    ),
    "sudo": Launcher(
        flags="AbEHnPSkKlBNi",
        short_args="ugpCDrtUTh",
        long_flags=_set("--preserve-env", "--non-interactive", "--login", "--set-home"),
        long_args=_set("--user", "--group", "--chdir", "--prompt", "--host", "--other-user"),
        refused=_set("-s", "--shell", "-e", "--edit", "-a"),
        bare="shell",
    ),
    "doas": Launcher(flags="ns", short_args="uC", refused=_set("-s"), bare="shell"),
    "nice": Launcher(short_args="n", long_args=_set("--adjustment"), digits=True),
    "nohup": Launcher(),
    "setsid": Launcher(flags="cfw", long_flags=_set("--ctty", "--fork", "--wait")),
    "timeout": Launcher(
        flags="v",
        short_args="sk",
        long_flags=_set("--foreground", "--preserve-status", "--verbose"),
        long_args=_set("--signal", "--kill-after"),
        operands=1,
    ),
    "stdbuf": Launcher(short_args="ioe", long_args=_set("--input", "--output", "--error")),
    "ionice": Launcher(
        flags="t",
        short_args="cnpPu",
        long_flags=_set("--ignore"),
        long_args=_set("--class", "--classdata", "--pid", "--pgid", "--uid"),
        no_command=_set("-p", "-P", "-u", "--pid", "--pgid", "--uid"),
    ),
    "chrt": Launcher(
        flags="abdefiormRv",
        short_args="TPD",
        long_flags=_set(
            "--all-tasks",
            "--batch",
            "--deadline",
            "--fifo",
            "--idle",
            "--other",
            "--rr",
            "--reset-on-fork",
            "--max",
            "--verbose",
            "--pid",
        ),
        long_args=_set("--sched-runtime", "--sched-period", "--sched-deadline"),
        operands=1,
        no_command=_set("-p", "--pid", "-m", "--max"),
    ),
    "taskset": Launcher(
        flags="acp",
        long_flags=_set("--all-tasks", "--cpu-list", "--pid"),
        operands=1,
        no_command=_set("-p", "--pid"),
    ),
    "prlimit": Launcher(
        short_optional="cdefilmnqrstuvxy",
        short_args="po",
        long_flags=_set("--noheadings", "--raw", "--verbose"),
        long_args=_set("--pid", "--output"),
        long_optional=frozenset(f"--{name}" for name in _PRLIMIT),
        no_command=_set("-p", "--pid"),
    ),
    "setpriv": Launcher(
        flags="d",
        long_flags=_set(
            "--clear-groups",
            "--keep-groups",
            "--init-groups",
            "--nnp",
            "--no-new-privs",
            "--reset-env",
            "--dump",
        ),
        long_args=_set(
            "--reuid",
            "--regid",
            "--ruid",
            "--euid",
            "--rgid",
            "--egid",
            "--groups",
            "--inh-caps",
            "--ambient-caps",
            "--bounding-set",
            "--securebits",
            "--pdeathsig",
            "--selinux-label",
            "--apparmor-profile",
            "--landlock-access",
            "--landlock-rule",
        ),
        no_command=_set("-d", "--dump"),
    ),
    "unshare": Launcher(
        flags="fcr",
        short_optional="muinpUCT",
        short_args="SGRwl",
        long_flags=_set(
            "--fork", "--map-root-user", "--map-current-user", "--map-auto", "--keep-caps"
        ),
        long_args=_set(
            "--map-user",
            "--map-group",
            "--map-users",
            "--map-groups",
            "--propagation",
            "--setgroups",
            "--root",
            "--wd",
            "--setuid",
            "--setgid",
            "--monotonic",
            "--boottime",
            "--load-interp",
        ),
        long_optional=frozenset({*(f"--{ns}" for ns in _NS), "--kill-child", "--mount-proc"}),
        bare="shell",
    ),
    "nsenter": Launcher(
        flags="aFe",
        short_optional="muinpUCTrw",
        short_args="tSG",
        long_flags=_set("--all", "--no-fork", "--preserve-credentials"),
        long_args=_set("--target", "--setuid", "--setgid"),
        long_optional=frozenset({*(f"--{ns}" for ns in _NS), "--root", "--wd"}),
        bare="shell",
    ),
    "chroot": Launcher(
        long_flags=_set("--skip-chdir"),
        long_args=_set("--userspec", "--groups"),
        operands=1,
        bare="shell",
    ),
    "time": Launcher(
        flags="pvaq",
        short_args="fo",
        long_flags=_set("--portability", "--verbose", "--append", "--quiet"),
        long_args=_set("--format", "--output"),
    ),
    "command": Launcher(flags="p", no_command=_set("-v", "-V"), short_args=""),
    "builtin": Launcher(),
    "exec": Launcher(flags="cl", short_args="a"),
    "xargs": Launcher(
        flags="0prtx",
        short_args="adEIKLnPs",
        short_optional="eil",
        long_flags=_set(
            "--null",
            "--interactive",
            "--no-run-if-empty",
            "--verbose",
            "--exit",
            "--open-tty",
            "--show-limits",
        ),
        long_args=_set(
            "--arg-file",
            "--delimiter",
            "--max-lines",
            "--max-args",
            "--max-procs",
            "--max-chars",
            "--process-slot-var",
        ),
        long_optional=_set("--eof", "--replace"),
        bare="echo",
    ),
    "flock": Launcher(
        flags="sxunoFv",
        short_args="wE",
        long_flags=_set(
            "--shared",
            "--exclusive",
            "--unlock",
            "--nonblock",
            "--close",
            "--no-fork",
            "--verbose",
        ),
        long_args=_set("--timeout", "--wait", "--conflict-exit-code"),
        text_options=_set("-c", "--command"),
        operands=1,
    ),
    "script": Launcher(
        flags="aefqr",
        short_args="TBIOmEo",
        short_optional="t",
        long_flags=_set("--append", "--return", "--flush", "--force", "--quiet"),
        long_args=_set(
            "--log-timing",
            "--log-io",
            "--log-in",
            "--log-out",
            "--logging-format",
            "--echo",
            "--output-limit",
        ),
        long_optional=_set("--timing"),
        text_options=_set("-c", "--command"),
        bare="shell",
    ),
    "su": Launcher(
        flags="lmpP",
        short_args="gGw",
        long_flags=_set("--login", "--preserve-environment", "--pty"),
        long_args=_set("--group", "--supp-group", "--whitelist-environment"),
        refused=_set("-s", "--shell", "--session-command"),
        text_options=_set("-c", "--command"),
        bare="shell",
    ),
    "watch": Launcher(
        flags="dtbegcpwx",
        short_args="nq",
        long_flags=_set(
            "--no-title",
            "--beep",
            "--errexit",
            "--chgexit",
            "--color",
            "--no-color",
            "--precise",
            "--no-wrap",
            "--exec",
            "--no-rerun",
        ),
        long_args=_set("--interval", "--equexit"),
        long_optional=_set("--differences"),
    ),
    "strace": Launcher(
        flags="bcCdDfFhiqrtTvVwxyzZk",
        short_args="aeEIOopPsSuUX",
        long_flags=_set("--follow-forks", "--output-separately", "--summary-only"),
        long_args=_set("--trace", "--signal", "--status", "--env", "--attach", "--user"),
        refused=_set("-o", "--output"),
        no_command=_set("-p", "--attach"),
    ),
    "ltrace": Launcher(
        flags="bcCfhiLrStTV",
        short_args="aAeEDFlnpsuwx",
        refused=_set("-o", "--output"),
        no_command=_set("-p"),
    ),
    "busybox": Launcher(),
    "unbuffer": Launcher(flags="p"),
    "torsocks": Launcher(),
    "proxychains": Launcher(flags="q", refused=_set("-f")),
    "proxychains4": Launcher(flags="q", refused=_set("-f")),
    "catchsegv": Launcher(),
    "fakeroot": Launcher(refused=_set("-l", "--lib", "--faked", "-s", "-i")),
    "linux32": Launcher(flags="vRFZLXBIST3"),
    "linux64": Launcher(flags="vRFZLXBIST3"),
    "setarch": Launcher(flags="vRFZLXBIST3", operands=1),
    "numactl": Launcher(
        flags="alsH",
        short_args="CNmipP",
        long_args=_set(
            "--physcpubind",
            "--cpunodebind",
            "--membind",
            "--interleave",
            "--preferred",
            "--localalloc",
        ),
    ),
}
# Programs that only ever run something we cannot see, or start a shell: always refused.
REFUSED_PROGRAMS: dict[str, str] = {
    "source": "runs a script file that cannot be checked",
    ".": "runs a script file that cannot be checked",
    "fc": "re-runs commands from history",
    "enable": "loads builtins from shared objects",
    "newgrp": "starts a new shell",
    "sg": "runs a command through a new shell",
    "runuser": "runs a command through another user's shell",
    "capsh": "runs shells with changed capabilities",
    "systemd-run": "runs commands through systemd, outside this process tree",
    "at": "schedules commands read from stdin",
    "batch": "schedules commands read from stdin",
    "crontab": "schedules commands",
    "parallel": "runs commands built from its input",
    "firejail": "runs commands with its own profile language",
    "expect": "runs a script language that can spawn programs",
    "ed": "runs '!command' lines",
    "ex": "runs ':!command'",
    "vi": "runs ':!command'",
    "vim": "runs ':!command'",
    "nvim": "runs ':!command'",
    "view": "runs ':!command'",
    "vimdiff": "runs ':!command'",
    "emacs": "evaluates Lisp that can run programs",
    "gdb": "runs programs and '!command'",
    "lldb": "runs programs and shell commands",
    "valgrind": "runs a program under instrumentation",
    "perf": "runs programs it records",
    "pkexec": "runs a program as another user",
    "runcon": "runs a program in another security context",
    "chpst": "runs a program with changed state",
    "softlimit": "runs a program with limits",
    "setuidgid": "runs a program as another user",
    "envdir": "runs a program with an environment read from files",
    "nsjail": "runs a program in its own sandbox configuration",
    "bwrap": "runs a program in its own sandbox configuration",
    "dbus-run-session": "runs a program in a new bus session",
    "xvfb-run": "runs a program under a virtual display",
    "sshpass": "runs a program with a password",
    "screen": "runs programs in a detached terminal",
    "tmux": "runs programs in a detached terminal",
    "daemonize": "runs a program in the background, outside the call",
    "start-stop-daemon": "runs a program in the background, outside the call",
    "systemd-nspawn": "runs a container",
    "machinectl": "runs commands in machines",
}
# Remote-access tools whose options can run a local command (ProxyCommand, -e rsh).
REMOTE_OPTIONS: dict[str, tuple[str, ...]] = {
    "ssh": ("-o", "-F"),
    "scp": ("-o", "-F", "-S"),
    "sftp": ("-o", "-F", "-S", "-D"),
    "rsync": ("-e", "--rsh", "--rsync-path"),
}

_ATTACHED_DIGITS = re.compile(r"-\d+")


def launch(name: str, args: list[Word]) -> Launch:
    """What launcher `name` runs given `args`; ShellSyntaxError when that is unclear."""
    spec = LAUNCHERS[name]
    index, texts, ids_only = _options(name, spec, args)
    if texts:
        return Launch(text=texts)
    rest = args[index:]
    if ids_only:
        return NOTHING
    if len(rest) < spec.operands:
        return NOTHING  # the launcher itself will complain
    rest = rest[spec.operands :]
    if not rest:
        if spec.bare == "shell":
            raise ShellSyntaxError(f"'{name}' without a command starts an interactive shell")
        return Launch(argv=[Word("echo")]) if spec.bare == "echo" else NOTHING
    if name == "watch" and not any(w.text in ("-x", "--exec") for w in args[:index]):
        return Launch(text=rest)
    if name == "flock" and len(rest) >= 2 and rest[0].text in ("-c", "--command"):
        return Launch(text=rest[1:2])  # `flock FILE -c TEXT`
    return Launch(argv=rest)


def _options(name: str, spec: Launcher, args: list[Word]) -> tuple[int, list[Word], bool]:
    """Index of the first operand, shell-text option arguments, and whether ids follow."""
    texts: list[Word] = []
    ids_only = False
    index = 0
    while index < len(args):
        word = args[index]
        text = word.text
        if word.dynamic:
            raise ShellSyntaxError(f"an argument of '{name}' is computed at run time")
        if text == "--":
            return index + 1, texts, ids_only
        if not text.startswith("-") or text == "-":
            break
        if spec.digits and _ATTACHED_DIGITS.fullmatch(text):
            index += 1
            continue
        if text.startswith("--"):
            option, value, used = _long(name, spec, text, args, index)
            seen = [option]
        else:
            seen, value, used = _short(name, spec, text, args, index)
            option = seen[-1]
        if option in spec.text_options and value is not None:
            texts.append(value)
        ids_only = ids_only or any(o in spec.no_command for o in seen)
        index += used
    return index, texts, ids_only


def _long(
    name: str, spec: Launcher, text: str, args: list[Word], index: int
) -> tuple[str, Word | None, int]:
    given, eq, attached = text.partition("=")
    known = spec.long_flags | spec.long_args | spec.long_optional | spec.text_options
    if any(r.startswith(given) for r in spec.refused if r.startswith("--")):
        raise ShellSyntaxError(f"'{name} {given}' runs something that cannot be checked")
    matches = [k for k in known if k.startswith(given)]
    option = given if given in known else (matches[0] if len(matches) == 1 else "")
    if not option:
        raise ShellSyntaxError(f"unknown option {given!r} of '{name}': cannot tell what it runs")
    takes = option in spec.long_args or option in spec.text_options
    if eq:
        if not (takes or option in spec.long_optional):
            raise ShellSyntaxError(f"option {option!r} of '{name}' takes no value")
        return option, Word(attached), 1
    if takes:
        if index + 1 >= len(args):
            raise ShellSyntaxError(f"option {option!r} of '{name}' needs a value")
        return option, args[index + 1], 2
    return option, None, 1


def _short(
    name: str, spec: Launcher, text: str, args: list[Word], index: int
) -> tuple[list[str], Word | None, int]:
    """The options of one cluster (`-abc`, `-uNAME`), the argument of its last, words used."""
    seen: list[str] = []
    for position in range(1, len(text)):
        option = "-" + text[position]
        seen.append(option)
        if option in spec.refused:
            raise ShellSyntaxError(f"'{name} {option}' runs something that cannot be checked")
        attached = text[position + 1 :]
        takes = text[position] in spec.short_args or option in spec.text_options
        if takes:
            if attached:
                return seen, Word(attached), 1
            if index + 1 >= len(args):
                raise ShellSyntaxError(f"option {option!r} of '{name}' needs a value")
            return seen, args[index + 1], 2
        if text[position] in spec.short_optional:
            return seen, Word(attached) if attached else None, 1
        if option in spec.no_command:
            continue
        if text[position] not in spec.flags:
            raise ShellSyntaxError(
                f"unknown option {option!r} of '{name}': cannot tell what it runs"
            )
    return seen, None, 1


def remote_refusal(name: str, args: list[Word]) -> str:
    """Why an ssh-family invocation may run a local command (`-o ProxyCommand=`...), else ""."""
    for word in args:
        if word.text.startswith(REMOTE_OPTIONS[name]):
            return f"'{word.text[:12]}' can run a local command (ProxyCommand, a remote shell)"
    return ""


# -- programs with a command language of their own ------------------------------------------

_SED_PLAIN = set("dDgGhHnNpPxz=F{}!")
_SED_TO_EOL = set("aicrRwW#")  # text or a file name up to the end of the line
_SED_TO_SEMICOLON = set(":btTqQlLv")  # a label or number up to `;` or the end of the line


def sed_refusal(args: list[Word]) -> str:
    """Why a `sed` invocation may run a command (its `e` command or `s///e`), else ""."""
    scripts: list[Word] = []
    operands: list[Word] = []
    index = 0
    while index < len(args):
        word = args[index]
        text = word.text
        if word.dynamic and text.startswith("-"):
            return "an option is computed at run time"
        if text in ("-e", "--expression") and index + 1 < len(args):
            scripts.append(args[index + 1])
            index += 1
        elif text.startswith("--expression="):
            scripts.append(Word(text.partition("=")[2], word.dynamic))
        elif text.startswith("--file") or (text.startswith("-") and "f" in text[1:2]):
            return "it reads a script file"
        elif text.startswith("-") and not text.startswith("--") and "e" in text[1:]:
            cluster = text[1:]
            at = cluster.index("e")
            if "f" in cluster[:at]:
                return "it reads a script file"
            if at + 1 < len(cluster):
                scripts.append(Word(cluster[at + 1 :]))
            elif index + 1 < len(args):
                scripts.append(args[index + 1])
                index += 1
        elif text.startswith("-") and not text.startswith("--") and "f" in text[1:]:
            return "it reads a script file"
        elif not text.startswith("-"):
            operands.append(word)
        index += 1
    if not scripts and operands:
        scripts.append(operands[0])
    if any(script.dynamic for script in scripts):
        return "its script is computed at run time"
    if any(_sed_runs(script.text) for script in scripts):
        return "its script uses the 'e' command or the s///e flag"
    return ""


def _sed_runs(script: str) -> bool:
    i, n = 0, len(script)
    while i < n:
        char = script[i]
        if char in " \t\n;":
            i += 1
        elif char.isdigit() or char in "$,~+":
            i += 1
        elif char in "/\\":
            i = _sed_skip_regex(script, i)
        elif char in "IM" and i > 0 and script[i - 1] in "/":
            i += 1
        elif char in "sy":
            i, flags = _sed_substitution(script, i, 2)
            if char == "s" and "e" in flags:
                return True
            if "w" in flags:
                i = _eol(script, i)
        elif char == "e":
            return True
        elif char in _SED_TO_EOL:
            i = _eol(script, i + 1)
        elif char in _SED_TO_SEMICOLON:
            i = _end_of_argument(script, i + 1)
        elif char in _SED_PLAIN:
            i += 1
        else:
            return True  # something we do not understand: assume the worst
    return False


def _sed_skip_regex(script: str, i: int) -> int:
    delimiter = script[i + 1] if script[i] == "\\" and i + 1 < len(script) else script[i]
    i += 2 if script[i] == "\\" else 1
    while i < len(script) and script[i] != delimiter:
        i += 2 if script[i] == "\\" else 1
    return i + 1


def _sed_substitution(script: str, i: int, parts: int) -> tuple[int, str]:
    if i + 1 >= len(script):
        return len(script), ""
    delimiter = script[i + 1]
    i += 2
    for _ in range(parts):
        while i < len(script) and script[i] != delimiter:
            i += 2 if script[i] == "\\" else 1
        i += 1
    start = i
    while i < len(script) and (script[i].isalnum()):
        i += 1
    return i, script[start:i]


def _end_of_argument(script: str, i: int) -> int:
    ends = [e for e in (script.find(";", i), script.find("\n", i)) if e >= 0]
    return min(ends) if ends else len(script)


def _eol(script: str, i: int) -> int:
    end = script.find("\n", i)
    return len(script) if end < 0 else end


_AWK_RUNS = re.compile(r"\bsystem\b|\|")  # `cmd | getline`, `print | cmd`, `|&` all pipe


def awk_refusal(args: list[Word]) -> str:
    """Why an `awk` invocation may run a command (`system()`, pipes, getline), else ""."""
    program: str | None = None
    index = 0
    while index < len(args):
        word = args[index]
        text = word.text
        if text in ("-F", "-v", "--field-separator", "--assign"):
            index += 2
            continue
        if text in ("-e", "--source") and index + 1 < len(args):
            program = (program or "") + "\n" + args[index + 1].text
            index += 2
            continue
        if text.startswith(("-f", "--file", "-E", "--exec", "-i", "--include", "-l", "--load")):
            return "it loads program files or extensions"
        if text == "--":
            index += 1
            break
        if text.startswith("-") and text != "-":
            index += 1
            continue
        break
    if program is None:
        if index >= len(args):
            return ""
        if args[index].dynamic:
            return "its program is computed at run time"
        program = args[index].text
    found = _AWK_RUNS.search(program.replace("||", ""))
    return "its program can run commands (system, a pipe or getline)" if found else ""


_TAR_REFUSED = (
    "--checkpoint-action", "--to-command", "--use-compress-program", "--info-script",
    "--new-volume-script", "--rsh-command", "--rmt-command",
)  # fmt: skip
_TAR_HARMLESS = frozenset({"--checkpoint", "--to-stdout"})  # exact names that prefix the above


def tar_refusal(args: list[Word]) -> str:
    """Why a `tar` invocation may run a program (checkpoint actions, filters), else ""."""
    for position, word in enumerate(args):
        text = word.text
        if word.dynamic and text.startswith("-"):
            return "an option is computed at run time"
        if text.startswith("--"):
            given = text.partition("=")[0]
            harmless = given in _TAR_HARMLESS
            if len(given) > 3 and not harmless and any(r.startswith(given) for r in _TAR_REFUSED):
                return f"'{given}' runs a program"
        elif (text.startswith("-") or position == 0) and ("I" in text or "F" in text):
            return "'-I'/'-F' run a program"
    return ""
