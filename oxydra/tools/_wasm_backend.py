"""`WasmFileBackend`: the file seam with every operation run in the WASI guest.

Same protocol as `LocalFileBackend`, so the file tools do not change; each call goes to a
worker thread (wasmtime blocks) and from there into a fresh guest instance whose preopens
are those of the operation's class (see `oxydra.security.wasm`). `select_file_backend`
turns `[tools] isolation` into a backend, falling back to the in-process jail with a logged
reason when `auto` finds no wasmtime or no guest.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Callable, Iterable
from typing import Literal

from oxydra.core.errors import ConfigError, MissingExtraError
from oxydra.core.log import get_logger
from oxydra.security import SearchHit, Workspace
from oxydra.security.wasm import WasmSandbox, WasmWorkspace, wasm_unavailable_reason
from oxydra.tools._backend import FileBackend, LocalFileBackend

Isolation = Literal["auto", "wasm", "process"]
_log = get_logger(__name__)


class WasmFileBackend:
    """`FileBackend` whose operations run in the WASM guest, each call in a worker thread."""

    def __init__(self, files: WasmWorkspace) -> None:
        self.files = files
        self._warming = False

    @classmethod
    def for_workspace(
        cls, workspace: Workspace, sandbox: WasmSandbox | None = None
    ) -> WasmFileBackend:
        """A backend over the jail's mounts (the jail still applies the path rules first)."""
        return cls(WasmWorkspace(workspace, sandbox))

    def start_warming(self) -> None:
        """Load wasmtime and compile the guest in a background thread.

        Compiling takes ~40 ms and releases the GIL, so done while the first model call is
        in flight it is off the turn's critical path.
        """
        if not self._warming:
            self._warming = True
            thread = threading.Thread(target=self.files.sandbox.warm, name="wasm-warm", daemon=True)
            thread.start()

    async def read_text(self, path: str, *, max_bytes: int) -> tuple[str, bool]:
        """See `FileBackend.read_text`."""
        return await asyncio.to_thread(self.files.read_text, path, max_bytes=max_bytes)

    async def read_bytes(self, path: str, *, max_bytes: int) -> tuple[bytes, bool]:
        """See `FileBackend.read_bytes`."""
        return await asyncio.to_thread(self.files.read_bytes, path, max_bytes=max_bytes)

    async def write_bytes(self, path: str, data: bytes) -> int:
        """See `FileBackend.write_bytes`."""
        return await asyncio.to_thread(self.files.write_bytes, path, data)

    async def update_text(self, path: str, change: Callable[[str], str]) -> str:
        """See `FileBackend.update_text`."""
        return await asyncio.to_thread(self.files.update_text, path, change)

    async def delete(self, path: str) -> str:
        """See `FileBackend.delete`."""
        return await asyncio.to_thread(self.files.delete, path)

    async def list_dir(self, path: str) -> list[str]:
        """See `FileBackend.list_dir`."""
        return await asyncio.to_thread(self.files.list_dir, path)

    async def search(self, path: str, query: str, *, max_matches: int) -> list[SearchHit]:
        """See `FileBackend.search`."""
        return await asyncio.to_thread(self.files.search, path, query, max_matches=max_matches)

    def restricted(self, *, read: Iterable[str], write: Iterable[str]) -> WasmFileBackend:
        """See `FileBackend.restricted`: the view's guests get only those preopens."""
        return WasmFileBackend(self.files.restricted(read=read, write=write))

    def to_virtual(self, text: str) -> str:
        """See `FileBackend.to_virtual`."""
        return self.files.to_virtual(text)


def select_file_backend(workspace: Workspace, isolation: Isolation = "auto") -> FileBackend:
    """The file backend `[tools] isolation` asks for.

    `process` is the in-process jail; `wasm` is the guest, and a `ConfigError` (its
    `MissingExtraError` kind when wasmtime is absent) when it cannot run; `auto` is the guest
    when it can run, else the jail with a warning naming the reason.
    """
    if isolation == "process":
        return LocalFileBackend(workspace)
    reason = wasm_unavailable_reason()
    if reason is None:
        return WasmFileBackend.for_workspace(workspace)
    if isolation == "wasm" and importlib.util.find_spec("wasmtime") is None:
        raise MissingExtraError("[tools] isolation = 'wasm'", "wasm", "wasmtime")
    if isolation == "wasm":
        raise ConfigError(reason, key="tools.isolation")
    _log.warning("file tools run in the in-process jail, not the WASM sandbox: %s", reason)
    return LocalFileBackend(workspace)
