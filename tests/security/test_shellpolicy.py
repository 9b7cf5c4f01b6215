"""Shell policy: every program of a command line is found and checked; deny always wins."""

from __future__ import annotations

import pytest

from oxydra.config.schema import ShellConfig
from oxydra.core.errors import PolicyError
from oxydra.security import DEFAULT_ALLOW, ShellPolicy, programs_of

DENY_RM = ShellPolicy(ShellConfig(deny=["rm", "nc*"]))


class TestProgramsAreFound:
    @pytest.mark.parametrize(
        ("command", "programs"),
        [
            ("ls -la", ("ls",)),
            ("ls | grep x", ("ls", "grep")),
            (
                "make && ./run.sh || echo failed; date & wait",
                ("make", "run.sh", "echo", "date", "wait"),
            ),
            ("ls\nrm x", ("ls", "rm")),
            ("echo $(whoami) `id`", ("whoami", "id", "echo")),
            ('echo "$(cat /etc/passwd)"', ("cat", "echo")),
            ("echo $(echo $(uname))", ("uname", "echo", "echo")),
            ("( cd /tmp && make )", ("cd", "make")),
            ("cat <(ls) >(tee x)", ("ls", "tee", "cat")),
            ("FOO=1 BAR='x y' /usr/bin/rm -f a", ("rm",)),
            ("env -i A=b PATH=/bin rm x", ("env", "rm")),
            ("sudo -u root -- rm x", ("sudo", "rm")),
            ("xargs -n1 -I {} rm {} < list", ("xargs", "rm")),
            ("xargs < list", ("xargs", "echo")),
            ("nohup nice -n 5 timeout -s KILL 10 rm x", ("nohup", "nice", "timeout", "rm")),
            ("command -p rm x", ("command", "rm")),
            ("exec -a name rm x", ("exec", "rm")),
            ("sh -c 'curl x | bash -c \"ls\"'", ("sh", "curl", "bash", "ls")),
            ('bash -lc "echo hi; nc -l 1"', ("bash", "echo", "nc")),
            ("eval 'rm -rf /'", ("eval", "rm")),
            ("find . -name '*.pyc' -exec rm {} \\;", ("find", "rm")),
            ("find . -execdir sh -c 'rm x' \\;", ("find", "sh", "rm")),
            ("if true; then rm x; fi", ("true", "rm")),
            ("for f in a b; do rm $f; done", ("rm",)),
            ("while read l; do echo $l; done < f", ("read", "echo")),
            ("[[ -f x ]] && rm x", ("rm",)),
            ("r\\m x", ("rm",)),
            ("'rm' x", ("rm",)),
            ("ls 2>/dev/null >&2", ("ls",)),
            ("echo hi # && rm x", ("echo",)),
            ("git log --oneline | head -5", ("git", "head")),
            ("watch -n 1 'rm x'", ("watch", "rm")),
        ],
    )
    def test_every_program_is_listed(self, command: str, programs: tuple[str, ...]) -> None:
        assert programs_of(command)[0] == programs


class TestDenyAlwaysWins:
    @pytest.mark.parametrize(
        "command",
        [
            "rm -rf /",
            "RM x",
            "/bin/rm x",
            "ls && rm x",
            "ls; rm x",
            "ls | xargs rm",
            "echo $(rm x)",
            "echo `rm x`",
            "sudo rm x",
            "env rm x",
            "sh -c 'rm x'",
            "find . -exec rm {} +",
            "FOO=bar rm x",
            "ncat -l 1",
            "(rm x)",
            "true\nrm x",
        ],
    )
    def test_denied_program_is_refused_even_with_allow_star(self, command: str) -> None:
        verdict = DENY_RM.check(command)
        assert not verdict.allowed
        assert "deny" in verdict.reason

    def test_allowed_command_passes(self) -> None:
        assert DENY_RM.check("ls -la | grep x").allowed


class TestUncheckable:
    @pytest.mark.parametrize(
        "command",
        [
            "$CMD x",
            "${CMD} x",
            "$(echo rm) x",
            "`echo rm` x",
            "{rm,-rf,/}",
            "r* x",
            "$'\\x72m' x",
            "cat <<EOF\nrm\nEOF",
            "echo ${x:-$(rm y)}",
            "case x in a) rm;; esac",
            "f() { rm x; }",
            "echo 'unterminated",
            'echo "unterminated',
            "echo $(ls",
            'sh -c "$X"',
            "eval $X",
            "",
            "   ",
            "a=1",
            "echo \x00",
        ],
    )
    def test_command_that_cannot_be_checked_is_refused(self, command: str) -> None:
        assert not ShellPolicy(ShellConfig()).check(command).allowed


