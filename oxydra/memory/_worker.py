"""The one thread that runs the memory store for the event loop.

SQLite connections and the usearch index belong to one thread; funnelling every call
through a single worker makes it the only writer of this process, keeps the event loop
free while SQLite waits on fsync or a lock and while the embedder runs, and serialises
calls in the order they were awaited. A call whose awaiting task is cancelled still runs
to completion on the worker (its transaction commits or rolls back whole).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from oxydra.core import MemoryStoreError

P = ParamSpec("P")
T = TypeVar("T")


class StoreWorker:
    """A single-thread executor with an async `run`."""

    def __init__(self, name: str = "oxydra-memory") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._closed = False

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` on the worker thread and await its result.

        Raises:
            MemoryStoreError: the worker was shut down.
        """
        if self._closed:
            raise MemoryStoreError("the memory store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        """Stop accepting calls; wait for the running one."""
        self._closed = True
        self._executor.shutdown(wait=True)

    @property
    def closed(self) -> bool:
        """Whether `shutdown` was called."""
        return self._closed
