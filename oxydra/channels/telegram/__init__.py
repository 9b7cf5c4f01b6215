"""Telegram: a thin Bot API client, long polling under a watchdog, crash-safe delivery."""

from oxydra.channels.telegram._channel import TelegramChannel

__all__ = ["TelegramChannel"]