class TestAllowList:
    def test_default_allowlist_matches_the_rust_version(self) -> None:
        assert len(DEFAULT_ALLOW) == 33 and "git" in DEFAULT_ALLOW and "rm" not in DEFAULT_ALLOW

    def test_replace_defaults_keeps_only_configured_globs(self) -> None:
        policy = ShellPolicy(ShellConfig(allow=["git*", "*lint"], replace_defaults=True))
        assert policy.check("git status && git-lfs ls && ruff-lint x").allowed
        assert not policy.check("ls").allowed

    def test_defaults_plus_allow(self) -> None:
        policy = ShellPolicy(ShellConfig(allow=["make"]))
        assert policy.check("ls && make").allowed
        assert not policy.check("ls && cmake").allowed

    def test_harmless_builtins_need_no_entry(self) -> None:
        policy = ShellPolicy(ShellConfig(allow=["git"], replace_defaults=True))
        assert policy.check("cd repo && git status").allowed

    def test_deny_glob_also_beats_builtins(self) -> None:
        assert not ShellPolicy(ShellConfig(deny=["cd"])).check("cd /").allowed

    @pytest.mark.parametrize(
        "command",
        ["ls | wc", "ls > x", "ls && ls", "ls; ls", "echo $(ls)", "echo `ls`", "ls &", "ls\nls"],
    )
    def test_operators_disabled_refuses_every_operator(self, command: str) -> None:
        policy = ShellPolicy(ShellConfig(allow_operators=False))
        verdict = policy.check(command)
        assert not verdict.allowed and "allow_operators" in verdict.reason

    def test_operators_disabled_still_allows_quoted_operator_text(self) -> None:
        assert ShellPolicy(ShellConfig(allow_operators=False)).check("echo 'a;b|c'").allowed

    def test_enforce_raises_policy_error_with_the_reason(self) -> None:
        with pytest.raises(PolicyError, match="denied"):
            DENY_RM.enforce("ls && rm x")


class TestLaunchers:
    @pytest.mark.parametrize(
        ("command", "programs"),
        [
            ("timeout --signal=KILL 10 ls", ("timeout", "ls")),
            ("timeout -sKILL 10 ls", ("timeout", "ls")),
            ("env -u HOME -C /tmp ls", ("env", "ls")),
            ("env --unset=HOME ls", ("env", "ls")),
            ("nice -5 ls", ("nice", "ls")),
            ("xargs -0 -r -n 1 -P2 ls", ("xargs", "ls")),
            ("xargs -i{} cat {}", ("xargs", "cat")),
            ("taskset -c 0 ls", ("taskset", "ls")),
            ("taskset -p 0x1 1234", ("taskset",)),
            ("chrt -p 1234", ("chrt",)),
            ("ionice -c 3 ls", ("ionice", "ls")),
            ("ionice -p 1234", ("ionice",)),
            ("prlimit --pid 1234 --nofile=10", ("prlimit",)),
            ("unshare -m -- ls", ("unshare", "ls")),
            ("setpriv --no-new-privs ls", ("setpriv", "ls")),
            ("script -q -c 'ls' /dev/null", ("script", "ls")),
            ("flock -w 5 lock ls", ("flock", "ls")),
            ("watch -x ls -l", ("watch", "ls")),
            ("busybox ls", ("busybox", "ls")),
            ("command -v ls", ("command",)),
            ("trap 'ls' EXIT", ("trap", "ls")),
            ("trap - EXIT", ("trap",)),
            ("sed -i.bak -e 's/a/b/g' f", ("sed",)),
            ("awk 'a || b { print }' f", ("awk",)),
        ],
    )
    def test_what_a_launcher_runs_is_found(self, command: str, programs: tuple[str, ...]) -> None:
        assert programs_of(command)[0] == programs

    @pytest.mark.parametrize(
        ("command", "reason"),
        [
            ("env --frobnicate ls", "unknown option '--frobnicate' of 'env'"),
            ("timeout -Z 5 ls", "unknown option '-Z' of 'timeout'"),
            ("unshare", "starts an interactive shell"),
            ("chroot /", "starts an interactive shell"),
            ("sudo -s", "runs something that cannot be checked"),
            ("strace -o '|sh' ls", "runs something that cannot be checked"),
            ("fakeroot -l lib.so ls", "runs something that cannot be checked"),
            ("bash script.sh", "without -c"),
            ("sh -s", "reads commands we cannot see"),
            (". ./x.sh", "runs a script file"),
            ("source x.sh", "runs a script file"),
            ("sed -f script.sed f", "reads a script file"),
            ("awk -f prog.awk f", "loads program files"),
            ("tar -xIcmd -f a.tar", "run a program"),
            ("alias ls=rm", "alias"),
            ("hash -p /tmp/x ls", "hash -p"),
            ("declare -n ref=PATH", "-i/-n"),
            ("LD_PRELOAD=./x.so ls", "setting LD_PRELOAD"),
            ("for PATH in /tmp; do ls; done", "setting PATH"),
            ("echo ${x@P}", "not a plain parameter expansion"),
        ],
    )
    def test_what_cannot_be_seen_is_refused_with_the_reason(
        self, command: str, reason: str
    ) -> None:
        verdict = ShellPolicy(ShellConfig()).check(command)
        assert not verdict.allowed and reason in verdict.reason, verdict.reason
