"""What an inbound message becomes: a refusal, or a prompt with its files and provenance.

Files: the largest photo, voice, audio, video, video note and document, at most 4 per
message and 10 MiB each; a bigger file is refused (with a reply naming its size) before any
download, and downloads are cut at the limit anyway. An album arrives as one message per
file (sharing a `media_group_id`): the first 4 files are taken and the rest refused, said
once. A forwarded message, or one from a person not marked trusted, is untrusted input.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from oxydra.channels.telegram._api import BotApi
from oxydra.config.people import PersonView
from oxydra.core.errors import ChannelError
from oxydra.core.messages import MediaPart
from oxydra.core.provenance import Label, untrusted
from oxydra.wire.telegram import TgMessage, media_of

MAX_FILES, MAX_FILE_BYTES = 4, 10 * 2**20
_info = msgspec.json.Decoder(dict[str, Any])


class Inbound:
    """Turns messages into prompts; remembers recent albums to count their files."""

    def __init__(self, api: BotApi) -> None:
        self.api = api
        self._groups: OrderedDict[str, int] = OrderedDict()

    def refusal(self, message: TgMessage) -> str | None:
        """Why a message's files are not taken ("" = refuse silently), or None."""
        files = media_of(message)
        for ref in files:
            if ref.size is not None and ref.size > MAX_FILE_BYTES:
                return (
                    f"📎 That {ref.kind} is {ref.size / 2**20:.1f} MiB; files over "
                    f"{MAX_FILE_BYTES // 2**20} MiB are not read. Send a smaller one."
                )
        group = message.media_group_id
        if group is None or not files:
            return None
        before = self._groups.get(group, 0)
        self._groups[group] = before + len(files)
        while len(self._groups) > 1024:
            self._groups.popitem(last=False)
        if before + len(files) <= MAX_FILES:
            return None
        if before > MAX_FILES:
            return ""  # said once, for the first file over the limit
        return f"📎 Only the first {MAX_FILES} files of an album are read; the rest were skipped."

    async def prompt(
        self, message: TgMessage, person: PersonView
    ) -> tuple[str, tuple[MediaPart, ...], Label | None]:
        forwarded = message.forward_origin is not None or message.forward_from is not None
        label: Label | None = None
        if forwarded:
            label = untrusted("chat", f"telegram message forwarded by {person.id}")
        elif not person.trusted:
            label = untrusted("chat", f"{person.id} via telegram")
        parts: list[MediaPart] = []
        for ref in media_of(message)[:MAX_FILES]:
            info = _info.decode(await self.api.call("getFile", {"file_id": ref.file_id}))
            size = info.get("file_size")
            if isinstance(size, int) and size > MAX_FILE_BYTES:
                raise ChannelError(f"a {ref.kind} of {size} bytes is over the 10 MiB limit")
            data = await self.api.download(str(info.get("file_path", "")), MAX_FILE_BYTES)
            parts.append(MediaPart(mime_type=ref.mime_type, data=data, label=label))
        text = message.text or message.caption or ""
        if not text and parts:
            text = "[The user sent media without a caption.]"
        return text or " ", tuple(parts), label
