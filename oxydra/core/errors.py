"""The one error tree of Oxydra.

Every exception we raise derives from `OxydraError`, split by who must act::

    OxydraError
    ├── ConfigError            operator must fix a file, variable or flag (never retried)
    │   └── MissingExtraError  an optional feature's extra is not installed
    ├── WireError              bytes from a peer did not follow the protocol (sans-I/O layer)
    ├── CatalogError           model catalog unreadable, model unknown
    ├── ProviderError          the LLM call failed
    │   ├── ProviderHTTPError  the remote answered with an error status
    │   │   ├── AuthenticationError    401/403: the key is wrong
    │   │   ├── RateLimitError         429: carries retry_after
    │   │   ├── ContextTooLongError    the prompt does not fit the model
    │   │   ├── BadRequestError        other 4xx, with the provider's message
    │   │   └── ServerError            5xx
    │   ├── ProviderProtocolError  the remote sent something we cannot read
    │   │   └── EmptyStreamError   a 200 stream with no body at all
    │   ├── ProviderTransportError connection failed or dropped
    │   └── ProviderTimeoutError   no answer in time
    ├── ToolError              a tool call failed (its text goes back to the model)
    │   ├── ToolArgumentsError     arguments failed validation: the model can correct them
    │   ├── ToolTimeoutError
    │   └── PolicyError            the security policy refused (jail, SSRF, shell policy)
    ├── AgentError             the turn loop stopped (budget, cancel)
    ├── MemoryStoreError       the SQLite store failed; names the database path
    ├── GatewayError / ChannelError
    ├── SchedulerError
    └── RunnerError            provisioning or launching a guest failed
        └── RunnerNotRunningError  no runner daemon listens on the control socket

Constructors do no I/O and no logging. Each dependency's exceptions are translated to
the most specific of ours at one boundary, with ``raise ... from exc``.
"""

from __future__ import annotations


class OxydraError(Exception):
    """Root of every error Oxydra raises.

    Attributes:
        hint: what the user can do about it, when we know.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ConfigError(OxydraError):
    """A configuration problem: names the file, the key path and what was expected."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        hint: str | None = None,
        problems: list[str] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.key = key
        self.problems = problems if problems is not None else [message]


def running_from_archive() -> bool:
    """Whether this code runs from `oxydra.pyz` (its bootstrap's importer, `oxydra.py`)
    rather than an installed package."""
    return type(globals().get("__loader__")).__name__ == "_ArchiveImporter"


def install_hint(extra: str) -> str:
    """How to get an optional extra: pip for an installation; a rebuild for the archive,
    where pip cannot add anything."""
    if running_from_archive():
        return (
            f"this oxydra.pyz was built without the '{extra}' extra; build one with it: "
            f"python build_pyz.py --with {extra} (from a source checkout after `make install`)"
        )
    return f"install the '{extra}' extra: pip install 'oxydra[{extra}]'"


class MissingExtraError(ConfigError):
    """An optional dependency is absent; names the feature and the extra that brings it."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the optional module '{module}', which is not installed",
            hint=install_hint(extra),
        )
        self.feature = feature
        self.extra = extra


class WireError(OxydraError):
    """A peer's bytes broke the protocol we decode (SSE, frames, envelope)."""


class CatalogError(OxydraError):
    """The model catalog could not be read, or a model is not in it."""


class ProviderError(OxydraError):
    """An LLM provider call failed.

    Attributes:
        provider: registry entry or provider type that failed.
        retryable: whether a retry of the same request may succeed.
    """

    retryable: bool = False

    def __init__(self, message: str, *, provider: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.provider = provider


class ProviderHTTPError(ProviderError):
    """The provider answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        provider: str = "",
        body: str = "",
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}: {message}", provider=provider, hint=hint)
        self.status = status
        self.body = body
        self.retry_after = retry_after


class AuthenticationError(ProviderHTTPError):
    """The API key was refused."""


class RateLimitError(ProviderHTTPError):
    """429: too many requests; `retry_after` says how long the provider asked us to wait."""

    retryable = True


class ContextTooLongError(ProviderHTTPError):
    """The request does not fit the model's context window."""


class BadRequestError(ProviderHTTPError):
    """The provider rejected the request (4xx); its own message is kept."""


class ServerError(ProviderHTTPError):
    """The provider failed on its side (5xx)."""

    retryable = True


class ProviderProtocolError(ProviderError):
    """The provider sent something we cannot read (bad JSON, HTML page, empty body)."""


class EmptyStreamError(ProviderProtocolError):
    """A stream answered 200 with no body at all (llama.cpp's server, when it cannot stream
    tool calls); the same request without streaming usually works."""


class ProviderTransportError(ProviderError):
    """The connection failed or dropped before an answer arrived."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time."""

    retryable = True


class ToolError(OxydraError):
    """A tool call failed; its text is fed back to the model as the tool result."""


class ToolArgumentsError(ToolError):
    """The model's arguments do not fit the tool's schema; the text says exactly why."""


class ToolTimeoutError(ToolError):
    """A tool ran past its timeout and was stopped."""


class PolicyError(ToolError):
    """The security policy refused the action (workspace jail, SSRF guard, shell policy)."""


class AgentError(OxydraError):
    """The turn loop stopped before a final answer."""


class MemoryStoreError(OxydraError):
    """The memory store failed; the message names the database path."""


class GatewayError(OxydraError):
    """A gateway request could not be served."""


class ChannelError(OxydraError):
    """A channel adapter failed to send or receive."""


class SchedulerError(OxydraError):
    """A schedule is invalid or could not be run."""


class RunnerError(OxydraError):
    """Provisioning or launching a user's guest failed."""


class RunnerNotRunningError(RunnerError):
    """No runner daemon listens on the control socket (callers may fall back to files)."""
