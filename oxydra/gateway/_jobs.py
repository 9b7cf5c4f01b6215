"""Background delegation jobs in the memory database (`subagent_jobs`, migration 0019).

The runtime's `JobStore` seam, stored like the gateway's other tables: SQL on the memory
store's one writer thread (`Memory.call`).
"""

from __future__ import annotations

import msgspec

from oxydra.memory import Database, Memory
from oxydra.runtime.background import BackgroundJob, JobStatus

_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(BackgroundJob)
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def _put(db: Database, job: BackgroundJob) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO subagent_jobs(job_id, user_id, parent_session_id, job_json) "
            "VALUES (?, ?, ?, ?)",
            (job.job_id, job.user_id, job.parent_session_id, _encode.encode(job).decode()),
        )


def _finish(db: Database, job_id: str, status: JobStatus, result: str) -> None:
    with db.write() as conn:
        conn.execute(
            f"UPDATE subagent_jobs SET status = ?, result = ?, finished_at = {_NOW} "
            "WHERE job_id = ? AND status = 'pending'",
            (status, result[:100_000], job_id),
        )


def _pending(db: Database) -> list[BackgroundJob]:
    rows = db.query(
        "SELECT job_json FROM subagent_jobs WHERE status = 'pending' ORDER BY created_at"
    )
    return [_decode.decode(row[0]) for row in rows]


class MemoryJobs:
    """`JobStore` over the memory database."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    async def put(self, job: BackgroundJob) -> None:
        """Store a new pending job."""
        await self.memory.call(_put, job)

    async def finish(self, job_id: str, status: JobStatus, result: str) -> None:
        """Record how a job ended (a job already ended stays as it was)."""
        await self.memory.call(_finish, job_id, status, result)

    async def pending(self) -> list[BackgroundJob]:
        """Jobs not finished, oldest first."""
        return await self.memory.call(_pending)
