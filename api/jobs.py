"""Bulk uploads as jobs: the body is spooled to disk, then ingested by one background worker.

A 10^6-code batch is one transaction of ~20 s on SQLite; the client gets ``202`` with a job
id at once and polls it. One worker thread runs jobs in order, so two uploads never fight
for the write lock. A job is all or nothing (the batch is one transaction): a job that a
restart interrupted is marked failed, and nothing of it was written.

Several API replicas (issue 16, PostgreSQL): each job names its runner (the process that took
the upload, whose spool file it reads) and ``runner_expires_at_ms``, until when that runner
is known alive in the database's clock. The runner's heartbeat thread pushes it forward for
all its unfinished jobs every third of ``seconds``; each replica, at start and at each beat,
fails the unfinished jobs whose runner's time has passed (never its own). A killed replica's
jobs are so failed at most ``seconds * 4 / 3`` after its last beat, by any live replica; they
are failed, not taken over, since their body is on the dead replica's disk.

The batch's transaction is fenced by its job row: its last statement marks the job ``done``
only where the row still names this runner and is ``running`` (``JobRunner.finish_in``), and
otherwise raises ``JobLost``, rolling the whole batch back. So a replica frozen whole (paused
VM, SIGSTOP) or cut off from the database past the bound, whose job another replica failed
meanwhile, writes nothing when it wakes: the job stays ``failed``, as it said. Every other
write of a job row is guarded the same way (this runner's, unfinished). On PostgreSQL the
row's lock orders the two: a sweep that comes second waits for the batch's commit and then
finds the job finished; a batch that comes second finds it failed.

On SQLite (one ``serve`` process) there is no heartbeat: at start every unfinished job of an
earlier process is failed, as before.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import ColumnElement, Connection, Table, and_, literal_column, or_, select, update

from api.models import Job
from registry.batches import BatchCheck, BatchResult, Progress
from registry.db import read_transaction, write_transaction
from registry.errors import Conflict, InvalidInput, NotFound, TracemarkError
from registry.fingerprints import parse_fingerprint
from registry.lease import DEFAULT_LEASE_SECONDS, holder_name
from registry.service import Registry

logger = logging.getLogger("tracemark.api.jobs")
jobs_t: Table = Job.__table__  # type: ignore[attr-defined]
UNFINISHED = ("queued", "running")

#: The database's clock in ms (PostgreSQL's, so replicas' own clocks never matter).
_PG_NOW_MS: ColumnElement[int] = literal_column(
    "(extract(epoch from clock_timestamp()) * 1000)::bigint"
)


class JobLost(Conflict):
    """The job's row no longer names this runner as running it: another replica failed it
    after this one's heartbeat lapsed (paused, cut off). The batch rolled back whole."""

    code = "job-lost"
    diagnostics = "Nothing was written: read the job's state, and upload again if it failed."


@dataclass
class JobSpec:
    job_id: str
    spool: IO[bytes]
    csv: bool
    #: Runs the batch over the spooled fingerprints, reporting progress; the check is the
    #: batch's last statement in its transaction (``Registry.register_batch(check=)``).
    run: Callable[[Iterator[bytes], Progress, BatchCheck], BatchResult]


def fingerprints_from(spool: IO[bytes], *, csv: bool) -> Iterator[bytes]:
    """The spooled body's fingerprints: one per line, as ``0x``-hex (or JSON strings)."""
    spool.seek(0)
    header_seen = not csv
    for number, raw in enumerate(spool, start=1):
        line = raw.strip()
        if not line:
            continue
        text = line.decode("ascii", errors="replace")
        if not header_seen:
            header_seen = True
            if text.lower().strip('"') == "fingerprint":
                continue
        text = text.strip('"').split(",")[0].strip('"')
        try:
            yield parse_fingerprint(text)
        except InvalidInput as exc:
            raise InvalidInput(f"line {number}: {exc.detail}") from exc


