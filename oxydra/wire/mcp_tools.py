"""MCP tool payloads: `tools/list` pages and `tools/call` results, read defensively.

A server is an untrusted peer. One malformed tool in a `tools/list` page is reported and
skipped, never fatal for the others; a `tools/call` result is reduced to text blocks, images
(bytes decoded from base64, size-capped), structured content and the error flag. Unknown
block types become a one-line note so the model knows something was left out.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

DEFAULT_MAX_IMAGE_BYTES = 5 * 1024 * 1024


class ToolAnnotations(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Hints a server gives about a tool (never trusted for policy unless configured)."""

    title: str | None = None
    read_only_hint: bool | None = None
    destructive_hint: bool | None = None
    idempotent_hint: bool | None = None
    open_world_hint: bool | None = None


class ToolInfo(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One tool as the server lists it (only the fields we use)."""

    name: str
    input_schema: dict[str, Any]
    description: str = ""
    title: str | None = None
    output_schema: dict[str, Any] | None = None
    annotations: ToolAnnotations = ToolAnnotations()


class ToolPage(msgspec.Struct, frozen=True, kw_only=True):
    """One `tools/list` page: the tools that parsed, the problems of those that did not."""

    tools: tuple[ToolInfo, ...]
    problems: tuple[str, ...] = ()
    next_cursor: str | None = None


class Image(msgspec.Struct, frozen=True, kw_only=True):
    """An image block of a result, decoded."""

    mime_type: str
    data: bytes


class CallOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a `tools/call` result carried.

    Attributes:
        texts: text blocks (and the text of embedded text resources) in order.
        images: image blocks, decoded.
        notes: one line per block we could not show (audio, blobs, unknown types).
        structured: `structuredContent` when the server sent it.
        is_error: the server flagged the call as failed (`isError`).
        incomplete: a 2026-07-28 `resultType` other than `complete` (input required).
    """

    texts: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    notes: tuple[str, ...] = ()
    structured: Any = None
    is_error: bool = False
    incomplete: str | None = None


def parse_tool_page(result: dict[str, Any]) -> ToolPage:
    """Read one `tools/list` result; bad entries become problems naming the entry."""
    raw = result.get("tools")
    if not isinstance(raw, list):
        return ToolPage(tools=(), problems=("tools/list result has no 'tools' array",))
    tools: list[ToolInfo] = []
    problems: list[str] = []
    for index, item in enumerate(raw):
        try:
            tools.append(msgspec.convert(item, ToolInfo))
        except msgspec.ValidationError as exc:
            label = item.get("name") if isinstance(item, dict) else None
            problems.append(f"tool #{index} ({label!r}) is malformed: {exc}")
    cursor = result.get("nextCursor")
    return ToolPage(
        tools=tuple(tools),
        problems=tuple(problems),
        next_cursor=cursor if isinstance(cursor, str) and cursor else None,
    )


def parse_call_result(
    result: dict[str, Any], *, max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> CallOutcome:
    """Read a `tools/call` result into text, images, notes and structured content."""
    texts: list[str] = []
    images: list[Image] = []
    notes: list[str] = []
    content = result.get("content")
    for block in content if isinstance(content, list) else []:
        _block(block, texts, images, notes, max_image_bytes)
    kind = result.get("resultType")
    return CallOutcome(
        texts=tuple(texts),
        images=tuple(images),
        notes=tuple(notes),
        structured=result.get("structuredContent"),
        is_error=result.get("isError") is True,
        incomplete=kind if isinstance(kind, str) and kind != "complete" else None,
    )


def _block(
    block: Any, texts: list[str], images: list[Image], notes: list[str], max_image: int
) -> None:
    if not isinstance(block, dict):
        notes.append("[a content block that is not an object was dropped]")
        return
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        texts.append(block["text"])
    elif kind == "image":
        image = _image(block, max_image)
        if isinstance(image, Image):
            images.append(image)
        else:
            notes.append(image)
    elif kind == "resource" and isinstance(block.get("resource"), dict):
        res = block["resource"]
        if isinstance(res.get("text"), str):
            texts.append(res["text"])
        else:
            notes.append(f"[binary resource {res.get('uri', '?')} not shown]")
    elif kind == "resource_link":
        notes.append(f"[resource link: {block.get('uri', '?')} ({block.get('name', '')})]")
    else:
        notes.append(f"[{str(kind)[:40]} content not shown]")


def _image(block: dict[str, Any], max_image: int) -> Image | str:
    mime = block.get("mimeType")
    data = block.get("data")
    if not isinstance(mime, str) or not mime.startswith("image/") or not isinstance(data, str):
        return "[an image block without a valid mimeType/data was dropped]"
    if len(data) * 3 // 4 > max_image:
        return f"[{mime} image over {max_image} bytes dropped]"
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return f"[{mime} image with invalid base64 dropped]"
    return Image(mime_type=mime, data=raw)
