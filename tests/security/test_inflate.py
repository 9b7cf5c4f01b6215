"""The body decoder: same bytes at every chunk split, bounded output, refusals named."""

from __future__ import annotations

import gzip
import zlib

import pytest

from oxydra.core.errors import ToolError
from oxydra.security._inflate import STEP, BodyDecoder, EncodingRefused, encodings

TEXT = b"The quick brown fox jumps over the lazy dog. " * 40


def _decode(codings: list[str], body: bytes, cut: int, cap: int = 1 << 20) -> bytes:
    decoder = BodyDecoder(codings, max_output=cap)
    return decoder.feed(body[:cut]) + decoder.feed(body[cut:])


@pytest.mark.parametrize(
    ("header", "body"),
    [
        ("gzip", gzip.compress(TEXT, mtime=0)),
        ("x-gzip", gzip.compress(TEXT, mtime=0)),
        ("deflate", zlib.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)[2:-4]),
        ("gzip, deflate", zlib.compress(gzip.compress(TEXT, mtime=0))),
        ("identity", TEXT),
        ("", TEXT),
    ],
)
def test_every_chunk_split_gives_the_same_bytes(header: str, body: bytes) -> None:
    codings = encodings(header, max_layers=2)
    for cut in range(len(body) + 1):
        assert _decode(codings, body, cut) == TEXT, cut


def test_concatenated_gzip_members_are_all_decoded() -> None:
    assert _decode(["gzip"], gzip.compress(b"ab") + gzip.compress(b"cd"), 5) == b"abcd"


def test_output_stops_at_the_cap_and_says_so() -> None:
    decoder = BodyDecoder(["gzip", "gzip"], max_output=3 * STEP + 5)
    out = decoder.feed(gzip.compress(gzip.compress(b"\0" * (50 << 20))))
    assert len(out) == 3 * STEP + 5 and decoder.done and decoder.truncated


def test_exactly_the_cap_is_not_truncated() -> None:
    decoder = BodyDecoder(["gzip"], max_output=len(TEXT))
    assert decoder.feed(gzip.compress(TEXT)) == TEXT and not decoder.truncated


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("br", "unsupported Content-Encoding br"),
        ("gzip, zstd", "unsupported Content-Encoding zstd"),
        ("gzip, gzip, gzip", "3 stacked Content-Encodings (at most 2)"),
    ],
)
def test_refusals_name_the_reason(header: str, message: str) -> None:
    with pytest.raises(EncodingRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        encodings(header, max_layers=2)


def test_garbage_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="not valid compressed data"):
        BodyDecoder(["gzip"], max_output=100).feed(b"not gzip at all")