class JobRunner:
    def __init__(
        self,
        registry: Registry,
        *,
        seconds: float = DEFAULT_LEASE_SECONDS,
        runner: str | None = None,
    ) -> None:
        if seconds <= 0:
            raise ValueError("a runner's heartbeat lasts a positive number of seconds")
        self.registry = registry
        #: This process, as its jobs name it.
        self.runner = runner or holder_name()
        #: How long a runner is alive after its last beat (seconds).
        self.seconds = seconds
        self._shared = registry.engine.dialect.name == "postgresql"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._queue: queue.Queue[JobSpec | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Live progress of the running job (fingerprints ingested so far).
        self._progress: dict[str, list[int]] = {}

    def spool(self) -> IO[bytes]:
        return tempfile.TemporaryFile(prefix="tracemark-bulk-")

    def create(self, owner: str, kind: str) -> str:
        job_id = "job_" + secrets.token_urlsafe(16)
        now = self.registry.clock()
        with write_transaction(self.registry.engine) as conn:
            conn.execute(
                jobs_t.insert().values(
                    id=job_id,
                    owner=owner,
                    kind=kind,
                    state="queued",
                    total=None,
                    processed=0,
                    created_at=now,
                    updated_at=now,
                    runner=self.runner,
                    runner_expires_at_ms=self._expiry(),
                )
            )
        return job_id

    def submit(self, spec: JobSpec) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="tracemark-jobs", daemon=True
                )
                self._thread.start()
        self._queue.put(spec)

    def get(self, job_id: str) -> dict[str, Any]:
        with read_transaction(self.registry.engine) as conn:
            row = conn.execute(select(jobs_t).where(jobs_t.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return {
            "job_id": row.id,
            "kind": row.kind,
            "state": row.state,
            "total": row.total,
            "processed": int(row.processed),
            "result": None if row.result is None else json.loads(row.result),
            "error": row.error,
            "error_code": row.error_code,
        }

    def _expiry(self) -> ColumnElement[Any] | None:
        """Until when this runner is alive, as the database computes it (None on SQLite)."""
        return _PG_NOW_MS + int(self.seconds * 1000) if self._shared else None

    def start(self) -> None:
        """At start-up: fail the jobs of dead runners; on PostgreSQL, start the heartbeat."""
        if self._shared and (self._beat is None or not self._beat.is_alive()):
            self._stop.clear()
            self._beat = threading.Thread(
                target=self._keep, name="tracemark-jobs-heartbeat", daemon=True
            )
            self._beat.start()
        self.fail_interrupted()

    def beat(self) -> int:
        """Push this runner's time forward on its unfinished jobs; how many it holds."""
        with write_transaction(self.registry.engine) as conn:
            return int(
                conn.execute(
                    update(jobs_t)
                    .where(jobs_t.c.runner == self.runner, jobs_t.c.state.in_(UNFINISHED))
                    .values(runner_expires_at_ms=self._expiry())
                ).rowcount
            )

    def fail_interrupted(self) -> int:
        """Fail the unfinished jobs whose runner is dead (their batch rolled back): on
        PostgreSQL those whose runner's time has passed, on SQLite (one process) every one
        but this process's. Never this runner's own."""
        dead = (
            or_(jobs_t.c.runner.is_(None), jobs_t.c.runner_expires_at_ms < _PG_NOW_MS)
            if self._shared
            else or_(jobs_t.c.runner.is_(None), jobs_t.c.runner != self.runner)
        )
        with write_transaction(self.registry.engine) as conn:
            failed = int(
                conn.execute(
                    update(jobs_t)
                    .where(
                        and_(
                            jobs_t.c.state.in_(UNFINISHED),
                            or_(jobs_t.c.runner.is_(None), jobs_t.c.runner != self.runner),
                            dead,
                        )
                    )
                    .values(
                        state="failed",
                        error="interrupted: the server running it stopped; nothing of it was"
                        " written: upload again",
                        error_code="interrupted",
                        updated_at=self.registry.clock(),
                    )
                ).rowcount
            )
        if failed:
            logger.warning("failed %d job(s) of a stopped server", failed)
        return failed

    def _keep(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.beat()
                self.fail_interrupted()
            except Exception:  # the database is away: the next beat tries again
                logger.exception("jobs heartbeat failed")

    def _mine(self, job_id: str, *states: str) -> ColumnElement[bool]:
        """The job's row, while it names this runner and is in one of ``states``."""
        return and_(
            jobs_t.c.id == job_id, jobs_t.c.runner == self.runner, jobs_t.c.state.in_(states)
        )

    def _set(self, job_id: str, **values: Any) -> bool:
        """Update the job's row if it is still this runner's and unfinished; whether it was."""
        with write_transaction(self.registry.engine) as conn:
            return self._set_in(conn, job_id, UNFINISHED, **values)

    def _set_in(
        self, conn: Connection, job_id: str, states: tuple[str, ...], **values: Any
    ) -> bool:
        changed = conn.execute(
            update(jobs_t)
            .where(self._mine(job_id, *states))
            .values(updated_at=self.registry.clock(), **values)
        ).rowcount
        return bool(changed)

    def finish_in(self, job_id: str) -> BatchCheck:
        """The batch's last statement: the job ``done`` with its result, in the batch's own
        transaction, or ``JobLost`` (rolling the batch back) if the job is no longer ours."""

        def check(conn: Connection, result: BatchResult) -> None:
            if not self._set_in(
                conn,
                job_id,
                ("running",),
                state="done",
                processed=result.count,
                total=result.count,
                result=json.dumps(result.as_dict()),
            ):
                raise JobLost(
                    f"job {job_id} is no longer this server's to finish (another replica"
                    " failed it while this one was unreachable); nothing of it was written"
                )

        return check

    def _work(self) -> None:
        while (spec := self._queue.get()) is not None:
            self._run(spec)

    def _run(self, spec: JobSpec) -> None:
        reported = [0]

        def progress(done: int) -> None:
            # Progress rows are written outside the batch's own transaction, which on SQLite
            # holds the write lock: so progress lives in memory until the batch commits.
            reported[0] = done

        self._progress[spec.job_id] = reported
        try:
            if not self._set(spec.job_id, state="running"):
                logger.warning("job %s was failed before it ran; skipped", spec.job_id)
                return
            spec.run(
                fingerprints_from(spec.spool, csv=spec.csv), progress, self.finish_in(spec.job_id)
            )
        except JobLost as exc:
            logger.warning("%s", exc.detail)
        except TracemarkError as exc:
            self._set(
                spec.job_id, state="failed", error=exc.detail, error_code=exc.code, processed=0
            )
        except Exception:
            logger.exception("bulk job %s failed", spec.job_id)
            self._set(
                spec.job_id,
                state="failed",
                error="an unexpected error; it was logged",
                error_code="internal",
            )
        finally:
            self._progress.pop(spec.job_id, None)
            spec.spool.close()

    def live_progress(self, job_id: str) -> int | None:
        found = self._progress.get(job_id)
        return None if found is None else found[0]

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=60)
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=10)
            self._beat = None
