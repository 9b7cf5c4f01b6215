"""`protect_agent_process`: the agent's own process made non-dumpable at start.

Kept apart from `confine` (the shell's Landlock and rlimits), which a turn that runs no
command never needs to load.
"""

from __future__ import annotations

PR_SET_DUMPABLE = 4


def protect_agent_process() -> bool:
    """Make this process non-dumpable: its `/proc/<pid>/environ` and memory become
    unreadable to other processes of the same (non-root) uid, even unconfined ones.

    A second line behind invariant 1, for the opt-in without Landlock; root is covered by
    the empty capability bounding set of the shell (no CAP_SYS_PTRACE). Inherited by no
    child: `execve` resets it.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
