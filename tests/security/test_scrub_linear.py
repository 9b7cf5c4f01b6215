"""Every scrubber rule is linear: hostile 128 KiB inputs finish under a generous CPU ceiling.

A quadratic rule takes several seconds of CPU on these inputs (the cheapest quadratic
search, `a*b` over 128 Ki `a`s, 6 s; the issue measured 2-4 s for 45 KB, about 17-34 s at
this size), a linear one at most 0.09 s (the slowest step measured: the whole scrubber on
`https://a:` repeated), so the 2 s ceiling separates them by a factor of three or more
above and twenty below without timing anything finely: it is CPU time of the child's
thread, which a loaded machine does not inflate. Larger inputs cost the suite CPU in
proportion for no sharper verdict (256 KiB took 11 s of CPU in all, 128 KiB 5.7 s).
The work runs in a child process that reports each step before starting it: if a rule
regresses, the test fails after a bounded wait naming the rule and input that hung.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oxydra.security import Scrubber
from oxydra.security._secret_rules import SHAPE_RULES
from tests.security.cases_redos import GENERIC_SEEDS, hostile_inputs, pipeline_inputs

SIZE = 128 << 10  # characters per hostile input
CPU_CEILING_SECS = 2.0  # per rule and input; linear rules take < 0.1 s
TOTAL_TIMEOUT_SECS = 600.0
_ROOT = Path(__file__).resolve().parents[2]

SHARDS = 6  # the steps are dealt round-robin to this many children, run as separate tests

_CHILD = """
import functools, sys, time
from oxydra.security import Scrubber
from oxydra.security._secret_rules import SHAPE_RULES
from tests.security.cases_redos import hostile_inputs, pipeline_inputs

shard, shards, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def count_hits(rule, text):
    return sum(1 for _ in rule.hits(text))

def steps():
    for rule in SHAPE_RULES:
        for label, text in hostile_inputs(rule, size):
            yield f"{rule.name} {label}", functools.partial(count_hits, rule, text)
    scrubber = Scrubber(["known-secret-value-0123456789"])
    for label, text in pipeline_inputs(size):
        yield f"scrub {label}", functools.partial(scrubber.scrub, text)

for index, (label, work) in enumerate(steps()):
    if index % shards != shard:
        continue
    print("start", label, flush=True)
    began = time.thread_time()
    work()
    print("done", f"{time.thread_time() - began:.4f}", label, flush=True)
"""


def _step_count() -> int:
    """How many steps the child deals out (labels only: the inputs are built small)."""
    rules = sum(1 for rule in SHAPE_RULES for _ in hostile_inputs(rule, 64))
    return rules + sum(1 for _ in pipeline_inputs(64))


@pytest.mark.parametrize("shard", range(SHARDS))
def test_every_rule_and_the_whole_scrubber_stay_linear_on_hostile_inputs(shard: int) -> None:
    lines: queue.Queue[str | None] = queue.Queue()
    started, slow, steps = "", [], 0
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(shard), str(SHARDS), str(SIZE)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=_ROOT,
    ) as child:
        threading.Thread(target=_pump, args=(child, lines), daemon=True).start()
        deadline = time.monotonic() + TOTAL_TIMEOUT_SECS
        try:
            while (line := lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
                kind, _, rest = line.rstrip("\n").partition(" ")
                if kind == "start":
                    started = rest
                    continue
                cpu, _, label = rest.partition(" ")
                steps += 1
                if float(cpu) > CPU_CEILING_SECS:
                    slow.append(f"{label}: {cpu} s")
        except queue.Empty:
            raise AssertionError(f"scrubbing hung on {started}") from None
        finally:
            child.kill()
    assert child.returncode == 0, f"child failed on {started}"
    assert not slow, slow
    assert steps == len(range(shard, _step_count(), SHARDS))  # its share of every step


def test_the_shards_deal_out_every_rule_and_the_pipeline() -> None:
    # The whole set the shards split: every rule on every seed, then the whole scrubber.
    assert _step_count() > len(SHAPE_RULES) * len(GENERIC_SEEDS) + len(GENERIC_SEEDS)


def _pump(child: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        lines.put(line)
    lines.put(None)


def test_hostile_inputs_of_the_issue_keep_their_redactions() -> None:
    """The fix did not lose matches: the shapes still redact inside the hostile text."""
    text = "curl " * 9000 + "curl -u admin:hunter2hunter2 https://x\n"
    assert "hunter2hunter2" not in Scrubber().scrub(text)
    header = "authorization:" + " " * 50_000 + "\nAuthorization: Bearer abcdefgh12345678"
    assert "abcdefgh12345678" not in Scrubber().scrub(header)
    keys = "-----BEGIN PRIVATE KEY-----" * 2000 + "MIIBVQIBADANBg\n-----END PRIVATE KEY-----x"
    assert Scrubber().scrub(keys) == "[REDACTED PRIVATE KEY]x"


def test_every_rule_has_hostile_inputs() -> None:
    for rule in SHAPE_RULES:
        assert len(list(hostile_inputs(rule, 64))) >= len(GENERIC_SEEDS)
