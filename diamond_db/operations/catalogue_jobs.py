"""Catalogue jobs: re-pricing and re-rating live diamonds (queries/catalogue_jobs.sql).

One machinery for both kinds; the kind only selects the computed columns. A
worker holds the job's lease and works it one keyset batch per transaction,
so a crash leaves each batch wholly done or not at all (see the README's
"Catalogue jobs").
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final, get_args
from uuid import UUID

import psycopg
from psycopg.rows import scalar_row
from psycopg.types.json import Jsonb

from .._executor import Executor
from ..errors import JobConflict, NotFoundError, ValidationError
from ..records import CatalogueJob, CatalogueJobKind
from ..search import PREDICATES, DiamondSearch, render_id_batch, render_live_count
from ..validation import choice_arg, int_arg, text_arg, timedelta_arg, uuid_arg

logger = logging.getLogger("diamond_db")

KINDS: Final = get_args(CatalogueJobKind)
NO_ID: Final = UUID(int=0)  # before every diamond id: where a keyset starts
MAX_BATCH: Final = 100_000
_BATCH_ATTEMPTS: Final = 3  # a batch that deadlocks with an upsert is retried
_RETRYABLE: Final = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)

OnProgress = Callable[[CatalogueJob], Awaitable[None] | None]
Filters = DiamondSearch | Mapping[str, Any]


def job_filters(filters: Filters | None) -> DiamondSearch | None:
    """A job's filter set as a validated DiamondSearch (only its filters count)."""
    if filters is None or isinstance(filters, DiamondSearch):
        return filters
    if not isinstance(filters, Mapping):
        raise ValidationError("filters", "expected a DiamondSearch or a mapping of filters")
    for name in filters:
        if name not in PREDICATES:
            raise ValidationError(f"filters.{name}", "not a search filter")
    return DiamondSearch(**filters)


def _stored(search: DiamondSearch | None) -> Jsonb | None:
    """The filters as the job stores them: JSON, Decimals as exact strings."""
    if search is None or not search.filters():
        return None
    values = search.filters()
    return Jsonb({k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()})


def _lease_seconds(lease: object) -> float:
    value = timedelta_arg("lease", lease, minimum=timedelta(milliseconds=1))
    return float(value.total_seconds())


def _error_text(error: psycopg.Error) -> str:
    """What a failed job records: the error's class, SQLSTATE and primary message (no values)."""
    message = error.diag.message_primary or type(error).__name__
    return f"{type(error).__name__} ({error.sqlstate}): {message}"[:1000]


async def bump_dataset_versions(tx: Executor, suppliers: list[str]) -> None:
    """Bump the dataset version of each supplier a job changed (the pipeline's counter).

    Runs inside the transaction that ends the job (completed, cancelled or
    reverted), so readers never see the job's end without the new version.
    """
    for supplier in suppliers:
        await tx._value("bump_dataset_version", supplier=supplier)


