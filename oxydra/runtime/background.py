"""Background delegations: a child agent that runs without holding its parent's turn.

Theory of operation:
1. `delegate_to_agent(..., background=true)` stores a `BackgroundJob` (the brief, who asked,
   from which session) before it starts it, and the tool answers at once; the parent's turn
   goes on or ends.
2. Jobs run as tasks of this process, at most `per_user` at once per person (the rest wait
   for a slot), each with no approver: a call that needs a person's yes is denied.
3. When a job ends its report is delivered (`Report`): appended to the parent session as a
   message the next turn sees, and the person is notified. Its spend is charged to the
   parent session's ledger.
4. Durable: a job is marked done only after its report was delivered (a crash between the
   two delivers it again rather than never). A `vm` stopped or killed while jobs run
   leaves them pending; the next start resumes each in its own child session (the child sees
   what it had done, and its brief again).
5. Cancelling a person's jobs (cancel-all) marks them cancelled: they are not resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

import msgspec

from oxydra.core.log import get_logger
from oxydra.core.provenance import Label
from oxydra.runtime.brief import SubagentBrief

_log = get_logger(__name__)
JobStatus = Literal["pending", "done", "failed", "cancelled"]


class BackgroundJob(msgspec.Struct, frozen=True, kw_only=True):
    """One background delegation, as stored."""

    job_id: str
    user_id: str
    parent_session_id: str
    session_id: str
    channel: str
    brief: SubagentBrief


class JobStore(Protocol):
    """Where jobs survive a restart of the process."""

    async def put(self, job: BackgroundJob) -> None:
        """Store a new pending job."""
        ...

    async def finish(self, job_id: str, status: JobStatus, result: str) -> None:
        """Record how a job ended."""
        ...

    async def pending(self) -> list[BackgroundJob]:
        """Jobs stored but not finished, oldest first."""
        ...


Report = Callable[[BackgroundJob, str, Label | None], Awaitable[None]]
"""Deliver a finished job's report (text and the label of what it read)."""
RunChild = Callable[[BackgroundJob], Awaitable[tuple[str, Label | None]]]
"""Run the job's child to its end: (report text, its label)."""


class BackgroundRunner:
    """Runs, resumes and cancels background jobs (module doc)."""

    def __init__(self, jobs: JobStore, per_user: int) -> None:
        self.jobs, self.per_user = jobs, per_user
        self.run_child: RunChild | None = None  # set by the delegate tool
        self.report: Report | None = None  # set by the composition root
        self._tasks: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._closing = False

    @property
    def running(self) -> int:
        """Jobs started and not finished in this process."""
        return len(self._tasks)

    async def submit(self, job: BackgroundJob) -> None:
        """Store the job, then start it (rule 1)."""
        await self.jobs.put(job)
        self._spawn(job)

    async def resume(self) -> int:
        """Start every pending job again (rule 4); returns how many."""
        pending = await self.jobs.pending()
        for job in pending:
            if job.job_id not in self._tasks:
                self._spawn(job)
        return len(pending)

    def cancel_user(self, user_id: str) -> int:
        """Cancel a person's jobs (rule 5); returns how many."""
        mine = [task for user, task in self._tasks.values() if user == user_id]
        for task in mine:
            task.cancel()
        return len(mine)

    async def aclose(self) -> None:
        """Stop the jobs without finishing them: they stay pending for the next start."""
        self._closing = True
        tasks = [task for _, task in self._tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, job: BackgroundJob) -> None:
        task = asyncio.create_task(self._run(job), name=f"background-{job.job_id}")
        self._tasks[job.job_id] = (job.user_id, task)
        task.add_done_callback(lambda _t: self._tasks.pop(job.job_id, None))

    async def _run(self, job: BackgroundJob) -> None:
        assert self.run_child is not None, "no delegate tool bound to this runner"
        slot = self._slots.setdefault(job.user_id, asyncio.Semaphore(self.per_user))
        status: JobStatus = "done"
        try:
            async with slot:
                text, label = await self.run_child(job)
        except asyncio.CancelledError:
            if not self._closing:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.jobs.finish(job.job_id, "cancelled", "cancelled"))
            raise
        except Exception as exc:
            _log.exception("background job %s failed", job.job_id)
            text, label, status = (
                f"The agent '{job.brief.agent_name}' failed: {exc}",
                None,
                "failed",
            )
        else:
            status = "done"
        if self.report is not None:  # delivered, then marked: a crash between repeats it
            await self.report(job, text, label)
        await self.jobs.finish(job.job_id, status, text)
