"""Length-prefixed framing: a 4-byte big-endian length, then that many bytes (sans-I/O).

Used by the shell daemon (8 MiB frames), the runner control socket (128 KiB) and the
bootstrap envelope, as in the Rust version (tokio's LengthDelimitedCodec defaults).
"""

from __future__ import annotations

import struct

from oxydra.core.errors import WireError

_HEADER = struct.Struct(">I")


class FrameTooLargeError(WireError):
    """A peer announced a frame above the limit; the stream cannot be trusted further."""


def encode_length_prefixed(payload: bytes, max_frame_bytes: int) -> bytes:
    """One frame: header plus payload."""
    if len(payload) > max_frame_bytes:
        raise FrameTooLargeError(f"frame of {len(payload)} bytes exceeds {max_frame_bytes}")
    return _HEADER.pack(len(payload)) + payload


class LengthPrefixedDecoder:
    """Turns a byte stream into whole frames.

    Rules:
    1. `feed` may receive any split of the stream; it returns every frame completed so far.
    2. A header announcing more than `max_frame_bytes` raises `FrameTooLargeError` at once,
       before any of the body is buffered.
    3. `feed_eof` raises `WireError` if the stream ended inside a frame; EOF between frames
       is a clean close.
    """

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._need: int | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the frames they complete."""
        self._buffer += data
        frames: list[bytes] = []
        while True:
            if self._need is None:
                if len(self._buffer) < _HEADER.size:
                    return frames
                (length,) = _HEADER.unpack_from(self._buffer)
                if length > self.max_frame_bytes:
                    raise FrameTooLargeError(
                        f"peer announced a frame of {length} bytes (limit {self.max_frame_bytes})"
                    )
                del self._buffer[: _HEADER.size]
                self._need = length
            if len(self._buffer) < self._need:
                return frames
            frames.append(bytes(self._buffer[: self._need]))
            del self._buffer[: self._need]
            self._need = None

    def feed_eof(self) -> None:
        """The stream ended; fail if it ended inside a frame."""
        if self._need is not None or self._buffer:
            raise WireError("stream ended in the middle of a frame")
