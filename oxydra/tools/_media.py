"""`send_media`: a workspace file delivered to the person, through their chat channel.

As in the Rust version: `path`, `media_type` (photo, audio, voice, video, document) and an
optional `caption`; it needs a channel that shows that kind of file (Telegram shows all, the
terminal none, a scheduled run has no one to send to) and a non-empty file. Its impact class
is `external_effect` (it sends data out of the workspace), so a tainted step asks first.
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Literal

import msgspec

from oxydra.core.errors import ToolError
from oxydra.core.stream import MediaOut
from oxydra.core.tiers import SafetyTier
from oxydra.tools._context import ToolExecutionContext
from oxydra.tools._decorator import tool

MAX_MEDIA_BYTES = 10 * 2**20
Path = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
Caption = Annotated[str, msgspec.Meta(max_length=1024)]


@tool(timeout=30, safety_tier=SafetyTier.READ_ONLY)
async def send_media(
    ctx: ToolExecutionContext,
    path: Path,
    media_type: Literal["photo", "audio", "voice", "video", "document"],
    caption: Caption | None = None,
) -> str:
    """Send a file from the workspace to the person in this chat.

    Args:
        path: File to send, such as /shared/chart.png.
        media_type: How the chat shows it: photo, audio, voice, video or document.
        caption: Text shown with the file (at most 1024 characters).
    """
    if ctx.deliver is None or not ctx.media_types:
        raise ToolError(
            "this conversation cannot receive files (the terminal and scheduled runs "
            "cannot); tell the person where the file is instead"
        )
    if media_type not in ctx.media_types:
        kinds = ", ".join(sorted(ctx.media_types))
        raise ToolError(f"this chat cannot show a {media_type}; it takes: {kinds}")
    data, cut = await ctx.workspace.read_bytes(path, max_bytes=MAX_MEDIA_BYTES)
    if cut:
        raise ToolError(f"{path} is larger than {MAX_MEDIA_BYTES // 2**20} MiB")
    if not data:
        raise ToolError(f"{path} is empty")
    name = posixpath.basename(path.rstrip("/")) or "file"
    await ctx.deliver(
        MediaOut(file_path=path, media_type=media_type, data=data, caption=caption,
                 file_name=name)
    )  # fmt: skip
    return f"sent {name} ({len(data)} bytes) as a {media_type}"
