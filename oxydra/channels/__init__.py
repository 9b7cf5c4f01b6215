"""Channels: chat surfaces behind one contract, and the registry of those a process runs.

`CHANNEL_SCHEMA` names the migrations of the channels' tables (offsets, inbox, outbox, the
people's sessions and spend); the Telegram adapter is `oxydra.channels.telegram`.
"""

from oxydra.channels._audit import SenderAudit
from oxydra.channels._store import CHANNEL_SCHEMA, ChannelStore
from oxydra.channels.base import Channel, ChannelCapabilities, ChannelHealth
from oxydra.channels.registry import ChannelRegistry

__all__ = [
    "CHANNEL_SCHEMA",
    "Channel",
    "ChannelCapabilities",
    "ChannelHealth",
    "ChannelRegistry",
    "ChannelStore",
    "SenderAudit",
]
