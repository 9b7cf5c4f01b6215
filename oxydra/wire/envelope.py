"""The bootstrap envelope the runner hands a guest: typed, versioned, size-limited.

Fields follow the Rust `RunnerBootstrapEnvelope`; ours adds `version`, `gateway_token`,
`credential_env` (names of variables holding provider keys: credentials by reference, never
by value) and `limits`. Framing is the 4-byte length prefix of `framing.py`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from oxydra.core.errors import WireError
from oxydra.core.tiers import SandboxTier
from oxydra.wire.framing import LengthPrefixedDecoder, encode_length_prefixed

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 64 * 1024


class SidecarEndpoint(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the shell daemon listens."""

    transport: Literal["unix", "vsock"]
    address: str


class MountPaths(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Host paths of the three virtual roots."""

    shared: str
    tmp: str
    vault: str


class ResourceLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits applied to the guest."""

    max_vcpus: int | None = None
    max_memory_mib: int | None = None
    max_processes: int | None = None


class RuntimePolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Mounts, limits and credential references."""

    mounts: MountPaths
    resources: ResourceLimits | None = None
    credential_refs: dict[str, str] | None = None


class DegradedReason(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why a capability is off (`insecure_process_tier`, `sidecar_unavailable`, ...)."""

    code: str
    detail: str


class StartupStatus(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the runner could provide.

    `hardening` (ours) names the confinement applied to a process-tier guest
    (`landlock`, `no_new_privs`, `rlimits`). At that tier the shell runs inside the guest,
    under the same confinement, so `shell_available` needs no sidecar there.
    """

    sandbox_tier: SandboxTier
    sidecar_available: bool
    shell_available: bool
    browser_available: bool
    degraded_reasons: list[DegradedReason] = []
    hardening: list[str] = []


class BootstrapEnvelope(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything a guest needs to start, from the runner."""

    user_id: str
    sandbox_tier: SandboxTier
    workspace_root: str
    version: int = ENVELOPE_VERSION
    sidecar_endpoint: SidecarEndpoint | None = None
    runtime_policy: RuntimePolicy | None = None
    startup_status: StartupStatus | None = None
    gateway_token: str | None = None
    credential_env: list[str] = []
    limits: ResourceLimits | None = None
    channels: dict[str, object] | None = None
    people: list[object] | None = None
    traceparent: str | None = None


_decoder = msgspec.json.Decoder(BootstrapEnvelope)
_encoder = msgspec.json.Encoder()


def validate_envelope(envelope: BootstrapEnvelope) -> None:
    """Cross-field rules of the Rust version, plus ours (version, absolute root)."""
    problems = []
    if envelope.version != ENVELOPE_VERSION:
        problems.append(f"envelope version {envelope.version} is not {ENVELOPE_VERSION}")
    if not envelope.user_id.strip():
        problems.append("user_id is empty")
    if not envelope.workspace_root.startswith("/"):
        problems.append(f"workspace_root {envelope.workspace_root!r} is not absolute")
    status = envelope.startup_status
    if status is not None:
        if status.sandbox_tier != envelope.sandbox_tier:
            problems.append("startup_status.sandbox_tier differs from sandbox_tier")
        in_guest_shell = envelope.sandbox_tier == SandboxTier.PROCESS
        sidecar_shell = status.shell_available and not in_guest_shell
        if (status.sidecar_available or sidecar_shell) and not envelope.sidecar_endpoint:
            problems.append("a sidecar is said to be available but no sidecar_endpoint is given")
        if (sidecar_shell or status.browser_available) and not status.sidecar_available:
            problems.append("shell or browser available without a sidecar")
    if problems:
        raise WireError("bad bootstrap envelope: " + "; ".join(problems))


def encode_envelope(envelope: BootstrapEnvelope) -> bytes:
    """The envelope as one length-prefixed frame."""
    validate_envelope(envelope)
    return encode_length_prefixed(_encoder.encode(envelope), MAX_ENVELOPE_BYTES)


def decode_envelope_json(data: bytes) -> BootstrapEnvelope:
    """Parse and validate raw envelope JSON (as in a bootstrap file).

    Raises:
        WireError: naming the problem.
    """
    if len(data) > MAX_ENVELOPE_BYTES:
        raise WireError(f"bootstrap envelope of {len(data)} bytes exceeds {MAX_ENVELOPE_BYTES}")
    try:
        envelope = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise WireError(f"bad bootstrap envelope: {exc}") from exc
    validate_envelope(envelope)
    return envelope


def decode_envelope_frame(data: bytes) -> BootstrapEnvelope:
    """Parse one length-prefixed envelope (as read from the guest's stdin)."""
    decoder = LengthPrefixedDecoder(MAX_ENVELOPE_BYTES)
    frames = decoder.feed(data)
    decoder.feed_eof()
    if len(frames) != 1:
        raise WireError(f"expected one bootstrap frame, got {len(frames)}")
    return decode_envelope_json(frames[0])
