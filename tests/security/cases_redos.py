"""Hostile inputs for the scrubber: text shaped to make a backtracking regex go quadratic.

Each input repeats a seed (a rule's keyword, a prefix that starts a match and then fails,
runs of separators) up to `size` characters, then ends with a tail that spoils the match
late. Used by tests/security/test_scrub_linear.py and bench/bench_security.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from oxydra.security._secret_rules import SHAPE_RULES, Rule

MIB = 1 << 20

# Seeds that begin a match of some rule and leave it open as long as possible.
GENERIC_SEEDS: tuple[str, ...] = (
    " ",
    "a=",
    "curl ",
    "curl -u ",
    "authorization: ",
    'Authorization:"  \t',
    "-----BEGIN PRIVATE KEY-----",
    "-----BEGIN RSA ",
    "Bearer ",
    "https://a:",
    '"a": "',
    '\\"a\\":\\"',
    "x-api-key: ",
    "eyAAAAAAAAAAAAAAAAAAAA.",
    "0Q~",
)
TAILS: tuple[str, ...] = ("", "\n-----END x")


def repeat(seed: str, size: int) -> str:
    """`seed` repeated to exactly `size` characters."""
    return (seed * (size // len(seed) + 1))[:size]


def hostile_inputs(rule: Rule, size: int = MIB) -> Iterator[tuple[str, str]]:
    """(label, text) pairs aimed at `rule`: the generic seeds and the rule's own keywords."""
    own = dict.fromkeys((*rule.keywords, *(k + " " for k in rule.keywords)))
    for seed in dict.fromkeys((*own, *GENERIC_SEEDS)):
        for tail in TAILS if seed in own else TAILS[:1]:
            yield f"{seed!r}*{size}+{tail!r}", repeat(seed, size - len(tail)) + tail


def pipeline_inputs(size: int = MIB) -> Iterator[tuple[str, str]]:
    """Inputs for the whole scrubber: every rule's seeds, once each."""
    seen: set[str] = set()
    for rule in SHAPE_RULES:
        for label, text in hostile_inputs(rule, size):
            if label not in seen:
                seen.add(label)
                yield label, text