class CatalogueJobOperations(Executor):
    """Operations of queries/catalogue_jobs.sql."""

    async def start_catalogue_job(
        self,
        kind: CatalogueJobKind,
        *,
        reason: str,
        filters: Filters | None = None,
        triggered_by_rule_id: UUID | str | None = None,
    ) -> CatalogueJob:
        """A new pending job over the live diamonds matching `filters` (None: all).

        At most one active job per kind: the database refuses a second one
        (JobConflict).
        """
        search = job_filters(filters)
        params = {
            "kind": choice_arg("kind", kind, KINDS),
            "reason": text_arg("reason", reason),
            "filters": _stored(search),
            "triggered_by_rule_id": None
            if triggered_by_rule_id is None
            else uuid_arg("triggered_by_rule_id", triggered_by_rule_id),
        }
        count = render_live_count(search or DiamondSearch())
        try:
            async with self._atomic() as tx:
                [total] = await tx._composed(
                    "count_catalogue_job_diamonds", "writer", count.sql, count.params, scalar_row
                )
                job = await tx._one(CatalogueJob, "create_catalogue_job", total=total, **params)
        except psycopg.errors.UniqueViolation:
            raise JobConflict(f"a {params['kind']} job is already active") from None
        assert job is not None  # INSERT ... RETURNING always returns the row
        return job

    async def get_catalogue_job(self, id: UUID | str) -> CatalogueJob | None:
        """The job with this id, or None."""
        return await self._one(CatalogueJob, "get_catalogue_job", id=uuid_arg("id", id))

    async def list_catalogue_jobs(
        self, kind: CatalogueJobKind | None = None, limit: int = 20
    ) -> list[CatalogueJob]:
        """The newest jobs first, of one kind or both."""
        return await self._all(
            CatalogueJob,
            "list_catalogue_jobs",
            kind=None if kind is None else choice_arg("kind", kind, KINDS),
            row_limit=int_arg("limit", limit, minimum=1, maximum=1000),
        )

    async def get_stalled_catalogue_jobs(self) -> list[CatalogueJob]:
        """Running jobs whose worker's lease has expired (crashed or stalled)."""
        return await self._all(CatalogueJob, "get_stalled_catalogue_jobs")

    async def cancel_catalogue_job(self, job_id: UUID | str) -> CatalogueJob:
        """pending -> cancelled; running -> cancelling, ended cancelled by its worker.

        Rows already changed stay changed (revert the job to undo them). A job
        in another status raises JobConflict.
        """
        id = uuid_arg("job_id", job_id)
        async with self._atomic() as tx:
            job = await tx._one(CatalogueJob, "cancel_catalogue_job", id=id)
            if job is not None and job.status == "cancelled" and job.changed:
                await bump_dataset_versions(tx, job.suppliers)
        if job is not None:
            return job
        current = await self._existing(id)
        if current.status == "cancelling":
            return current
        raise JobConflict(f"job {id} is {current.status} ({current.phase}); it cannot be cancelled")

    async def retry_catalogue_job(
        self, job_id: UUID | str, *, max_retries: int = 3
    ) -> CatalogueJob:
        """failed -> pending, retry_count + 1; it resumes from its checkpoint, in its phase.

        JobConflict when the job is not failed, has been retried max_retries
        times already, or another job of its kind is active.
        """
        id = uuid_arg("job_id", job_id)
        limit = int_arg("max_retries", max_retries, minimum=0, maximum=1000)
        try:
            async with self._atomic() as tx:
                job = await tx._one(CatalogueJob, "retry_catalogue_job", id=id, max_retries=limit)
        except psycopg.errors.UniqueViolation:
            raise JobConflict(f"job {id}: another job of its kind is active") from None
        if job is not None:
            return job
        current = await self._existing(id)
        if current.status != "failed":
            raise JobConflict(f"job {id} is {current.status}, not failed")
        raise JobConflict(f"job {id} was retried {current.retry_count} times (max {limit})")

    async def run_catalogue_job(
        self,
        job_id: UUID | str,
        *,
        worker_id: str,
        batch_size: int = 5_000,
        lease: timedelta = timedelta(minutes=2),
        on_progress: OnProgress | None = None,
    ) -> CatalogueJob:
        """Work the job to its end and return it.

        Takes the lease (a worker whose lease expired is replaced, and the job
        resumes from its checkpoint); when another worker holds a live lease,
        returns the job at once, unworked. A job in its revert phase is reverted,
        never re-priced. `on_progress(job)` runs after each batch.
        """
        return await self._work(job_id, worker_id, batch_size, lease, on_progress)

    async def revert_catalogue_job(
        self,
        job_id: UUID | str,
        *,
        worker_id: str,
        batch_size: int = 5_000,
        lease: timedelta = timedelta(minutes=2),
        on_progress: OnProgress | None = None,
    ) -> CatalogueJob:
        """Restore the old values of a completed or cancelled job's diamonds; ends reverted.

        Only where a diamond's current values still equal what the job wrote;
        the others are left alone and counted as skipped. Resumable like a run
        (the same lease rules); JobConflict when the job is in no state to be
        reverted or another job of its kind is active.
        """
        id = uuid_arg("job_id", job_id)
        try:
            async with self._atomic() as tx:
                begun = await tx._one(CatalogueJob, "begin_catalogue_job_revert", id=id)
        except psycopg.errors.UniqueViolation:
            raise JobConflict(f"job {id}: another job of its kind is active") from None
        current = begun or await self._existing(id)
        resumable = current.phase == "revert" and current.status in ("pending", "reverting")
        if not resumable:
            raise JobConflict(
                f"job {id} is {current.status}; only a completed or cancelled job reverts"
            )
        return await self._work(id, worker_id, batch_size, lease, on_progress)

    # -- the worker ------------------------------------------------------------

    async def _existing(self, id: UUID) -> CatalogueJob:
        job = await self.get_catalogue_job(id)
        if job is None:
            raise NotFoundError(f"no catalogue job {id}")
        return job

    async def _work(
        self,
        job_id: UUID | str,
        worker_id: str,
        batch_size: int,
        lease: timedelta,
        on_progress: OnProgress | None,
    ) -> CatalogueJob:
        """Take the lease, then one batch per transaction until the job ends or is lost."""
        id = uuid_arg("job_id", job_id)
        worker = text_arg("worker_id", worker_id)
        size = int_arg("batch_size", batch_size, minimum=1, maximum=MAX_BATCH)
        seconds = _lease_seconds(lease)
        job = await self._one(
            CatalogueJob, "take_catalogue_job", id=id, worker_id=worker, lease_seconds=seconds
        )
        if job is None:
            return await self._existing(id)
        try:
            return await self._batches(job, worker, size, seconds, on_progress)
        except BaseException:
            # Stopped (an error, on_progress raised, the task was cancelled): the
            # last batch is committed or rolled back whole, so the next worker
            # may resume at once rather than when the lease expires.
            await self._release(id, worker)
            raise

    async def _batches(
        self,
        job: CatalogueJob,
        worker: str,
        size: int,
        seconds: float,
        on_progress: OnProgress | None,
    ) -> CatalogueJob:
        while True:
            step = await self._batch_with_retries(job, worker, size, seconds)
            if step is None:  # lost the lease, or cancelled: end it if still ours
                return await self._end(job.id, worker)
            job, more = step
            if not more:
                return job
            if on_progress is not None:
                result = on_progress(job)
                if inspect.isawaitable(result):
                    await result

    async def _batch_with_retries(
        self, job: CatalogueJob, worker: str, size: int, seconds: float
    ) -> tuple[CatalogueJob, bool] | None:
        for attempt in range(_BATCH_ATTEMPTS):
            try:
                return await self._batch(job.id, worker, size, seconds)
            except _RETRYABLE as error:
                if attempt == _BATCH_ATTEMPTS - 1:
                    await self._fail(job.id, worker, _error_text(error))
                    raise
                logger.warning("catalogue job %s: batch conflicted; retrying", job.id)
            except psycopg.OperationalError:
                raise  # the connection died mid-batch (rolled back): _work hands the job on
            except psycopg.Error as error:
                await self._fail(job.id, worker, _error_text(error))
                raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _batch(
        self, id: UUID, worker: str, size: int, seconds: float
    ) -> tuple[CatalogueJob, bool] | None:
        """One transaction: the job's next batch, or its end. None when the job is not ours."""
        async with self._atomic() as tx:
            job = await tx._one(
                CatalogueJob, "lock_catalogue_job", id=id, worker_id=worker, lease_seconds=seconds
            )
            if job is None:
                return None
            after = job.checkpoint or NO_ID
            if job.phase == "revert":
                done = await tx._one(
                    CatalogueJob,
                    "revert_catalogue_job_batch",
                    job_id=id,
                    worker_id=worker,
                    after_id=after,
                    batch_size=size,
                )
                if done is not None and done.checkpoint != job.checkpoint:
                    return done, True
            else:
                ids = await _batch_ids(tx, job, after, size)
                if ids:
                    return await _apply(tx, id, worker, ids), True
            ended = await _finish(tx, id, worker)
            assert ended is not None  # the job row is locked by this transaction
            return ended, False

    async def _end(self, id: UUID, worker: str) -> CatalogueJob:
        """After a batch found the job not running: end a cancelling job this worker holds."""
        async with self._atomic() as tx:
            job = await tx._one(CatalogueJob, "get_catalogue_job", id=id)
            if job is not None and job.status == "cancelling" and job.lease_holder == worker:
                ended = await _finish(tx, id, worker)
                if ended is not None:
                    return ended
        return await self._existing(id)

    async def _fail(self, id: UUID, worker: str, error: str) -> None:
        await self._one(CatalogueJob, "fail_catalogue_job", id=id, worker_id=worker, error=error)

    async def _release(self, id: UUID, worker: str) -> None:
        try:
            await self._rowcount("release_catalogue_job_lease", id=id, worker_id=worker)
        except Exception:  # the server is gone too: the lease will expire
            logger.warning("catalogue job %s: could not release the lease", id)


