"""`make demo`: Oxydra with the bundled fake model, for a first look without any provider.

The fake LLM (`oxydra.testing.fake_llm`) plays `DEMO_SCRIPT`, a fixed tour that answers the
same whatever is typed, and says so in every reply: a greeting, a read-only tool call, a
file write that waits for your approval in the TUI, then a closing note; after that it
keeps replying that it is a script. The guest runs for the user `demo` as a local process
(`runner --insecure`), so the real workspace, tools, approvals and TUI are what you see.
Leaving the TUI stops the demo guest and the fake model.

`python -m oxydra.testing.demo --offer` is what `make run` calls when the selected provider
has no key: it says so and, on a terminal, offers the demo.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from oxydra.runner._selfcmd import archive_path, self_command, self_environment
from oxydra.testing._fake_script import Call, Reply, Script, Step

DEMO_USER = "demo"
DEMO_PROVIDER = "demo"
DEMO_MODEL = "oxydra-demo-script"
LABEL = "[demo: scripted fake model, not an LLM]"
DEMO_SCRIPT: list[Step] = [
    Reply(
        text=f"{LABEL} Hello! I answer from a fixed script, so whatever you type, the tour "
        "goes on the same way. Send anything and I will use a tool.",
        chunk=6,
        delay=0.02,
    ),
    Reply(
        text=f"{LABEL} First a read-only tool: listing your shared folder.\n",
        tool_calls=[Call(name="file_list", arguments={"path": "/shared"})],
    ),
    Reply(
        text=f"{LABEL} That was file_list, run in your workspace's sandbox. Next I will write "
        "a file: writing has side effects, so this demo asks for your approval (y/n) first. "
        "Send anything to go on.",
        chunk=6,
        delay=0.02,
    ),
    Reply(
        text=f"{LABEL} Writing /shared/hello-from-oxydra.txt (answer y or n below).\n",
        tool_calls=[
            Call(
                name="file_write",
                arguments={
                    "path": "/shared/hello-from-oxydra.txt",
                    "content": "Written by the Oxydra demo, after you approved it.\n",
                },
            )
        ],
    ),
    Reply(
        text=f"{LABEL} That is the tour: the TUI streams answers, tools run in the sandbox, "
        "and side effects wait for you. To talk to a real model, set OPENAI_API_KEY, "
        "ANTHROPIC_API_KEY, GEMINI_API_KEY or API_KEY, or point Oxydra at a local server "
        "(README, 'Providers'), then run `make run`. /help lists the TUI's commands; "
        "Ctrl+D leaves.",
        chunk=8,
        delay=0.01,
    ),
]


def demo_overrides(base_url: str) -> list[str]:
    """The `--set` flags that point the guest at the fake model and turn on approvals."""
    entry = f"providers.registry.{DEMO_PROVIDER}"
    return [
        f"{entry}.provider_type=openai",
        f"{entry}.base_url={base_url}",
        f"selection.provider={DEMO_PROVIDER}",
        f"selection.model={DEMO_MODEL}",
        "tools.approval.require=side_effecting,privileged",
    ]


@contextlib.contextmanager
def fake_model(script_dir: Path) -> Iterator[str]:
    """The fake LLM as a child process playing the demo script; yields its base URL."""
    import msgspec

    script = script_dir / "demo-script.json"
    script.write_bytes(msgspec.json.encode(Script(conversations={"default": DEMO_SCRIPT})))
    archive = archive_path()
    if archive is None:
        argv = [sys.executable, "-m", "oxydra.testing.fake_llm"]
    else:  # from oxydra.pyz: the module runs through the archive's bootstrap
        argv = [sys.executable, "-c", _ARCHIVE_BOOT.format(archive=str(archive))]
    argv += ["--port", "0", "--script", str(script)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, env=self_environment(os.environ)
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("FAKE_LLM_URL="):
            raise SystemExit("demo: the fake model did not start")
        yield line.strip().split("=", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


_ARCHIVE_BOOT = (
    "import runpy, sys; g = runpy.run_path({archive!r}, run_name='boot'); g['_prepare_path']();"
    "sys.argv = ['fake_llm', *sys.argv[1:]];"
    "from oxydra.testing.fake_llm import main; sys.exit(main())"
)


def run_demo() -> int:
    """Start the fake model and a demo guest, open the TUI on it, then stop both."""
    runner = [*self_command("runner"), "-u", DEMO_USER, "--insecure"]
    env = self_environment(os.environ)
    cache = Path.home() / ".oxydra" / "demo"
    cache.mkdir(parents=True, exist_ok=True)
    with fake_model(cache) as url:
        sets = [arg for item in demo_overrides(url) for arg in ("--set", item)]
        print(f"{LABEL}\nstarting the demo guest (user '{DEMO_USER}')...", flush=True)
        started = subprocess.run([*runner, "restart", *sets], env=env)
        if started.returncode != 0:
            return started.returncode
        try:
            return subprocess.run([*runner, "--tui"], env=env).returncode
        finally:
            subprocess.run([*runner, "stop"], env=env, capture_output=True)


def offer_demo(stdin_is_tty: bool) -> int:
    """After `make run` failed: offer the demo when the reason is a missing provider key."""
    if not _missing_key():
        return 1  # another problem; its message was already printed
    print(
        "\nNo provider key is set, so there is no model to talk to yet.\n"
        "Oxydra has a built-in demo: a scripted fake model (not an LLM) that shows the TUI, "
        "a tool call and an approval."
    )
    if not stdin_is_tty:
        print("Run it with: make demo")
        return 1
    answer = input("Start the demo now? [Y/n] ").strip().lower()
    if answer not in ("", "y", "yes"):
        print("Set a key (see above) and run `make run` again; `make demo` starts the demo.")
        return 1
    return run_demo()


def _missing_key() -> bool:
    from oxydra.config.credentials import key_required, resolve_api_key
    from oxydra.config.loader import load_agent_config
    from oxydra.core.errors import ConfigError

    try:
        config = load_agent_config().config
    except ConfigError:
        return False
    entry = config.providers.registry.get(config.selection.provider)
    if entry is None:
        return False
    key, _ = resolve_api_key(entry, os.environ)
    return key is None and key_required(entry)


def main(argv: list[str] | None = None) -> int:
    """`python -m oxydra.testing.demo [--offer]`."""
    parser = argparse.ArgumentParser(
        prog="python -m oxydra.testing.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--offer", action="store_true", help="offer the demo if no provider key is set"
    )
    args = parser.parse_args(argv)
    if args.offer:
        return offer_demo(sys.stdin.isatty())
    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
