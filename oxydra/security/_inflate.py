"""Bounded, incremental decoding of an HTTP body's `Content-Encoding` chain (sans-I/O).

A decompression bomb is a small body that inflates to gigabytes: 600 bytes of
`Content-Encoding: gzip, gzip` reach 270 MiB. Decoding a whole network chunk at once (what
`httpx`'s `aiter_bytes()` does) lets one chunk blow past any cap checked afterwards. Here
every layer inflates at most `STEP` bytes per call (`zlib`'s `max_length`) and the chain is
pulled from its output end, so the work done is bounded by the bytes the caller keeps:
`max_output` plus one step per layer, whatever the input. Only identity, gzip and deflate
are decoded (the encodings we advertise); anything else, or more than `max_layers` stacked
encodings, is refused.
"""

from __future__ import annotations

import zlib

from oxydra.core.errors import ToolError

STEP = 64 * 1024
ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class EncodingRefused(ToolError):
    """The body uses an encoding we do not decode, or too many stacked."""


def encodings(header: str, *, max_layers: int) -> list[str]:
    """The codings of a `Content-Encoding` value in the order they were applied."""
    names = [n.strip().lower() for n in header.split(",") if n.strip()]
    names = [n for n in names if n != "identity"]
    unknown = sorted({n for n in names if n not in _WBITS})
    if unknown:
        raise EncodingRefused(f"unsupported Content-Encoding {', '.join(unknown)!s}")
    if len(names) > max_layers:
        raise EncodingRefused(
            f"refused a body with {len(names)} stacked Content-Encodings (at most {max_layers})"
        )
    return names


class _Layer:
    """One coding: a zlib stream (or several gzip members) inflated `max_length` at a time."""

    def __init__(self, name: str) -> None:
        self._wbits = _WBITS[name]
        self._raw_deflate_tried = name != "deflate"
        self._inflater = zlib.decompressobj(self._wbits)
        self._pending = b""
        self._head = b""  # the first bytes, kept until the raw-deflate question is settled

    def give(self, data: bytes) -> None:
        self._pending += data

    def take(self, limit: int) -> bytes:
        """Up to `limit` inflated bytes from what was given; b"" when more input is needed."""
        while self._pending:
            data, self._pending = self._pending, b""
            if not self._raw_deflate_tried:
                self._head += data
            try:
                out = self._inflater.decompress(data, limit)
            except zlib.error as exc:
                out = self._retry_raw(limit, exc)
            if len(self._head) >= 2:  # zlib rejects a bad header within its 2 bytes
                self._raw_deflate_tried, self._head = True, b""
            self._pending = self._inflater.unconsumed_tail
            if self._inflater.eof and self._inflater.unused_data and self._wbits > zlib.MAX_WBITS:
                self._pending += self._inflater.unused_data  # another gzip member follows
                self._inflater = zlib.decompressobj(self._wbits)
            if out:
                return out
        return b""

    def _retry_raw(self, limit: int, exc: zlib.error) -> bytes:
        # "deflate" is zlib-wrapped by the RFC but raw deflate from some servers.
        if self._raw_deflate_tried:
            raise ToolError(f"the response body is not valid compressed data: {exc}") from exc
        self._raw_deflate_tried, head, self._head = True, self._head, b""
        self._wbits = -zlib.MAX_WBITS
        self._inflater = zlib.decompressobj(self._wbits)
        try:
            return self._inflater.decompress(head, limit)
        except zlib.error as again:
            raise ToolError(f"the response body is not valid compressed data: {again}") from exc


class BodyDecoder:
    """Feeds raw body bytes through the coding chain; keeps at most `max_output` bytes.

    `feed` returns the decoded bytes now available (never more than the budget left);
    `done` turns true once `max_output` bytes were produced and one more was seen, after
    which the caller stops reading (`truncated`).
    """

    def __init__(self, codings: list[str], *, max_output: int) -> None:
        self._layers = [_Layer(name) for name in reversed(codings)]
        self._left = max_output
        self.truncated = False

    @property
    def done(self) -> bool:
        """Whether the output cap was reached and more output exists."""
        return self.truncated

    def feed(self, data: bytes) -> bytes:
        """Decode `data`; returns output within the remaining budget."""
        if not self._layers:
            return self._keep(data)
        self._layers[0].give(data)
        parts: list[bytes] = []
        while not self.truncated:
            out = self._pull(len(self._layers) - 1, min(STEP, self._left + 1))
            if not out:
                break
            parts.append(self._keep(out))
        return b"".join(parts)

    def _pull(self, index: int, limit: int) -> bytes:
        layer = self._layers[index]
        while True:
            out = layer.take(limit)
            if out or index == 0:
                return out
            upstream = self._pull(index - 1, STEP)
            if not upstream:
                return b""
            layer.give(upstream)

    def _keep(self, data: bytes) -> bytes:
        if len(data) > self._left:
            self.truncated = True
            data = data[: self._left]
        self._left -= len(data)
        return data
