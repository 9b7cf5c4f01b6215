"""Adjacently tagged JSON envelopes: `{"<tag>": "<name>", "payload": {...}}`.

The gateway uses `type` as the tag, the shell daemon and runner control socket use `op`.
One codec serves all: payload Structs carry their name in a `TYPE` class variable.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from oxydra.core.errors import WireError
from oxydra.wire._depth import MAX_JSON_DEPTH, nesting_exceeds


class TaggedFrame(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every payload Struct; subclasses set `TYPE`."""

    TYPE: ClassVar[str]


class FrameError(WireError):
    """A frame did not parse; `request_id` is kept when it could be read."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class _Loose(msgspec.Struct):
    request_id: str | None = None


_loose_decoder = msgspec.json.Decoder(_Loose)


class TaggedCodec:
    """Encodes and decodes one family of tagged frames."""

    def __init__(self, tag: str, frames: tuple[type[TaggedFrame], ...], side: str) -> None:
        self.tag = tag
        self.side = side
        self.types = {f.TYPE: f for f in frames}
        envelope = msgspec.defstruct(
            f"_{tag}_envelope",
            [(tag, str), ("payload", msgspec.Raw, msgspec.Raw(b"{}"))],
            forbid_unknown_fields=True,
        )
        self._envelope = msgspec.json.Decoder(envelope)
        self._decoders = {name: msgspec.json.Decoder(cls) for name, cls in self.types.items()}
        self._encoder = msgspec.json.Encoder()

    def encode(self, frame: TaggedFrame) -> bytes:
        """The JSON text of a frame, envelope included."""
        return self._encoder.encode({self.tag: frame.TYPE, "payload": frame})

    def decode(self, data: str | bytes) -> Any:
        """Parse one frame.

        Raises:
            FrameError: naming what was wrong (bad JSON, too deep, unknown name, bad field).
        """
        if nesting_exceeds(data):
            raise FrameError(f"frame nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            envelope = self._envelope.decode(data)
        except msgspec.DecodeError as exc:
            raise FrameError(f"frame is not a {{{self.tag}, payload}} JSON object: {exc}") from exc
        name, payload = getattr(envelope, self.tag), getattr(envelope, "payload")  # noqa: B009
        request_id = _request_id(payload)
        if name not in self.types:
            known = ", ".join(sorted(self.types))
            raise FrameError(
                f"unknown {self.side} frame {self.tag} {name!r} (known: {known})", request_id
            )
        try:
            return self._decoders[name].decode(payload)
        except msgspec.DecodeError as exc:
            raise FrameError(f"invalid {name} frame: {exc}", request_id) from exc


def _request_id(payload: msgspec.Raw) -> str | None:
    try:
        return _loose_decoder.decode(payload).request_id
    except msgspec.DecodeError:
        return None
