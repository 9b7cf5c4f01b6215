"""The host/guest framing (sans I/O): round trips and every way a reply can be broken."""

from __future__ import annotations

import pytest

from oxydra.core.errors import WireError
from oxydra.security.wasm import GuestReply, Op, decode_reply, encode_request, read_u64, u64
from oxydra.security.wasm._protocol import decode_fields


class TestFraming:
    @pytest.mark.parametrize(
        "fields",
        [[], [b""], [b"/shared/a.md", u64(1 << 20)], [b"x" * 70_000, b"", b"\x00\xff"]],
    )
    def test_a_request_splits_back_into_its_op_and_fields(self, fields: list[bytes]) -> None:
        data = encode_request(Op.SEARCH, fields)
        assert data[0] == Op.SEARCH
        assert decode_fields(data, 1) == tuple(fields)

    def test_an_ok_reply_carries_its_fields(self) -> None:
        reply = decode_reply(b"\x00" + encode_request(Op.READ, [b"abc", b"\x01"])[1:])
        assert reply == GuestReply(ok=True, fields=(b"abc", b"\x01"))
        assert (reply.code, reply.detail) == ("", "")

    def test_an_error_reply_names_its_code_and_detail(self) -> None:
        reply = decode_reply(b"\x01" + encode_request(Op.READ, [b"ENOENT", b"gone"])[1:])
        assert (reply.ok, reply.code, reply.detail) == (False, "ENOENT", "gone")

    def test_numbers_are_eight_byte_little_endian(self) -> None:
        assert u64(258) == b"\x02\x01" + b"\x00" * 6
        assert read_u64(u64(2**40 + 7)) == 2**40 + 7


class TestBrokenReplies:
    @pytest.mark.parametrize(
        ("data", "why"),
        [
            (b"", "without a reply"),
            (b"\x02", "status byte 2"),
            (b"\x00\x05\x00", "inside a field length"),
            (b"\x00\x05\x00\x00\x00abc", "past the end"),
        ],
    )
    def test_each_breakage_is_a_wire_error(self, data: bytes, why: str) -> None:
        with pytest.raises(WireError, match=why):
            decode_reply(data)

    def test_every_truncation_of_a_valid_reply_is_refused_or_shorter(self) -> None:
        full = b"\x00" + encode_request(Op.LIST, [b"a/", b"bb", b""])[1:]
        for cut in range(1, len(full)):
            try:
                fields = decode_reply(full[:cut]).fields
            except WireError:
                continue
            assert len(fields) < 3 or fields[:2] == (b"a/", b"bb")

    def test_a_number_field_of_the_wrong_size_is_refused(self) -> None:
        with pytest.raises(WireError, match="3-byte"):
            read_u64(b"abc")
