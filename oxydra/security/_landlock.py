"""Landlock through ctypes: build a filesystem ruleset in the parent, enforce it in the child.

Theory of operation:
1. `landlock_abi()` asks the kernel for its Landlock ABI version (0 when absent or
   disabled; the errno name says why). Rights unknown to that ABI are masked out, so one
   rule set works from ABI 1 (Linux 5.13) to the newest kernel (best effort, as the
   kernel documentation recommends).
2. `Ruleset.build(rules)` runs in the runner: it creates the ruleset fd and adds one
   `path_beneath` rule per existing path (opened `O_PATH`). Everything that allocates or
   can fail slowly happens here, before `fork`.
3. `Ruleset.enforce()` runs in the child between `fork` and `exec` (a `preexec_fn`): only
   `landlock_restrict_self`. `no_new_privs` must already be set (the kernel refuses
   otherwise for an unprivileged caller; we set it for root too).
4. What is not covered by a rule is denied for every handled right: the guest cannot read
   a file outside its workspace and the runtime paths it was given, whatever its uid.
   Since ABI 6 the guest is also scoped: it cannot signal processes outside its domain
   (the runner) nor connect to abstract Unix sockets outside it.

Syscall numbers are the same on every Linux architecture that has Landlock (444-446).

This module imports only the standard library: the shell's intermediate process
(`_confine_child.py`) loads it outside the package, from its own directory.
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass, field

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

_ABI_FS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
ALL_FS_V5 = (1 << 16) - 1
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ_ONLY = EXECUTE | READ_FILE | READ_DIR
READ_WRITE = ALL_FS_V5 & ~(MAKE_CHAR | MAKE_BLOCK)


def fs_rights_for(abi: int) -> int:
    """Every filesystem right the given ABI knows."""
    return _ABI_FS.get(abi, ALL_FS_V5) if abi > 0 else 0


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class LandlockError(OSError):
    """The kernel refused a ruleset or a rule (callers translate it to their layer's error)."""


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def landlock_abi() -> tuple[int, str]:
    """The kernel's Landlock ABI version, or 0 and the reason it is unusable."""
    result = _syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    if result >= 0:
        return int(result), ""
    code = ctypes.get_errno()
    reasons = {
        errno.ENOSYS: "the kernel has no Landlock support",
        errno.EOPNOTSUPP: "Landlock is disabled at boot (lsm= does not list landlock)",
    }
    return 0, reasons.get(code, f"landlock_create_ruleset failed: {os.strerror(code)}")


@dataclass(frozen=True)
class PathRule:
    """Allow `access` on everything beneath `path` (or on the file itself)."""

    path: str
    access: int


@dataclass
class Ruleset:
    """A built ruleset, ready to be enforced in a child.

    Attributes:
        fd: the ruleset's file descriptor (inherited across fork; closed by `close`).
        applied: the paths a rule was added for.
        skipped: paths that did not exist and got no rule.
    """

    fd: int
    abi: int
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, rules: list[PathRule], abi: int) -> Ruleset:
        """Create the ruleset and add `rules` (missing paths are skipped).

        Raises:
            LandlockError: the kernel refused the ruleset or a rule.
        """
        handled = fs_rights_for(abi)
        attr = _RulesetAttr(handled, 0, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
        size = ctypes.sizeof(attr) if abi >= 6 else 8
        fd = _syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
        if fd < 0:
            raise LandlockError(f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
        ruleset = cls(fd=int(fd), abi=abi)
        try:
            for rule in rules:
                ruleset._add(rule, handled)
        except BaseException:
            ruleset.close()
            raise
        return ruleset

    def _add(self, rule: PathRule, handled: int) -> None:
        try:
            target = os.open(rule.path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            self.skipped.append(rule.path)
            return
        try:
            access = rule.access & handled
            if not os.path.isdir(rule.path):
                access &= FILE_RIGHTS
            attr = _PathBeneathAttr(access, target)
            if _syscall(_ADD_RULE, self.fd, _RULE_PATH_BENEATH, ctypes.byref(attr), 0) < 0:
                err = os.strerror(ctypes.get_errno())
                raise LandlockError(f"landlock_add_rule for {rule.path}: {err}")
            self.applied.append(rule.path)
        finally:
            os.close(target)

    def enforce(self) -> None:
        """Restrict the calling process (and all it will exec or fork) to the rules.

        Call in the child only, after `no_new_privs`; raises OSError when refused.
        """
        if _syscall(_RESTRICT_SELF, self.fd, 0) < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"landlock_restrict_self: {os.strerror(code)}")

    def close(self) -> None:
        """Close the ruleset fd in the parent once the child has started."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
