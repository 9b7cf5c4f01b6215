"""The workspace jail: file operations confined to a user's /shared, /tmp and /vault.

Invariants:
1. A path is refused before any system call if it holds a NUL byte or is over 4096 chars.
2. Paths are virtual (`/shared/a.md`); relative paths are under `/shared` (or the first mount
   of a restricted view); a host path inside
   a mount is accepted and mapped back. `..` is applied lexically within the mount and may
   not climb above it. Names are taken literally: no `~`, percent or Unicode decoding.
3. Every open goes through an `Opener` relative to the mount's directory fd (openat2 with
   RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS, or the O_NOFOLLOW walk), and every later step
   uses the fd that open returned, so a path swapped between "check" and "use" cannot
   redirect the operation: there is no separate check.
4. Only regular files are read or written (FIFOs and devices could hang or leak). A regular
   file with more than one hard link is refused: a link made inside the workspace to a file
   outside is indistinguishable from the original by path, and `st_nlink` is the only
   signal (files the agent itself hard-linked are refused too; copy instead).
5. Writes go only to writable mounts (/shared, /tmp), never through a final symlink, and
   truncate only after the fd has passed rule 4.
6. The workspace's `.oxydra/` (config, memory database) is not under any mount, so no path,
   relative symlink or absolute host path can reach it.
7. No write, edit, rename or delete may name a persona file (`SOUL.md`, `SYSTEM.md`,
   `USER.md`, any case), wherever the path points: the real ones live in config layers and
   `.oxydra/`, outside every mount (rule 6), and a copy in `/shared` must not look like one
   the agent could change. The refusal says so and writes an `oxydra.audit` record.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import msgspec

from oxydra.core.errors import PolicyError, ToolError
from oxydra.security._openat import Opener, default_opener

MAX_PATH_CHARS = 4096
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW
_PATH_DIR = os.O_PATH | os.O_DIRECTORY
_T = TypeVar("_T")
_BOUNDARY = r"(?=[/\s'\"`:,;)\]}>]|$)"
PERSONA_NAMES = frozenset({"soul.md", "system.md", "user.md"})
_audit = logging.getLogger("oxydra.audit")


class Mount(msgspec.Struct, frozen=True, kw_only=True):
    """A virtual directory and the host directory behind it."""

    virtual: str
    host: str
    writable: bool


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """One matching line of `Workspace.search`, with its virtual path."""

    path: str
    line: int
    text: str


class _Target(msgspec.Struct, frozen=True):
    mount: Mount
    parts: tuple[str, ...]

    @property
    def virtual(self) -> str:
        return "/".join((self.mount.virtual, *self.parts))

    @property
    def relative(self) -> str:
        return "/".join(self.parts) or "."


class Workspace:
    """A user's jailed file area. Thread-safe: every call opens its own fds.

    Args:
        mounts: the virtual directories; `/shared` is where relative paths land.
        root: the user's workspace root, used to map host paths back to virtual ones.
        opener: how paths are opened beneath a mount (openat2 or the walk).
    """

    def __init__(
        self, mounts: Sequence[Mount], *, root: str | None = None, opener: Opener | None = None
    ) -> None:
        self.mounts = tuple(
            msgspec.structs.replace(m, host=os.path.realpath(m.host)) for m in mounts
        )
        self.root = os.path.realpath(root) if root else None
        self.opener = opener if opener is not None else default_opener()
        self._rewrites = _rewrite_table(self.mounts, self.root, mounts)

    @classmethod
    def for_user(cls, root: str | os.PathLike[str], *, opener: Opener | None = None) -> Workspace:
        """The standard layout under `root`: shared and tmp writable, vault read-only."""
        base = os.fspath(root)
        mounts = [
            Mount(virtual="/shared", host=os.path.join(base, "shared"), writable=True),
            Mount(virtual="/tmp", host=os.path.join(base, "tmp"), writable=True),
            Mount(virtual="/vault", host=os.path.join(base, "vault"), writable=False),
        ]
        return cls(mounts, root=base, opener=opener)

    def restricted(self, *, read: Iterable[str], write: Iterable[str]) -> Workspace:
        """A view with only some mounts: `read` read-only, `write` writable (by virtual name)."""
        readable, writable = set(read), set(write)
        mounts = [
            msgspec.structs.replace(m, writable=m.virtual in writable and m.writable)
            for m in self.mounts
            if m.virtual in readable | writable
        ]
        view = Workspace(mounts, root=self.root, opener=self.opener)
        view._rewrites = self._rewrites
        return view

    def locate(self, path: str, *, write: bool = False) -> tuple[Mount, str]:
        """The mount and normalized virtual path of `path`, refused as the operations refuse.

        For another enforcer (the WASM guest) that must see the same virtual path the jail
        would open; it applies rules 1 and 2 and the read-only check of rule 5.
        """
        target = self._locate(path, write=write)
        return target.mount, target.virtual

    def host_path(self, virtual: str) -> str:
        """The host path of a virtual path (for a shell's working directory)."""
        target = self._locate(virtual)
        return os.path.join(target.mount.host, *target.parts)

    def to_virtual(self, text: str) -> str:
        """Rewrite host paths in `text` to virtual ones, longest prefix first."""
        for pattern, replacement in self._rewrites:
            text = pattern.sub(replacement, text)
        return text

    # -- reading ---------------------------------------------------------------------------

    def read_bytes(self, path: str, *, max_bytes: int = 1 << 20) -> tuple[bytes, bool]:
        """Read a regular file; returns up to `max_bytes` and whether it was longer."""
        target = self._locate(path)
        with self._open_file(target, _READ_FLAGS) as fd:
            data = _read_fd(fd, max_bytes + 1)
        return data[:max_bytes], len(data) > max_bytes

    def read_text(self, path: str, *, max_bytes: int = 1 << 20) -> tuple[str, bool]:
        """Read a UTF-8 text file (undecodable bytes replaced); see `read_bytes`."""
        data, truncated = self.read_bytes(path, max_bytes=max_bytes)
        return data.decode("utf-8", errors="replace"), truncated

    def list_dir(self, path: str) -> list[str]:
        """Sorted entry names of a directory; directories end in `/`."""
        target = self._locate(path)
        with self._open_dir(target) as fd, os.scandir(fd) as entries:
            names = [e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries]
        return sorted(names)

    def search(
        self, path: str, query: str, *, max_matches: int = 200, max_file_bytes: int = 1 << 20
    ) -> list[SearchHit]:
        """Lines containing `query` in regular files under `path`; symlinks are never followed."""
        target = self._locate(path)
        hits: list[SearchHit] = []
        with self._open_any(target) as fd:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                _check_regular(fd, target.virtual)
                data = _read_fd(fd, max_file_bytes)
                return _grep_data(data, target.virtual, query)[:max_matches]
            for rel, dirfd, name in _walk_files(fd):
                virtual = "/".join(p for p in (target.virtual, rel, name) if p)
                hits.extend(_grep(dirfd, name, virtual, query, max_file_bytes))
                if len(hits) >= max_matches:
                    return hits[:max_matches]
        return hits

    # -- writing ---------------------------------------------------------------------------

    def write_bytes(self, path: str, data: bytes) -> int:
        """Create or overwrite a regular file, creating missing parent directories."""
        target = self._locate(path, write=True)
        if not target.parts:
            raise ToolError(f"{target.virtual} is a directory")
        with self._parent(target, create=True) as parent:
            fd = self._leaf_fd(parent, target)
            try:
                os.ftruncate(fd, 0)
                _write_all(fd, data)
            finally:
                os.close(fd)
        return len(data)

    def write_text(self, path: str, text: str) -> int:
        """Write `text` as UTF-8; returns the number of bytes written."""
        return self.write_bytes(path, text.encode("utf-8"))

    def update_text(self, path: str, change: Callable[[str], str]) -> str:
        """Read, transform and rewrite one file through a single fd; returns the new text."""
        target = self._locate(path, write=True)
        with self._open_file(target, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW) as fd:
            text = _read_fd(fd, 1 << 24).decode("utf-8")
            updated = change(text)
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            _write_all(fd, updated.encode("utf-8"))
        return updated

    def delete(self, path: str) -> str:
        """Delete a file, a symlink (never its target) or a directory tree; returns the kind."""
        target = self._locate(path, write=True)
        if not target.parts:
            raise PolicyError(f"refusing to delete {target.virtual} itself")
        with self._parent(target, create=False) as parent:
            leaf = target.parts[-1]
            info = self._call(target, lambda: os.stat(leaf, dir_fd=parent, follow_symlinks=False))
            if stat.S_ISDIR(info.st_mode):
                self._call(target, lambda: shutil.rmtree(leaf, dir_fd=parent))
                return "directory"
            self._call(target, lambda: os.unlink(leaf, dir_fd=parent))
        return "symlink" if stat.S_ISLNK(info.st_mode) else "file"

    # -- internals -------------------------------------------------------------------------

    def _locate(self, path: str, *, write: bool = False) -> _Target:
        if "\x00" in path:
            raise PolicyError("path contains a NUL byte")
        if len(path) > MAX_PATH_CHARS:
            raise PolicyError(f"path is longer than {MAX_PATH_CHARS} characters")
        if not path:
            raise PolicyError("path is empty")
        if write:
            refuse_persona_write(path)
        mount, rest = self._mount_of(path)
        parts = _normalize(rest, mount.virtual)
        if write and not mount.writable:
            raise PolicyError(f"{mount.virtual} is read-only")
        return _Target(mount, parts)

    def _mount_of(self, path: str) -> tuple[Mount, str]:
        if not path.startswith("/"):
            default = next((m for m in self.mounts if m.virtual == "/shared"), None)
            return default or self._mount(self.mounts[0].virtual if self.mounts else "/"), path
        for mount in sorted(self.mounts, key=lambda m: -len(m.host)):
            if _under(path, mount.host):
                return mount, path[len(mount.host) :]
        if self.root and _under(path, self.root):
            raise PolicyError(f"that path is outside the workspace areas ({self._names()})")
        for mount in self.mounts:
            if _under(path, mount.virtual):
                return mount, path[len(mount.virtual) :]
        raise PolicyError(f"{path} is outside the workspace (use {self._names()})")

    def _mount(self, virtual: str) -> Mount:
        for mount in self.mounts:
            if mount.virtual == virtual:
                return mount
        raise PolicyError(f"{virtual} is not available to this tool (only {self._names()})")

    def _names(self) -> str:
        return ", ".join(m.virtual for m in self.mounts) or "nothing"

    @contextmanager
    def _root_fd(self, mount: Mount) -> Iterator[int]:
        try:
            fd = os.open(mount.host, _PATH_DIR | os.O_CLOEXEC)
        except OSError as exc:
            raise ToolError(f"{mount.virtual} is not available ({exc.strerror})") from exc
        try:
            yield fd
        finally:
            os.close(fd)

    def _open(self, target: _Target, flags: int) -> int:
        with self._root_fd(target.mount) as root:
            return self._call(target, lambda: self.opener.open(root, target.relative, flags))

    @contextmanager
    def _open_file(self, target: _Target, flags: int) -> Iterator[int]:
        fd = self._open(target, flags)
        try:
            _check_regular(fd, target.virtual)
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def _open_any(self, target: _Target) -> Iterator[int]:
        fd = self._open(target, _READ_FLAGS)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def _open_dir(self, target: _Target) -> Iterator[int]:
        fd = self._open(target, os.O_RDONLY | os.O_DIRECTORY)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def _parent(self, target: _Target, *, create: bool) -> Iterator[int]:
        with self._root_fd(target.mount) as root:
            fd = os.dup(root)
            try:
                for index, name in enumerate(target.parts[:-1]):
                    fd = self._step(root, fd, target, index, name, create)
                yield fd
            finally:
                os.close(fd)

    def _step(
        self, root: int, fd: int, target: _Target, index: int, name: str, create: bool
    ) -> int:
        prefix = "/".join(target.parts[: index + 1])
        try:
            opened = self.opener.open(root, prefix, _PATH_DIR)
        except FileNotFoundError:
            if not create:
                raise ToolError(f"no such directory: {target.mount.virtual}/{prefix}") from None
            self._call(target, lambda: _mkdir_quiet(name, fd))
            opened = self._call(target, lambda: self.opener.open(root, prefix, _PATH_DIR))
        except OSError as exc:
            raise _translate(exc, target) from exc
        os.close(fd)
        return opened

    def _leaf_fd(self, parent: int, target: _Target) -> int:
        leaf = target.parts[-1]
        fd = self._call(
            target, lambda: os.open(leaf, _WRITE_FLAGS | os.O_CLOEXEC, 0o644, dir_fd=parent)
        )
        try:
            _check_regular(fd, target.virtual)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _call(self, target: _Target, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except OSError as exc:
            raise _translate(exc, target) from exc


def refuse_persona_write(path: str, *, action: str = "write") -> None:
    """Rule 7: raise (and audit) when `path` names a persona file."""
    leaf = posixpath.basename(posixpath.normpath(path))
    if leaf.casefold() not in PERSONA_NAMES:
        return
    _audit.warning(
        "persona change refused",
        extra={"oxy": {"audit": "persona", "action": action, "path": path}},
    )
    raise PolicyError(
        f"{leaf} is an operator-owned persona file: the agent cannot write, rename, delete "
        "or link it (USER.md changes can be proposed with user_profile_propose)"
    )


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _normalize(rest: str, virtual: str) -> tuple[str, ...]:
    parts: list[str] = []
    for part in rest.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PolicyError(f"path climbs above {virtual}")
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts)


def _rewrite_table(
    mounts: Sequence[Mount], root: str | None, originals: Sequence[Mount]
) -> list[tuple[re.Pattern[str], str]]:
    pairs = {m.host: m.virtual for m in mounts}
    pairs.update({os.path.normpath(m.host): m.virtual for m in originals if m.host})
    if root:
        pairs.setdefault(root, "")
    ordered = sorted(pairs.items(), key=lambda item: -len(item[0]))
    return [(re.compile(re.escape(host) + _BOUNDARY), virtual) for host, virtual in ordered]


def _check_regular(fd: int, virtual: str) -> None:
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise ToolError(f"{virtual} is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise PolicyError(f"{virtual} is not a regular file (FIFO, socket or device)")
    if info.st_nlink > 1:
        raise PolicyError(
            f"{virtual} has {info.st_nlink} hard links; refusing it because a hard link can "
            "alias a file outside the workspace (copy the file instead of linking it)"
        )


def _read_fd(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 16, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _mkdir_quiet(name: str, dirfd: int) -> None:
    try:
        os.mkdir(name, 0o755, dir_fd=dirfd)
    except FileExistsError:
        pass


def _walk_files(fd: int) -> Iterator[tuple[str, int, str]]:
    for dirpath, dirnames, filenames, dirfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
        dirnames.sort()
        rel = dirpath[2:] if dirpath.startswith("./") else ""
        for name in sorted(filenames):
            yield rel, dirfd, name


def _grep(dirfd: int, name: str, virtual: str, query: str, max_bytes: int) -> list[SearchHit]:
    try:
        fd = os.open(name, _READ_FLAGS | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    except OSError:
        return []
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            return []
        data = _read_fd(fd, max_bytes)
    finally:
        os.close(fd)
    return _grep_data(data, virtual, query)


def _grep_data(data: bytes, virtual: str, query: str) -> list[SearchHit]:
    if b"\x00" in data[:8192]:
        return []
    lines = data.decode("utf-8", errors="replace").split("\n")
    return [
        SearchHit(path=virtual, line=number, text=line[:500])
        for number, line in enumerate(lines, 1)
        if query in line
    ]


_POLICY_ERRNOS = {
    errno.EXDEV: "resolves outside {mount} (a symlink or '..' leads out)",
    errno.ELOOP: "is or passes a symbolic link that is not followed here (loop, magic link, "
    "absolute link, or a write through a link)",
    errno.ENAMETOOLONG: "has a name that is too long",
}
_TOOL_ERRNOS = {
    errno.ENOENT: "does not exist",
    errno.ENOTDIR: "has a component that is not a directory",
    errno.EISDIR: "is a directory",
    errno.EACCES: "is not accessible (permission denied)",
    errno.EPERM: "is not accessible (operation not permitted)",
    errno.ENOTEMPTY: "is a directory that is not empty",
}


def _translate(exc: OSError, target: _Target) -> Exception:
    code = exc.errno if exc.errno is not None else 0
    if code in _POLICY_ERRNOS:
        why = _POLICY_ERRNOS[code].format(mount=target.mount.virtual)
        return PolicyError(f"{target.virtual} {why}")
    why = _TOOL_ERRNOS.get(code, f"failed: {exc.strerror or type(exc).__name__}")
    return ToolError(f"{target.virtual} {why}")