async def _batch_ids(tx: Executor, job: CatalogueJob, after: UUID, size: int) -> list[UUID]:
    """The next batch's ids: live diamonds matching the job's stored filters, after `after`."""
    search = DiamondSearch(**job.filters) if job.filters else DiamondSearch()
    query = render_id_batch(search)
    params = {**query.params, "after_id": after, "batch_size": size}
    return await tx._composed("catalogue_job_batch_ids", "writer", query.sql, params, scalar_row)


async def _apply(tx: Executor, id: UUID, worker: str, ids: list[UUID]) -> CatalogueJob:
    """Write the batch: optimistically, then under row locks if a diamond was written meanwhile.

    apply_catalogue_job_batch advances the checkpoint only when every changing
    diamond was still the version it computed from; otherwise the locked form
    finishes the batch (the rows already written no longer change).
    """
    params = {"job_id": id, "worker_id": worker, "ids": ids, "last_id": ids[-1]}
    done = await tx._one(CatalogueJob, "apply_catalogue_job_batch", **params)
    assert done is not None  # the job row is locked by this transaction
    if done.checkpoint != ids[-1]:
        done = await tx._one(CatalogueJob, "apply_catalogue_job_batch_locked", **params)
        assert done is not None
    return done


async def _finish(tx: Executor, id: UUID, worker: str) -> CatalogueJob | None:
    """End the job this worker holds, and bump the dataset versions it affected."""
    job = await tx._one(CatalogueJob, "finish_catalogue_job", id=id, worker_id=worker)
    if job is None:
        return None
    if job.changed if job.phase == "run" else job.restored:
        await bump_dataset_versions(tx, job.suppliers)
    return job
