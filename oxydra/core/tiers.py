"""Tiers that policy decisions are keyed on."""

from __future__ import annotations

import enum


class SafetyTier(enum.StrEnum):
    """How much harm a tool call can do; decides approval and parallelism."""

    READ_ONLY = "read_only"
    SIDE_EFFECTING = "side_effecting"
    PRIVILEGED = "privileged"


class SandboxTier(enum.StrEnum):
    """How a user's guest is isolated from the host."""

    MICRO_VM = "micro_vm"
    CONTAINER = "container"
    PROCESS = "process"
