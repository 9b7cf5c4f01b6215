"""A bound on JSON nesting, checked before a decoder recurses into hostile input.

msgspec decodes nested arrays and objects recursively; ~1000 levels raise `RecursionError`,
which is not a `DecodeError` and escaped every frame handler (the gateway closed the
connection with 1011 instead of answering). `json_depth` measures nesting in one linear
pass with no Python loop per byte: string literals are removed by one linear regex,
everything but brackets is deleted, openers become +1 and closers -1, and the running sum's
maximum (`itertools.accumulate`, in C) is the depth.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate

MAX_JSON_DEPTH = 128

# A string literal; an unterminated one runs to the end (so each byte is scanned once).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")  # +1 / -1 as signed bytes


def json_depth(data: str | bytes) -> int:
    """How deeply the JSON text `data` nests arrays and objects (0 for a scalar)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    steps = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(accumulate(array("b", steps)), default=0)


def nesting_exceeds(data: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether `data` nests deeper than `max_depth` (cheap when it has few brackets)."""
    if isinstance(data, str):
        few = data.count("[") + data.count("{") <= max_depth
    else:
        few = data.count(b"[") + data.count(b"{") <= max_depth
    return not few and json_depth(data) > max_depth
