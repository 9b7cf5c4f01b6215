"""Opening a path strictly beneath a directory fd: openat2 when the kernel has it, else a walk.

Both openers take a directory fd and a relative path and return an fd, or raise OSError:
`EXDEV` when the path (or a symlink on the way) would leave the directory, `ELOOP` for
loops, magic links, or a final symlink the caller refused with `O_NOFOLLOW`.

1. `Openat2Opener`: `openat2(dirfd, path, {flags, mode, RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS})`
   through `syscall(437)` (Python has no wrapper). The kernel resolves every component and
   refuses `..` escapes, absolute paths and absolute symlinks; there is no window between a
   check and the use because there is no separate check.
2. `WalkOpener` (kernels before 5.6, or a seccomp filter that blocks openat2): the
   cap-std fallback. Components are opened one at a time with `O_NOFOLLOW` relative to the
   previous component's fd; a symlink is read with `readlinkat` and its (relative) target is
   spliced into the remaining components; `..` pops the fd stack and may not pop past the
   start; absolute targets are refused (as RESOLVE_BENEATH does); 40 links at most.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from collections import deque
from typing import Protocol

SYS_OPENAT2 = 437  # the same number on every architecture (unified syscall table)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
MAX_LINKS = 40
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Opener(Protocol):
    """Opens `path` beneath `dirfd` and returns a new fd the caller must close."""

    name: str

    def open(self, dirfd: int, path: str, flags: int, mode: int = 0o600) -> int:
        """Open `path` relative to `dirfd` without ever leaving it."""
        ...


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


class Openat2Opener:
    """Kernel-enforced resolution with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`."""

    name = "openat2"

    def open(self, dirfd: int, path: str, flags: int, mode: int = 0o600) -> int:
        """See `Opener.open`."""
        how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, _RESOLVE)
        raw = os.fsencode(path)
        fd = _libc().syscall(
            SYS_OPENAT2, ctypes.c_int(dirfd), raw, ctypes.byref(how), ctypes.sizeof(how)
        )
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
        return int(fd)


_RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS


class WalkOpener:
    """Component-by-component resolution with `O_NOFOLLOW` and manual symlink splicing."""

    name = "walk"

    def open(self, dirfd: int, path: str, flags: int, mode: int = 0o600) -> int:
        """See `Opener.open`."""
        if path.startswith("/"):
            raise OSError(errno.EXDEV, "absolute path", path)
        parts = deque(_split(path))
        stack: list[int] = []
        try:
            return self._walk(dirfd, parts, stack, flags, mode, path)
        finally:
            for fd in stack:
                os.close(fd)

    def _walk(
        self, dirfd: int, parts: deque[str], stack: list[int], flags: int, mode: int, path: str
    ) -> int:
        links = 0
        while parts:
            name = parts.popleft()
            if name == "..":
                if not stack:
                    raise OSError(errno.EXDEV, "path escapes its root", path)
                os.close(stack.pop())
                continue
            current = stack[-1] if stack else dirfd
            try:
                if not parts:
                    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=current)
                stack.append(os.open(name, _DIR_FLAGS, dir_fd=current))
                continue
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                target = _link_target(name, current, exc)
                if not parts and flags & os.O_NOFOLLOW:
                    raise
            links += 1
            if links > MAX_LINKS or target.startswith("/"):
                code = errno.ELOOP if links > MAX_LINKS else errno.EXDEV
                raise OSError(code, "symlink refused", path)
            parts.extendleft(reversed(_split(target)))
        return os.open(".", flags | os.O_CLOEXEC, mode, dir_fd=stack[-1] if stack else dirfd)


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _link_target(name: str, dirfd: int, original: OSError) -> str:
    try:
        return os.readlink(name, dir_fd=dirfd)
    except OSError:
        raise original from None


@functools.cache
def openat2_works() -> bool:
    """Whether openat2 with RESOLVE_BENEATH is usable here (kernel >= 5.6, not filtered)."""
    try:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.close(Openat2Opener().open(root, ".", os.O_PATH | os.O_DIRECTORY))
    except (OSError, AttributeError):
        return False
    finally:
        os.close(root)
    return True


def default_opener() -> Opener:
    """openat2 when it works on this kernel, the walk otherwise."""
    return Openat2Opener() if openat2_works() else WalkOpener()
