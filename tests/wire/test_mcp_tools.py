"""Reading `tools/list` pages and `tools/call` results from an untrusted server."""

from __future__ import annotations

import base64

from oxydra.wire.mcp_tools import parse_call_result, parse_tool_page


class TestToolPage:
    def test_good_tools_are_kept_and_bad_ones_reported(self) -> None:
        page = parse_tool_page(
            {
                "tools": [
                    {
                        "name": "ok",
                        "inputSchema": {"type": "object"},
                        "annotations": {"readOnlyHint": True},
                    },
                    {"name": 5, "inputSchema": {}},
                    "not an object",
                    {"description": "no name"},
                ],
                "nextCursor": "p2",
            }
        )
        assert [t.name for t in page.tools] == ["ok"]
        assert page.tools[0].annotations.read_only_hint is True
        assert len(page.problems) == 3 and page.next_cursor == "p2"

    def test_a_page_without_tools_is_a_problem(self) -> None:
        page = parse_tool_page({"nope": []})
        assert page.tools == () and page.problems

    def test_an_empty_cursor_ends_pagination(self) -> None:
        assert parse_tool_page({"tools": [], "nextCursor": ""}).next_cursor is None


class TestCallResult:
    def test_text_images_resources_and_unknown_blocks(self) -> None:
        png = base64.b64encode(b"\x89PNG....").decode()
        outcome = parse_call_result(
            {
                "content": [
                    {"type": "text", "text": "hello"},
                    {"type": "image", "mimeType": "image/png", "data": png},
                    {"type": "image", "mimeType": "image/png", "data": "!!notbase64"},
                    {"type": "resource", "resource": {"uri": "f://x", "text": "inside"}},
                    {"type": "resource", "resource": {"uri": "f://bin", "blob": "AAAA"}},
                    {"type": "resource_link", "uri": "f://y", "name": "y"},
                    {"type": "audio", "mimeType": "audio/wav", "data": "AAAA"},
                    7,
                ],
                "structuredContent": {"k": 1},
                "isError": True,
            }
        )
        assert outcome.texts == ("hello", "inside")
        assert outcome.images[0].data == b"\x89PNG...." and outcome.is_error
        assert outcome.structured == {"k": 1}
        assert len(outcome.notes) == 5

    def test_an_oversized_image_is_dropped_with_a_note(self) -> None:
        data = base64.b64encode(b"x" * 2000).decode()
        outcome = parse_call_result(
            {"content": [{"type": "image", "mimeType": "image/png", "data": data}]},
            max_image_bytes=1000,
        )
        assert outcome.images == () and "over 1000 bytes" in outcome.notes[0]

    def test_is_error_must_be_exactly_true_and_result_type_is_read(self) -> None:
        assert not parse_call_result({"isError": "yes"}).is_error
        assert parse_call_result({"resultType": "input_required"}).incomplete == "input_required"
        assert parse_call_result({"resultType": "complete"}).incomplete is None
