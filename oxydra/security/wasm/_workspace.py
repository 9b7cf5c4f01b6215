"""`WasmWorkspace`: the jail's file operations, each run by the WASI guest.

The host keeps the jail's path rules (via `Workspace.locate`: NUL bytes, length, virtual
roots, lexical `..`, read-only mounts) and then hands the guest the normalized virtual path.
The guest opens it under the preopens of the operation's class, so whatever the host
missed (a symlink out of a mount, a path into `.oxydra`) fails inside the sandbox:

- read class (read, list, search): every mount of the view, all read-only;
- write class (write, edit, delete): only the view's writable mounts, read-write.

`vault_copyto` gets its two guest instances from two restricted views: the vault alone
(read), then /shared and /tmp (write). `.oxydra` is never preopened.

One thing WASI cannot do is open without blocking: wasmtime opens a FIFO with a blocking
open(2). So before a guest opens a named path, the host looks at it through the jail's
`Opener` (O_PATH, beneath the mount, never blocks) and refuses FIFOs, sockets and devices.
A FIFO swapped in between that look and the guest's open can park one worker thread until a
writer appears; it cannot reach anything outside the sandbox.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable

from oxydra.core.errors import PolicyError, ToolError
from oxydra.security.jail import Mount, SearchHit, Workspace
from oxydra.security.wasm._protocol import GuestReply, Op, read_u64, u64
from oxydra.security.wasm._runtime import Edit, Preopen, Profile, WasmSandbox

READ_OPS = frozenset({Op.READ, Op.LIST, Op.SEARCH})
WRITE_OPS = frozenset({Op.WRITE, Op.EDIT, Op.DELETE})
EDIT_LIMIT = 1 << 24
HIT_CHARS = 500

_OUTSIDE = "resolves outside {mount} (a symlink or '..' leads out)"
_REASONS: dict[str, tuple[type[ToolError], str]] = {
    "EPERM": (PolicyError, _OUTSIDE),
    "ENOTCAPABLE": (PolicyError, _OUTSIDE),
    "EXDEV": (PolicyError, _OUTSIDE),
    "ELOOP": (
        PolicyError,
        "is or passes a symbolic link that is not followed here (loop, magic link, "
        "absolute link, or a write through a link)",
    ),
    "ENAMETOOLONG": (PolicyError, "has a name that is too long"),
    "NOTREG": (PolicyError, "is not a regular file (FIFO, socket or device)"),
    "NLINK": (
        PolicyError,
        "has {detail} hard links; refusing it because a hard link can alias a file outside "
        "the workspace (copy the file instead of linking it)",
    ),
    "ENOENT": (ToolError, "does not exist"),
    "ENOTDIR": (ToolError, "has a component that is not a directory"),
    "EISDIR": (ToolError, "is a directory"),
    "EACCES": (ToolError, "is not accessible (permission denied)"),
    "ENOTEMPTY": (ToolError, "is a directory that is not empty"),
    "ENOMEM": (ToolError, "is too large for the sandbox's memory"),
    "TOOBIG": (ToolError, f"is larger than {EDIT_LIMIT} bytes; it cannot be edited in place"),
    "TOODEEP": (ToolError, "holds a directory tree too deep for the sandbox"),
    "BADREQ": (ToolError, "was sent to the sandbox in a malformed request ({detail})"),
}


class WasmWorkspace:
    """A `Workspace`-shaped object whose file operations run in the WASM guest.

    Args:
        workspace: the jail that names the mounts and applies the path rules.
        sandbox: the guest runner (one per process is enough; it is thread-safe).
    """

    def __init__(self, workspace: Workspace, sandbox: WasmSandbox | None = None) -> None:
        from oxydra.security.wasm import _cache

        _cache.keep_out(m.host for m in workspace.mounts)  # before the guest is loaded
        self.workspace = workspace
        self.sandbox = sandbox if sandbox is not None else WasmSandbox()

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """The view's mounts (virtual name, host directory, writable)."""
        return self.workspace.mounts

    def restricted(self, *, read: Iterable[str], write: Iterable[str]) -> WasmWorkspace:
        """A view with only some mounts, as `Workspace.restricted`; its guests see no more."""
        return WasmWorkspace(self.workspace.restricted(read=read, write=write), self.sandbox)

    def to_virtual(self, text: str) -> str:
        """Rewrite host paths in `text` to virtual ones."""
        return self.workspace.to_virtual(text)

    def host_path(self, virtual: str) -> str:
        """The host path of a virtual path (for a shell's working directory)."""
        return self.workspace.host_path(virtual)

    def profile(self, ops: frozenset[Op]) -> Profile:
        """The capability profile for one class of ops over this view's existing mounts."""
        writing = ops == WRITE_OPS
        preopens = tuple(
            Preopen(guest=m.virtual, host=m.host, writable=writing)
            for m in self.mounts
            if (m.writable or not writing) and os.path.isdir(m.host)
        )
        label = ",".join(p.guest for p in preopens) or "nothing"
        name = f"{'write' if writing else 'read'}[{label}]"
        return Profile(name=name, ops=ops, preopens=preopens)

    # -- reading ---------------------------------------------------------------------------

    def read_bytes(self, path: str, *, max_bytes: int = 1 << 20) -> tuple[bytes, bool]:
        """Read a regular file; returns up to `max_bytes` and whether it was longer."""
        mount, virtual = self._target(path, follow=True)
        reply = self._call(mount, virtual, Op.READ, [u64(max_bytes)])
        data, cut = reply.fields
        return data, cut == b"\x01"

    def read_text(self, path: str, *, max_bytes: int = 1 << 20) -> tuple[str, bool]:
        """Read a UTF-8 text file (undecodable bytes replaced); see `read_bytes`."""
        data, truncated = self.read_bytes(path, max_bytes=max_bytes)
        return data.decode("utf-8", errors="replace"), truncated

    def list_dir(self, path: str) -> list[str]:
        """Sorted entry names of a directory; directories end in `/`."""
        mount, virtual = self.workspace.locate(path)
        reply = self._call(mount, virtual, Op.LIST, [])
        return sorted(os.fsdecode(name) for name in reply.fields)

    def search(
        self, path: str, query: str, *, max_matches: int = 200, max_file_bytes: int = 1 << 20
    ) -> list[SearchHit]:
        """Lines containing `query` in regular files under `path`; symlinks never followed.

        The guest matches bytes, so a query holding U+FFFD does not match the replacement
        characters the jail's decoding would put in place of invalid UTF-8.
        """
        mount, virtual = self._target(path, follow=True)
        limits = [query.encode("utf-8"), u64(max_matches), u64(max_file_bytes)]
        fields = self._call(mount, virtual, Op.SEARCH, limits).fields
        return [
            SearchHit(
                path=os.fsdecode(fields[i]),
                line=read_u64(fields[i + 1]),
                text=fields[i + 2].decode("utf-8", errors="replace")[:HIT_CHARS],
            )
            for i in range(0, len(fields) - 2, 3)
        ]

    # -- writing ---------------------------------------------------------------------------

    def write_bytes(self, path: str, data: bytes) -> int:
        """Create or overwrite a regular file, creating missing parent directories."""
        mount, virtual = self._target(path, follow=False, write=True)
        if virtual == mount.virtual:
            raise ToolError(f"{virtual} is a directory")
        reply = self._call(mount, virtual, Op.WRITE, [data])
        return read_u64(reply.fields[0])

    def write_text(self, path: str, text: str) -> int:
        """Write `text` as UTF-8; returns the number of bytes written."""
        return self.write_bytes(path, text.encode("utf-8"))

    def update_text(self, path: str, change: Callable[[str], str]) -> str:
        """Read, transform and rewrite one file through a single guest fd; returns the text."""
        mount, virtual = self._target(path, follow=False, write=True)
        result: list[str] = []

        def edit(raw: bytes) -> bytes:
            result.append(change(raw.decode("utf-8")))
            return result[-1].encode("utf-8")

        self._call(mount, virtual, Op.EDIT, [u64(EDIT_LIMIT)], edit=edit)
        return result[-1]

    def delete(self, path: str) -> str:
        """Delete a file, a symlink (never its target) or a directory tree; returns the kind."""
        mount, virtual = self.workspace.locate(path, write=True)
        if virtual == mount.virtual:
            raise PolicyError(f"refusing to delete {virtual} itself")
        reply = self._call(mount, virtual, Op.DELETE, [])
        return reply.fields[0].decode("ascii")

    # -- internals -------------------------------------------------------------------------

    def _target(self, path: str, *, follow: bool, write: bool = False) -> tuple[Mount, str]:
        mount, virtual = self.workspace.locate(path, write=write)
        kind = _kind_beneath(self.workspace, mount, virtual, follow=follow)
        if kind is not None and not (stat.S_ISREG(kind) or stat.S_ISDIR(kind)):
            if not stat.S_ISLNK(kind):
                raise PolicyError(f"{virtual} is not a regular file (FIFO, socket or device)")
        return mount, virtual

    def _call(
        self, mount: Mount, virtual: str, op: Op, rest: list[bytes], *, edit: Edit | None = None
    ) -> GuestReply:
        ops = WRITE_OPS if op in WRITE_OPS else READ_OPS
        fields = [os.fsencode(virtual), *rest]
        reply = self.sandbox.call(self.profile(ops), op, fields, edit=edit)
        if not reply.ok:
            raise _error(reply, mount, virtual)
        return reply


def _kind_beneath(workspace: Workspace, mount: Mount, virtual: str, *, follow: bool) -> int | None:
    """`st_mode` of the target opened O_PATH beneath its mount, or None if it cannot be."""
    relative = virtual[len(mount.virtual) + 1 :] or "."
    flags = os.O_PATH | (0 if follow else os.O_NOFOLLOW)
    try:
        root = os.open(mount.host, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = workspace.opener.open(root, relative, flags)
    except OSError:
        return None  # missing or refused: the guest gives the authoritative answer
    finally:
        os.close(root)
    try:
        return os.fstat(fd).st_mode
    finally:
        os.close(fd)


def _error(reply: GuestReply, mount: Mount, virtual: str) -> ToolError:
    kind, template = _REASONS.get(reply.code, (ToolError, "failed: {detail}"))
    why = template.format(mount=mount.virtual, detail=reply.detail)
    return kind(f"{virtual} {why}")
