"""The shell policy against what dash and bash really run.

Each line below is run by `dash -c` and `bash -c` in a scratch directory whose PATH starts
with shims: `evilcmd` (and an `ls` planted in `./evilbin`) append their name to a log
instead of doing anything. An attack is real when a shell logged `evilcmd`; the policy
(the default `allow = ["*"]` with `deny = ["evilcmd"]`, so only parsing stands in the way)
must refuse every such line. For the ordinary lines the other way round holds: every shim
program a shell ran is one the policy listed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from oxydra.config.schema import ShellConfig
from oxydra.security import ShellPolicy

SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]
POLICY = ShellPolicy(ShellConfig(deny=["evilcmd"]))
LEAVES = ("evilcmd", "ls", "cat", "grep", "wc", "sort", "head", "uniq", "cut", "tr")

ATTACKS = [
    # parser disagreements (issue 12)
    "echo ${x:-'{'}; evilcmd; echo }",
    "true &>x evilcmd",
    "env -S'evilcmd'",
    "env --split-string=evilcmd",
    "env --split=evilcmd",
    # launchers it did not see through
    "unshare evilcmd",
    "chrt -o 0 evilcmd",
    "prlimit --nofile=256 evilcmd",
    "setpriv evilcmd",
    "script -qc evilcmd /dev/null",
    "echo x | sed '1e evilcmd'",
    "echo x | sed -n 's/x/evilcmd/ep'",
    "echo x | sed -e p -e '$e evilcmd'",
    "tar -cf /dev/null --checkpoint=1 --checkpoint-action=exec=evilcmd marker",
    "tar -cf /dev/null --checkpoint=1 --checkpoint-a=exec=evilcmd marker",
    "echo evilcmd | sh",
    "echo evilcmd | bash",
    "awk 'BEGIN { system(\"evilcmd\") }'",
    "awk 'BEGIN { print | \"evilcmd\" }'",
    "echo evilcmd | xargs env",
    "echo evilcmd | xargs -I X sh -c X",
    "echo evilcmd | xargs sh -c",
    "find evilbin -name ls -exec {} \\;",
    "flock lockfile -c evilcmd",
    "nice -n 1 nohup timeout 5 stdbuf -o0 evilcmd",
    "git -c alias.x='!evilcmd' x",
    "echo '!evilcmd' | ed",
    "vim -es -c '!evilcmd' -c 'q!' </dev/null",
    "gdb -batch -ex '!evilcmd'",
    "ssh -o ProxyCommand=evilcmd -o BatchMode=yes -o ConnectTimeout=2 host",
    # the environment decides what runs
    "PATH=./evilbin:$PATH ls",
    "export PATH=./evilbin:$PATH; ls",
    "read PATH < pathfile; ls",
    "unset PATH; : ${PATH:=./evilbin}; ls",
    "BASH_ENV=./evil.sh bash -c true",
    "env ENV=./evil.sh sh -i -c true </dev/null",
    # bash evaluates data as code
    "y='a[$(evilcmd)]'; echo $((y))",
    "y='a[$(evilcmd)]'; [[ $y -eq 1 ]]",
    "y='a[$(evilcmd)]'; let y",
    "printf -v 'a[$(evilcmd)]' x",
    '$"evilcmd"',
]
ORDINARY = [
    "ls -la",
    "cat marker | grep m | wc -l",
    "ls && cat marker || echo no",
    "echo $(ls) `cat marker`",
    "( cd . && ls )",
    "x=1; echo ${x:-default} ${#x} ${x%%.*}",
    "nice -n 5 timeout 5 ls",
    "env -i PATH=/usr/bin:/bin ls",
    "find marker -exec cat {} \\;",
    "ls | xargs -n1 cat",
    "sh -c 'ls | sort | uniq'",
    "bash -o pipefail -c 'cat marker | head -1'",
    "echo a,b | cut -d, -f1 | tr a-z A-Z",
    "echo x | sed -n 's/x/y/p'",
    "awk -F: '{ print $1 }' marker",
    "tar -cf /dev/null --checkpoint=1 marker",
    "for f in marker; do cat $f; done",
    "if [ -f marker ]; then cat marker; fi",
    "echo $((1 + 2))",
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    shims = tmp_path / "shims"
    evil = tmp_path / "evilbin"
    for directory in (shims, evil):
        directory.mkdir()
    for name in LEAVES:
        _shim(shims / name, name)
    _shim(evil / "ls", "evilcmd")
    (tmp_path / "evil.sh").write_text("evilcmd\n")
    (tmp_path / "pathfile").write_text(f"{evil}\n")
    (tmp_path / "marker").write_text("m\n")
    return tmp_path


def _shim(path: Path, logged: str) -> None:
    path.write_text(f'#!/bin/sh\necho {logged} >> "$SHIM_LOG"\n')
    path.chmod(0o755)


def _ran(shell: str, line: str, where: Path) -> list[str]:
    log = where / f"log-{shell}"
    log.write_text("")
    env = {
        "PATH": f"{where / 'shims'}:/usr/local/bin:/usr/bin:/bin",
        "SHIM_LOG": str(log),
        "HOME": str(where),
    }
    subprocess.run(
        [shell, "-c", line], cwd=where, env=env, capture_output=True, timeout=30, check=False
    )
    return log.read_text().split()


@pytest.mark.skipif(not SHELLS, reason="neither dash nor bash is installed")
@pytest.mark.parametrize("line", ATTACKS)
def test_every_line_a_shell_runs_evilcmd_from_is_refused(line: str, sandbox: Path) -> None:
    ran = {shell: "evilcmd" in _ran(shell, line, sandbox) for shell in SHELLS}
    needs = line.split()[0].split("=")[0]
    if not any(ran.values()) and needs in ("unshare", "chrt", "prlimit", "setpriv", "script"):
        pytest.skip(f"{needs} cannot run here")  # the policy is still checked below
    assert any(ran.values()), f"not a real attack on {SHELLS}: {line!r}"
    verdict = POLICY.check(line)
    assert not verdict.allowed, (line, ran, verdict.programs)


@pytest.mark.parametrize("line", ATTACKS)
def test_the_policy_refuses_every_attack_line(line: str) -> None:
    """The same table without shells: holds on machines with neither installed."""
    assert not POLICY.check(line).allowed


@pytest.mark.skipif(not SHELLS, reason="neither dash nor bash is installed")
@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_lines_are_allowed_and_list_every_program_the_shells_ran(
    line: str, sandbox: Path
) -> None:
    verdict = POLICY.check(line)
    assert verdict.allowed, verdict.reason
    for shell in SHELLS:
        ran = set(_ran(shell, line, sandbox))
        assert ran <= set(verdict.programs), (shell, ran, verdict.programs)
