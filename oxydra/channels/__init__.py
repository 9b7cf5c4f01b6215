"""Channels: chat surfaces behind one contract, and the registry of those a process runs."""

from oxydra.channels.base import Channel, ChannelCapabilities, ChannelHealth
from oxydra.channels.registry import ChannelRegistry

__all__ = ["Channel", "ChannelCapabilities", "ChannelHealth", "ChannelRegistry"]
