"""The sans-I/O MCP codec: decoding, framing at every split point, both handshake eras."""

from __future__ import annotations

import json

import msgspec
import pytest

from oxydra.core.errors import WireError
from oxydra.wire.mcp import (
    META_CAPABILITIES,
    META_CLIENT_INFO,
    META_VERSION,
    ErrorResponse,
    LineSplitter,
    Malformed,
    McpClientProtocol,
    Response,
    ServerNotification,
    ServerRequest,
    cancelled,
    decode_messages,
)


class TestDecode:
    @pytest.mark.parametrize(
        ("raw", "kind"),
        [
            ('{"jsonrpc":"2.0","id":1,"result":{"a":1}}', Response),
            ('{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"no"}}', ErrorResponse),
            ('{"jsonrpc":"2.0","id":7,"method":"ping"}', ServerRequest),
            ('{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}', ServerNotification),
            ("not json at all", Malformed),
            ("[1, 2]", Malformed),
            ('{"id":1,"result":{}}', Malformed),
            ('{"jsonrpc":"2.0","id":true,"result":{}}', Malformed),
            ('{"jsonrpc":"2.0"}', Malformed),
        ],
    )
    def test_each_message_shape_becomes_its_event(self, raw: str, kind: type) -> None:
        events = decode_messages(raw.encode())
        assert isinstance(events[0], kind)

    def test_a_batch_array_yields_one_event_per_item(self) -> None:
        raw = b'[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"x"}]'
        assert [type(e) for e in decode_messages(raw)] == [Response, ServerNotification]

    def test_a_result_that_is_not_an_object_is_an_error_for_that_id(self) -> None:
        [event] = decode_messages(b'{"jsonrpc":"2.0","id":3,"result":[1]}')
        assert isinstance(event, ErrorResponse) and event.id == 3

    def test_a_malformed_error_object_keeps_the_id(self) -> None:
        [event] = decode_messages(b'{"jsonrpc":"2.0","id":4,"error":"boom"}')
        assert isinstance(event, ErrorResponse) and event.id == 4
        assert "boom" in event.error.message

    def test_garbage_excerpt_is_bounded(self) -> None:
        [event] = decode_messages(b"x" * 10_000)
        assert isinstance(event, Malformed) and len(event.excerpt) < 200

    def test_blank_input_is_no_event(self) -> None:
        assert decode_messages(b"  \n") == []


STREAM = (
    b'{"jsonrpc":"2.0","id":1,"result":{"t":"\xe2\x80\xa8 sep"}}\r\n'
    b"garbage line\n"
    b'{"jsonrpc":"2.0","method":"notifications/message","params":{}}\n'
)


class TestLineSplitter:
    def test_every_split_point_gives_the_same_lines(self) -> None:
        whole = LineSplitter().feed(STREAM)
        assert len(whole) == 3
        for cut in range(len(STREAM) + 1):
            splitter = LineSplitter()
            lines = splitter.feed(STREAM[:cut]) + splitter.feed(STREAM[cut:])
            assert lines + splitter.feed_eof() == whole

    def test_u2028_inside_a_json_string_does_not_split_a_line(self) -> None:
        [first, *_] = LineSplitter().feed(STREAM)
        [event] = decode_messages(first)
        assert isinstance(event, Response) and event.result["t"] == "\u2028 sep"

    def test_an_unterminated_last_line_is_returned_at_eof(self) -> None:
        splitter = LineSplitter()
        assert splitter.feed(b'{"a":1}') == []
        assert splitter.feed_eof() == [b'{"a":1}']

    def test_a_line_over_the_limit_is_an_error(self) -> None:
        splitter = LineSplitter(max_line_bytes=100)
        with pytest.raises(WireError, match="exceeds 100 bytes"):
            splitter.feed(b"x" * 101)

    def test_a_long_complete_line_is_an_error_too(self) -> None:
        with pytest.raises(WireError):
            LineSplitter(max_line_bytes=10).feed(b"y" * 50 + b"\n")


class TestProtocol:
    def test_initialize_offers_the_newest_handshake_revision(self) -> None:
        protocol = McpClientProtocol()
        ident, data = protocol.initialize()
        message = json.loads(data)
        assert message["id"] == ident and message["method"] == "initialize"
        assert message["params"]["protocolVersion"] == "2025-11-25"
        assert message["params"]["clientInfo"]["name"] == "oxydra"

    @pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
    def test_both_handshake_revisions_are_accepted(self, version: str) -> None:
        protocol = McpClientProtocol()
        done = protocol.accept_initialize(
            {"protocolVersion": version, "capabilities": {"tools": {"listChanged": True}}}
        )
        assert json.loads(done) == {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert protocol.protocol_version == version and protocol.tools_list_changes

    @pytest.mark.parametrize("version", ["2024-11-05", "2099-01-01", None, 5])
    def test_a_revision_we_do_not_speak_is_refused(self, version: object) -> None:
        with pytest.raises(WireError, match="protocol version"):
            McpClientProtocol().accept_initialize({"protocolVersion": version})

    def test_discover_adopts_the_stateless_revision_and_stamps_meta(self) -> None:
        protocol = McpClientProtocol()
        _, probe = protocol.discover()
        assert json.loads(probe)["params"]["_meta"][META_VERSION] == "2026-07-28"
        assert protocol.accept_discover(
            {"supportedVersions": ["2025-11-25", "2026-07-28"], "capabilities": {}}
        )
        _, data = protocol.request("tools/list")
        meta = json.loads(data)["params"]["_meta"]
        assert meta[META_VERSION] == "2026-07-28"
        assert meta[META_CLIENT_INFO]["name"] == "oxydra" and meta[META_CAPABILITIES] == {}

    @pytest.mark.parametrize("result", [{}, {"supportedVersions": ["2025-11-25"]}, {"x": 1}])
    def test_discover_without_the_modern_revision_falls_back(self, result: dict) -> None:
        protocol = McpClientProtocol()
        assert not protocol.accept_discover(result)
        _, data = protocol.request("tools/list")
        assert "params" not in json.loads(data)

    def test_ids_increase_and_answers_are_built(self) -> None:
        protocol = McpClientProtocol()
        first, _ = protocol.request("a")
        second, _ = protocol.request("b")
        assert second == first + 1
        assert json.loads(protocol.respond(9, {})) == {"jsonrpc": "2.0", "id": 9, "result": {}}
        error = json.loads(protocol.respond_error(9, -32601, "method not found"))
        assert error["error"]["code"] == -32601

    def test_cancelled_names_the_request_and_reason(self) -> None:
        message = msgspec.json.decode(cancelled(12, "timeout"))
        assert message["params"] == {"requestId": 12, "reason": "timeout"}
