"""Finding known secret values through simple re-encodings, in linear time.

A shell that can read a key can print it re-encoded to slip past exact matching: `base64`
(wrapped at 76 columns), `rev`, `base32`, upper-case hex, `xxd`, characters spaced out or
interleaved with zero-width characters or ANSI codes, `\\uXXXX` escapes, `fold`, double
URL-encoding. Three views of the text are searched, each mapped back to the original so the
redaction covers exactly the characters that spelled the secret:

1. normalised: whitespace, zero-width characters and ANSI escape sequences removed; searched
   for every form of each value (itself, reversed, hex in both cases, base64 at any byte
   alignment, base32, URL-encoded once and twice, fully `\\u`/`\\x` escaped);
2. unescaped: the normalised view with `\\uXXXX`, `\\xHH`, `%HH` and `&#...;` escapes decoded,
   for mixed spellings; searched for the value and its reverse;
3. hex dumps (`xxd`, `hexdump -C`): the bytes of consecutive dump lines joined and searched;
   a dump holding a value is redacted whole.

Each view is one regex pass; lookups back to the original are binary searches per match.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

# Removed in the normalised view: whitespace, zero-width and invisible format characters,
# and terminal escape sequences (CSI, OSC up to BEL/ST, two-byte escapes).
_SEPARATORS = re.compile(
    r"\x1b\[[0-?]*+[ -/]*+[@-~]|\x1b\][^\x07\x1b]*+(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]"
    r"|[\s\u00ad\u180e\u200b-\u200f\u2060-\u2064\u206a-\u206f\ufeff]++"
)
_ESCAPE = re.compile(
    r"\\u(?P<u>[0-9a-fA-F]{4})|\\x(?P<x>[0-9a-fA-F]{2})|%(?P<p>[0-9a-fA-F]{2})"
    r"|&#(?:x(?P<hx>[0-9a-fA-F]{1,6})|(?P<dec>[0-9]{1,7}));"
)
# One line of `xxd` (`00000010: 7365 6372 ...  ascii`) or `hexdump -C`
# (`00000010  73 65 63 72 ...  |ascii|`): the offset, then the hex groups.
_DUMP_LINE = re.compile(
    r"(?<![0-9a-fA-F])[0-9a-fA-F]{7,8}(?::[ ]|[ ][ ])"
    r"(?P<hex>(?:[0-9a-fA-F]{2}(?:[0-9a-fA-F]{2})?[ ]{1,2}+)++)[^\n]*+$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class _View:
    """Text derived from an original by replacing spans, with the way back."""

    text: str
    starts: list[int]  # where each segment starts in `text`
    origins: list[tuple[int, int]]  # the span of the original each segment came from
    literal: list[bool]  # copied as is (offsets map one to one) or a replacement

    def original(self, start: int, end: int) -> tuple[int, int]:
        """The original span that produced `text[start:end]`."""
        return self._at(start, first=True), self._at(end - 1, first=False)

    def _at(self, position: int, *, first: bool) -> int:
        index = bisect.bisect_right(self.starts, position) - 1
        origin_start, origin_end = self.origins[index]
        if self.literal[index]:
            offset = origin_start + position - self.starts[index]
            return offset if first else offset + 1
        return origin_start if first else origin_end


def _view(text: str, edits: Iterable[tuple[int, int, str]]) -> _View:
    """`text` with each (start, end, replacement) applied; edits sorted, not overlapping."""
    parts: list[str] = []
    starts: list[int] = []
    origins: list[tuple[int, int]] = []
    literal: list[bool] = []
    done = size = 0

    def add(piece: str, origin: tuple[int, int], copied: bool) -> None:
        nonlocal size
        if piece:
            parts.append(piece)
            starts.append(size)
            origins.append(origin)
            literal.append(copied)
            size += len(piece)

    for start, end, replacement in edits:
        add(text[done:start], (done, start), True)
        add(replacement, (start, end), False)
        done = end
    add(text[done:], (done, len(text)), True)
    return _View("".join(parts), starts, origins, literal)


def _unescape(match: re.Match[str]) -> str:
    groups = match.groupdict()
    for name, radix in (("u", 16), ("x", 16), ("p", 16), ("hx", 16), ("dec", 10)):
        if groups[name] is not None:
            code = int(groups[name], radix)
            return chr(code) if code < 0x110000 else match.group(0)
    return match.group(0)


def normalised_forms(value: str) -> set[str]:
    """Every spelling of `value` searched in the normalised view (whitespace removed)."""
    raw = value.encode("utf-8")
    forms = {value, value[::-1], quote(value, safe=""), quote_plus(value)}
    forms.add(quote(quote(value, safe=""), safe=""))
    forms.add(json.dumps(value)[1:-1])
    hexed = binascii.hexlify(raw).decode()
    forms.update({hexed, hexed.upper()})
    forms.update({"".join(f"\\u{ord(c):04x}" for c in value), "".join(f"\\x{b:02x}" for b in raw)})
    forms.update(f.upper() for f in list(forms) if f.startswith(("\\u", "\\x")))
    for data in (raw, raw + b"\n"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode, base64.b32encode):
            encoded = encode(data).decode()
            forms.update({encoded, encoded.rstrip("=")})
    forms.update(aligned_base64_cores(raw))
    return {f.replace(" ", "") for f in forms}


def aligned_base64_cores(raw: bytes) -> set[str]:
    """Base64 of `raw` as it appears inside a longer base64 string, at each byte offset."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = -(-8 * offset // 6)
        end = (8 * (offset + len(raw))) // 6
        core = encoded[start:end]
        if len(core) >= 16:
            cores.add(core)
    return cores


