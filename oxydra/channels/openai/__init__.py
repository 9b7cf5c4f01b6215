"""The OpenAI-compatible endpoint: chat completions over HTTP, each API key a person."""

from oxydra.channels.openai._endpoint import OpenAIEndpoint

__all__ = ["OpenAIEndpoint"]
