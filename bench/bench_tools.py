"""Tools and security figures: registry overhead per call, and the hostile case tables.

Run from the repository root: `python bench/bench_tools.py` (or through `make bench`).
The case tables are the ones the tests use, loaded from tests/security by path.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import random
import statistics
import string
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from oxydra.core.errors import PolicyError, ToolError  # noqa: E402
from oxydra.security import (  # noqa: E402
    Openat2Opener,
    Scrubber,
    SsrfGuard,
    WalkOpener,
    Workspace,
    openat2_works,
)
from oxydra.tools import (  # noqa: E402
    FILE_TOOLS,
    LocalFileBackend,
    ToolExecutionContext,
    ToolRegistry,
    tool,
)


def _cases(name: str) -> ModuleType:
    path = ROOT / "tests" / "security" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.3f} ms"


# -- registry overhead ----------------------------------------------------------------------


def _output_100kb(ws_root: Path) -> str:
    rng = random.Random(1)
    lines = []
    while sum(len(line) + 1 for line in lines) < 100_000:
        kind = rng.randrange(4)
        if kind == 0:
            lines.append(f"{ws_root}/shared/src/module_{rng.randrange(999)}.py:12: warning")
        elif kind == 1:
            lines.append(f"commit {''.join(rng.choices('0123456789abcdef', k=40))}")
        elif kind == 2:
            lines.append(
                f"request_id={rng.getrandbits(128):032x} status=200 bytes={rng.randrange(9999)}"
            )
        else:
            lines.append(" ".join(rng.choices(["lorem", "ipsum", "dolor", "sit", "amet"], k=12)))
    return "\n".join(lines)[:100_000]


async def _registry_overhead() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "alice"
        for sub in ("shared", "tmp", "vault"):
            (root / sub).mkdir(parents=True)
        text = _output_100kb(root)
        (root / "shared" / "big.txt").write_text(text)

        @tool(timeout=10)
        async def big(n: int = 1) -> str:
            """Return a 100 KB output.

            Args:
                n: Ignored.
            """
            return text

        secrets = ["sk-bench-" + "".join(random.Random(2).choices(string.ascii_letters, k=40))]
        registry = ToolRegistry(scrubber=Scrubber(secrets))
        registry.register(big)
        registry.register_all(FILE_TOOLS)
        workspace = Workspace.for_user(root)
        ctx = ToolExecutionContext(
            user_id="u", session_id="s", workspace=LocalFileBackend(workspace)
        )
        whole, validate, scrub, virtual, read = [], [], [], [], []
        for _ in range(60):
            start = time.perf_counter()
            await registry.execute("big", {"n": "1"}, ctx)
            whole.append(time.perf_counter() - start)
            start = time.perf_counter()
            big.validate({"n": "1"})
            validate.append(time.perf_counter() - start)
            start = time.perf_counter()
            registry.scrubber.scrub(text)
            scrub.append(time.perf_counter() - start)
            start = time.perf_counter()
            workspace.to_virtual(text)
            virtual.append(time.perf_counter() - start)
            start = time.perf_counter()
            await registry.execute("file_read", {"path": "big.txt"}, ctx)
            read.append(time.perf_counter() - start)
    print("Registry overhead per call on a 100 KB output (median of 60):")
    print(f"  execute() total (validate + paths + scrub + truncate): {_median_ms(whole)}")
    print(f"    argument validation:                               {_median_ms(validate)}")
    print(f"    host-path rewriting:                               {_median_ms(virtual)}")
    print(f"    scrubbing 100 KB:                                  {_median_ms(scrub)}")
    mb_s = 0.1 / statistics.median(scrub)
    print(f"    scrubber throughput:                               {mb_s:.1f} MB/s")
    print(f"  file_read of a 100 KB file through the jail + policy: {_median_ms(read)}")


# -- SSRF -------------------------------------------------------------------------------------


async def _ssrf() -> None:
    cases = _cases("cases_ssrf")
    blocked, allowed, wrong = 0, [], []
    for case in cases.ALL_CASES:
        guard = SsrfGuard(resolver=cases.StubResolver(case.dns), allowlist=case.allowlist)
        try:
            await guard.vet(case.url)
            verdict = "allow"
            allowed.append(case.id)
        except PolicyError:
            verdict = "block"
            blocked += 1
        if verdict != case.expect:
            wrong.append(case.id)
    expected_allow = sum(1 for c in cases.ALL_CASES if c.expect == "allow")
    print(f"SSRF inputs tried: {len(cases.ALL_CASES)}, blocked: {blocked}, allowed: {len(allowed)}")
    print(f"  positive controls allowed: {len(allowed)}/{expected_allow}: {', '.join(allowed)}")
    print(f"  verdicts differing from the table: {len(wrong)} {wrong or ''}")
    print("  redirect hops re-vetted: yes (max 5); resolver calls per hop: 1 (IP pinned)")


# -- jail -------------------------------------------------------------------------------------


def _jail() -> None:
    cases = _cases("cases_jail")
    openers: list[Any] = [WalkOpener()]
    if openat2_works():
        openers.insert(0, Openat2Opener())
    for opener in openers:
        escaped, wrong = 0, []
        for case in cases.JAIL_CASES:
            with tempfile.TemporaryDirectory() as tmp:
                outcome = cases.run_case(case, Path(tmp), opener)
            escaped += outcome.escaped
            if not outcome.matches(case.expect):
                wrong.append(case.id)
        print(
            f"Jail cases ({opener.name}): tried {len(cases.JAIL_CASES)}, escaped {escaped}, "
            f"verdicts differing from the table {len(wrong)} {wrong or ''}"
        )
        print(f"  TOCTOU race ({opener.name}): {_race(cases, opener, 10_000)}")


def _race(cases: ModuleType, opener: Any, attempts: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        tree = cases.Tree(Path(tmp))
        shared = tree.shared
        (shared / "dir").mkdir()
        (shared / "dir" / "f").write_text("INSIDE")
        (tree.outside / "dir" / "f").write_text("OUTSIDE-SECRET swapped")
        os.symlink(str(tree.outside / "dir"), shared / "dir_link")
        workspace = Workspace.for_user(tree.ws, opener=opener)
        stop = threading.Event()

        def racer() -> None:
            while not stop.is_set():
                os.rename(shared / "dir", shared / "dir_tmp")
                os.rename(shared / "dir_link", shared / "dir")
                os.rename(shared / "dir", shared / "dir_link")
                os.rename(shared / "dir_tmp", shared / "dir")

        thread = threading.Thread(target=racer)
        thread.start()
        outside = inside = refused = 0
        try:
            for _ in range(attempts):
                try:
                    text, _ = workspace.read_text("dir/f")
                except (PolicyError, ToolError):
                    refused += 1
                    continue
                outside += "OUTSIDE" in text
                inside += text == "INSIDE"
        finally:
            stop.set()
            thread.join()
    return f"attempts {attempts}, outside reads {outside}, inside reads {inside}, refused {refused}"


# -- scrubbing ---------------------------------------------------------------------------------


def _scrubbing() -> None:
    cases = _cases("cases_secrets")
    scrubber = Scrubber()
    fixtures = cases.secret_cases()
    caught = [c for c in fixtures if c.secret not in scrubber.scrub(c.text)]
    families = {c.shape for c in caught}
    print(
        f"Secret shapes caught: {len(families)}/31 families, {len(caught)}/{len(fixtures)} fixtures"
    )
    print(f"  carrier plain:         {len(caught)}/{len(fixtures)}")
    split = sum(_caught_split(scrubber, c) for c in fixtures)
    print(f"  carrier split stream:  {split}/{len(fixtures)} (every split point)")
    inside_json = sum(c.secret not in scrubber.scrub(json.dumps({"out": c.text})) for c in fixtures)
    print(f"  carrier JSON-escaped:  {inside_json}/{len(fixtures)}")
    known = "".join(random.Random(5).choices(string.ascii_letters + string.digits, k=40))
    forms = {
        "plain": known,
        "base64": base64.b64encode(known.encode()).decode(),
        "echo|base64": base64.b64encode((known + "\n").encode()).decode(),
        "url-encoded": quote(known, safe=""),
        "json": json.dumps({"k": known}),
        "hex": known.encode().hex(),
    }
    ok = [
        name for name, text in forms.items() if text not in Scrubber([known]).scrub(f"x {text} y")
    ]
    print(f"  known value in all carriers: {len(ok)}/{len(forms)} ({', '.join(ok)})")
    controls = cases.controls()
    kept = [c for c in controls if scrubber.scrub(c.text) == c.text]
    print(f"False-positive controls kept: {len(kept)}/{len(controls)}")
    tokens = [t for c in controls for t in c.text.split()]
    altered = sum(1 for t in tokens if scrubber.scrub(t) != t)
    share = altered / len(tokens)
    print(f"  tokens altered in the control corpus: {altered}/{len(tokens)} ({share:.1%})")


def _caught_split(scrubber: Scrubber, case: Any) -> bool:
    text = "filler line\n" * 30 + case.text + "\n" + "tail line\n" * 30
    start = len("filler line\n" * 30)
    for split in range(start - 5, start + len(case.text) + 5):
        stream = scrubber.stream(window=128)
        out = stream.feed(text[:split]) + stream.feed(text[split:]) + stream.flush()
        if case.secret in out:
            return False
    return True


def main() -> None:
    """Print every figure."""
    print(f"Python {sys.version.split()[0]}, openat2 available: {openat2_works()}")
    asyncio.run(_registry_overhead())
    asyncio.run(_ssrf())
    _jail()
    _scrubbing()


if __name__ == "__main__":
    main()
