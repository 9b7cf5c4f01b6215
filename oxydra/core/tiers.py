"""Tiers that policy decisions are keyed on."""

from __future__ import annotations

import enum


class SafetyTier(enum.StrEnum):
    """How much harm a tool call can do; decides approval and parallelism."""

    READ_ONLY = "read_only"
    SIDE_EFFECTING = "side_effecting"
    PRIVILEGED = "privileged"


class ImpactClass(enum.StrEnum):
    """What a call can change, for taint policy: nothing, the agent's own files, the world.

    `external_effect` covers shell commands, network writes, sending messages, creating
    schedules, memory others read, delegation and edits to instruction files.
    """

    READ_ONLY = "read_only"
    LOCAL_WRITE = "local_write"
    EXTERNAL_EFFECT = "external_effect"


class SandboxTier(enum.StrEnum):
    """How a user's guest is isolated from the host."""

    MICRO_VM = "micro_vm"
    CONTAINER = "container"
    PROCESS = "process"
