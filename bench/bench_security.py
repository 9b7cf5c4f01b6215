"""Bounds on hostile input (issue 12): scrubber cost, re-encoded secrets caught, bombs inflated.

Run from the repository root: `python -m bench security`. Figures are CPU seconds of this
thread (`time.thread_time`), so other load on the machine does not inflate them.

1. Every scrubber rule on hostile 1 MiB inputs (tests/security/cases_redos.py): the worst
   input per rule, and the whole scrubber's worst. Linear rules stay well under a second.
2. A 10 MiB hostile tool output through the registry (cut, then scrubbed in a thread).
3. Known-secret re-encodings (tests/security/cases_reencoded.py): caught by exact matching
   of the forms the scrubber knew before, and by the normalised matcher now; and the cost
   of each per MiB of ordinary output.
4. Decompression bombs: output kept and peak Python memory while inflating.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import importlib.util
import json
import re
import sys
import time
import tracemalloc
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, quote_plus

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from oxydra.config.schema import ToolsConfig  # noqa: E402
from oxydra.security import Scrubber, Workspace  # noqa: E402
from oxydra.security._inflate import BodyDecoder  # noqa: E402
from oxydra.security._known import aligned_base64_cores  # noqa: E402
from oxydra.security._secret_rules import SHAPE_RULES  # noqa: E402
from oxydra.tools import LocalFileBackend, ToolExecutionContext, ToolRegistry, tool  # noqa: E402


def _cases(name: str) -> ModuleType:
    path = ROOT / "tests" / "security" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _cpu(work: object) -> float:
    began = time.thread_time()
    work()  # type: ignore[operator]
    return time.thread_time() - began


def rules_on_hostile_input() -> None:
    redos = _cases("cases_redos")
    worst_all = (0.0, "", "")
    for rule in SHAPE_RULES:
        worst = max(
            (_cpu(lambda t=text, r=rule: sum(1 for _ in r.hits(t))), label)  # type: ignore[misc]
            for label, text in redos.hostile_inputs(rule)
        )
        worst_all = max(worst_all, (worst[0], rule.name, worst[1]))
        if rule.name in ("private-key", "curl-user", "authorization-header"):
            print(f"  rule {rule.name:22s} worst {worst[0]:.3f} s on {worst[1][:40]}")
    print(f"  every rule: worst {worst_all[0]:.3f} s ({worst_all[1]} on {worst_all[2][:40]})")
    scrubber = Scrubber(["known-secret-value-0123456789"])
    pipeline = max(
        (_cpu(lambda t=text: scrubber.scrub(t)), label)  # type: ignore[misc]
        for label, text in redos.pipeline_inputs()
    )
    print(f"  whole scrubber: worst {pipeline[0]:.3f} s per MiB on {pipeline[1][:40]}")


async def registry_on_hostile_output() -> None:
    import tempfile

    text = "curl " * (2 << 20)  # 10 MiB

    @tool(timeout=60)
    async def hostile(n: int = 1) -> str:
        """Return 10 MiB of `curl `.

        Args:
            n: Ignored.
        """
        return text

    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("shared", "tmp", "vault"):
            (Path(tmp) / sub).mkdir()
        ctx = ToolExecutionContext(
            user_id="u", session_id="s", workspace=LocalFileBackend(Workspace.for_user(tmp))
        )
        registry = ToolRegistry(ToolsConfig(), scrubber=Scrubber(["sk-bench-0123456789abc"]))
        registry.register(hostile)
        began = time.perf_counter()
        result = await registry.execute("hostile", {}, ctx)
        took = time.perf_counter() - began
    print(
        f"  registry, 10 MiB of 'curl ': {took:.3f} s wall, {len(result.text)} chars shown, "
        f"original_bytes={result.original_bytes}"
    )


def _exact_forms(value: str) -> re.Pattern[str]:
    """The spellings the scrubber matched before normalised matching (for comparison)."""
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    forms.add(binascii.hexlify(raw).decode())
    for data in (raw, raw + b"\n"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(data).decode()
            forms.update({encoded, encoded.rstrip("=")})
    forms.update(aligned_base64_cores(raw))
    ordered = sorted((f for f in forms if len(f) >= 8), key=len, reverse=True)
    return re.compile("|".join(re.escape(f) for f in ordered))


def reencoded_secrets() -> None:
    cases = _cases("cases_reencoded")
    secret = cases.SECRET
    exact = _exact_forms(secret)
    scrubber = Scrubber([secret], entropy=False)
    caught_before = caught_now = 0
    rows = []
    for encoding, text in cases.reencodings():
        before = exact.search(text) is not None
        now = "[REDACTED]" in scrubber.scrub(text)
        caught_before += before
        caught_now += now
        rows.append(f"{encoding}:{'+' if before else '-'}{'+' if now else '-'}")
    total = len(rows)
    print(f"  re-encodings caught: before {caught_before}/{total}, now {caught_now}/{total}")
    print("  per encoding (before/now): " + " ".join(rows))
    ordinary = ("The quick brown fox jumps over the lazy dog 0123456789.\n" * 20000)[: 1 << 20]
    old = _cpu(lambda: exact.sub("[REDACTED]", ordinary))
    new = _cpu(lambda: scrubber._known.spans(ordinary))  # type: ignore[union-attr]
    print(f"  known-value pass per MiB of ordinary text: exact {old:.3f} s, normalised {new:.3f} s")
    holding = ordinary[: len(ordinary) // 2] + " ".join(secret) + ordinary[len(ordinary) // 2 :]
    slow = _cpu(lambda: scrubber._known.spans(holding))  # type: ignore[union-attr]
    print(f"  the same MiB holding the secret spaced out (maps built): {slow:.3f} s")


def decompression_bombs() -> None:
    for layers, size in ((1, 200 << 20), (2, 300 << 20)):
        body = b"\0" * size
        for _ in range(layers):
            body = gzip.compress(body, compresslevel=9)
        decoder = BodyDecoder(["gzip"] * layers, max_output=5 << 20)
        tracemalloc.start()
        began = time.thread_time()
        kept = 0
        for offset in range(0, len(body), 65536):
            kept += len(decoder.feed(body[offset : offset + 65536]))
            if decoder.done:
                break
        took = time.thread_time() - began
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"  bomb {'gzip, ' * (layers - 1)}gzip: {len(body)} bytes in, {kept >> 20} MiB kept,"
            f" truncated={decoder.truncated}, peak {peak / 2**20:.1f} MiB, {took:.3f} s"
        )


def main() -> None:
    print("scrubber rules on hostile 1 MiB inputs (CPU s):")
    rules_on_hostile_input()
    print("tool registry:")
    asyncio.run(registry_on_hostile_output())
    print("known secrets re-encoded:")
    reencoded_secrets()
    print("decompression bombs (5 MiB cap):")
    decompression_bombs()


if __name__ == "__main__":
    main()
