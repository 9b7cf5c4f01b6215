"""The compiled guest kept on disk between processes, trusted only after checks.

Compiling the guest costs ~50 ms of CPU in every process that runs a file tool; loading the
compiled code (`wasmtime.Module.deserialize`) ~0.2 ms. But deserializing is loading native
code: a swapped or damaged file would run as machine code in the agent. So:

1. The cache lives in the user's private cache directory (`$XDG_CACHE_HOME/oxydra/wasm`,
   else `~/.cache/oxydra/wasm`), created 0700. It is used only while that directory and
   every file read from it are owned by this process's user and writable by nobody else;
   otherwise the module is compiled in memory, as without a cache. No tool reaches it:
   the WASM guest's preopens and the shell's Landlock rules name the workspace only.
2. An entry is named by wasmtime's version, the engine settings and the guest's sha256, so
   a new wasmtime or guest never reads an old entry.
3. Each entry carries an HMAC-SHA256 of its name and bytes under a per-user key (`key`, 32
   random bytes, 0600, beside the entries). A file whose tag does not verify — truncated,
   damaged, written by anything without the key — is never handed to `deserialize`; it is
   replaced by a fresh compile.
4. Writes go to a temporary file renamed into place, so a reader sees a whole entry or none.
5. A cache directory inside a folder the tools reach (a workspace mounted at `~`, say) is
   not used at all in this process: the tools could read the key there and write entries
   that verify. Every `WasmWorkspace` reports its mounts (`keep_out`) before any call.

The trust is that of the archive's unpacked native packages (`oxydra.py`): code under the
user's own cache directory that only the user (or root) can change.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from oxydra.core.cachedirs import wasm_cache_dir
from oxydra.core.log import get_logger

KEY_BYTES = 32
TAG_BYTES = 32
_log = get_logger(__name__)


def cache_dir() -> Path:
    """Where compiled guests are kept (rule 1)."""
    return wasm_cache_dir()


def entry_name(wasmtime_version: str, settings: str, guest: bytes) -> str:
    """Rule 2: one file per wasmtime version, engine settings and guest."""
    digest = hashlib.sha256(f"{wasmtime_version}\0{settings}\0".encode() + guest).hexdigest()
    return f"guest-{digest[:32]}.cwasm"


def _private(path: Path, *, directory: bool) -> bool:
    """Owned by us and writable by nobody else (rule 1); a symlink is never followed."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    kind = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    return kind and info.st_uid == os.geteuid() and not info.st_mode & 0o022


_REACHABLE: set[Path] = set()


def keep_out(folders: Iterable[str]) -> None:
    """Folders the tools can read or write: a cache inside one is never used (rule 5)."""
    _REACHABLE.update(Path(os.path.realpath(f)) for f in folders)


def _reachable(root: Path) -> bool:
    real = Path(os.path.realpath(root))
    return any(real == folder or folder in real.parents for folder in _REACHABLE)


def _open_dir(root: Path) -> Path | None:
    """The cache directory, made 0700 if missing; None when it is not private or the tools
    can reach it."""
    if _reachable(root):
        return None
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return root if _private(root, directory=True) else None


def _key(root: Path) -> bytes | None:
    """The per-user HMAC key (rule 3), created on first use."""
    path = root / "key"
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # another process made it first
            pass
        except OSError:
            return None
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(os.urandom(KEY_BYTES))
    key = _read_private(path)
    return key if key is not None and len(key) == KEY_BYTES else None


def _read_private(path: Path) -> bytes | None:
    """The bytes of a file that passes rule 1, else None."""
    if not _private(path, directory=False):
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def _tag(key: bytes, name: str, data: bytes) -> bytes:
    return hmac.new(key, name.encode() + b"\0" + data, hashlib.sha256).digest()


def load(name: str, root: Path | None = None) -> bytes | None:
    """The verified compiled bytes of entry `name`, or None (then compile, and `store`)."""
    folder = _open_dir(root or cache_dir())
    key = _key(folder) if folder is not None else None
    if folder is None or key is None:
        return None
    path = folder / name
    raw = _read_private(path)
    if raw is None:
        return None
    tag, data = raw[:TAG_BYTES], raw[TAG_BYTES:]
    if len(tag) != TAG_BYTES or not hmac.compare_digest(tag, _tag(key, name, data)):
        _log.warning("ignoring a compiled guest that does not verify: %s", path)
        return None
    return data


def store(name: str, data: bytes, root: Path | None = None) -> None:
    """Keep compiled bytes as entry `name` (rule 4); a failure only costs the next compile."""
    folder = _open_dir(root or cache_dir())
    key = _key(folder) if folder is not None else None
    if folder is None or key is None:
        return
    try:
        fd, scratch = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_tag(key, name, data) + data)
            os.replace(scratch, folder / name)
        except BaseException:
            os.unlink(scratch)
            raise
    except OSError as exc:
        _log.debug("cannot keep the compiled guest in %s: %s", folder, exc)
