"""The byte framing between the host and the WASI guest (guest.c), sans I/O.

A request is one op byte followed by fields; a reply is one status byte (0 ok, 1 error)
followed by fields. A field is a little-endian u32 length and that many bytes; numbers
travel as 8-byte little-endian fields. A binary framing instead of upstream's JSON keeps the
C side to a 20-line loop with nothing to fuzz, and lets file bytes pass without base64.
"""

from __future__ import annotations

import enum
import struct

import msgspec

from oxydra.core.errors import WireError

_LEN = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class Op(enum.IntEnum):
    """Guest operations; the numbers are the `OP_*` constants of guest.c."""

    READ = 1
    WRITE = 2
    EDIT = 3
    DELETE = 4
    LIST = 5
    SEARCH = 6


class GuestReply(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded reply: `ok`, and its fields (on error: the code and a detail)."""

    ok: bool
    fields: tuple[bytes, ...]

    @property
    def code(self) -> str:
        """The error code (`ENOENT`, `NLINK`, ...) of a failed reply, else ``""``."""
        return "" if self.ok or not self.fields else self.fields[0].decode("ascii", "replace")

    @property
    def detail(self) -> str:
        """The guest's detail text of a failed reply, else ``""``."""
        if self.ok or len(self.fields) < 2:
            return ""
        return self.fields[1].decode("utf-8", "replace")


def u64(value: int) -> bytes:
    """A number as an 8-byte field body."""
    return _U64.pack(value)


def read_u64(field: bytes) -> int:
    """The number in an 8-byte field body."""
    if len(field) != _U64.size:
        raise WireError(f"guest sent a {len(field)}-byte number field")
    return int(_U64.unpack(field)[0])


def encode_request(op: Op, fields: list[bytes]) -> bytes:
    """The request bytes for `op` with `fields`."""
    parts = [bytes([op])]
    for field in fields:
        parts += [_LEN.pack(len(field)), field]
    return b"".join(parts)


def decode_fields(data: bytes | memoryview, start: int = 0) -> tuple[bytes, ...]:
    """Split `data[start:]` into its length-prefixed fields."""
    view = memoryview(data)
    fields: list[bytes] = []
    pos = start
    while pos < len(view):
        if len(view) - pos < _LEN.size:
            raise WireError("guest reply ends inside a field length")
        (size,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if size > len(view) - pos:
            raise WireError("guest reply field runs past the end")
        fields.append(bytes(view[pos : pos + size]))
        pos += size
    return tuple(fields)


def decode_reply(data: bytes | memoryview) -> GuestReply:
    """A reply from its bytes; `WireError` when the guest broke the framing."""
    if not data:
        raise WireError("guest exited without a reply")
    status = data[0]
    if status not in (0, 1):
        raise WireError(f"guest reply has status byte {status}")
    return GuestReply(ok=status == 0, fields=decode_fields(data, 1))
