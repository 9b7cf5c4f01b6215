"""Reaching a Unix socket whose path is longer than `sun_path` allows.

`sockaddr_un.sun_path` holds 108 bytes on Linux; a workspace under a deep directory (or a
test's temp dir) easily exceeds that. Such paths are reached through
`/proc/self/fd/<directory fd>/<name>`, which the kernel resolves to the same directory, so
`bind` and `connect` work on the real socket file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

SUN_PATH_ROOM = 100  # 108 bytes with the terminating NUL; keep a margin


@contextlib.contextmanager
def unix_socket_path(path: str) -> Iterator[str]:
    """A path usable with `bind`/`connect` for the socket at `path`, valid inside the block."""
    if len(os.fsencode(path)) < SUN_PATH_ROOM:
        yield path
        return
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)