class KnownSecretFinder:
    """Where known values appear in a text, in any of the spellings above."""

    def __init__(self, values: Iterable[str], *, min_form_length: int = 8) -> None:
        self.values = tuple(sorted(set(values)))
        forms = {f for v in self.values for f in normalised_forms(v) if len(f) >= min_form_length}
        plain = {s for v in self.values for s in (v, v[::-1]) if len(s) >= min_form_length}
        self._forms = _alternation(forms)
        self._plain = _alternation(plain)
        self._raw = tuple(v.encode() for v in self.values) + tuple(
            v[::-1].encode() for v in self.values
        )
        self.longest = max((len(f) for f in forms), default=0)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Original spans to redact, sorted and merged."""
        if self._forms is None or self._plain is None:
            return []
        found = self._dumps(text)
        # Fast path: search the views as plain strings; build the maps back only on a hit.
        normal_text = _SEPARATORS.sub("", text)
        escaped = _ESCAPE.search(normal_text) is not None
        decoded_text = _ESCAPE.sub(_unescape, normal_text) if escaped else ""
        hit = self._forms.search(normal_text) or (escaped and self._plain.search(decoded_text))
        if not hit:
            return _merge(found)
        normal = _view(text, ((m.start(), m.end(), "") for m in _SEPARATORS.finditer(text)))
        found += [normal.original(*m.span()) for m in self._forms.finditer(normal.text)]
        if escaped:
            decoded = _view(
                normal.text,
                ((m.start(), m.end(), _unescape(m)) for m in _ESCAPE.finditer(normal.text)),
            )
            for match in self._plain.finditer(decoded.text):
                found.append(normal.original(*decoded.original(*match.span())))
        return _merge(found)

    def _dumps(self, text: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        block: list[re.Match[str]] = []
        for line in _DUMP_LINE.finditer(text):
            if block and text.count("\n", block[-1].end(), line.start()) > 1:
                found += self._dump_block(block)
                block = []
            block.append(line)
        return found + self._dump_block(block)

    def _dump_block(self, block: list[re.Match[str]]) -> list[tuple[int, int]]:
        if not block:
            return []
        hexed = "".join(line.group("hex").replace(" ", "") for line in block)
        data = binascii.unhexlify(hexed[: len(hexed) // 2 * 2])
        if any(value in data for value in self._raw):
            return [(block[0].start(), block[-1].end())]
        return []


def _alternation(forms: set[str]) -> re.Pattern[str] | None:
    if not forms:
        return None
    ordered = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(re.escape(f) for f in ordered))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
