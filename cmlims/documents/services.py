"""Document jobs: request (outbox row + send on commit), run (idempotent, exactly-once completion), sweep.

Guarantees:
- The job row is written in the request's transaction; the task is sent only after commit, so a
  worker never sees a job that was rolled back, and a broker that is down only delays the job:
  the row stays ``queued`` and ``document_jobs_sweep`` sends it once the broker answers.
- A finished job (done/failed) is never redone: every execution first locks the row and checks.
- One execution at a time: an execution takes the job's lease before it starts (``cmlims.documents.lease``),
  renews it while it works, and prints and completes only while it holds it. A second delivery of the job (a
  redelivered message, a sweep re-send, a message published twice) stands down (``leased``) while the owner
  lives; it takes over when the owner's lease expired or its process is gone (a worker killed mid-job).
- Completion is one transaction: output file reference, SHA-256, LabelPrint rows and ``done``, by the lease
  holder only; an execution that lost its lease discards its output.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import fields
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from cmlims.audit import (
    Action,
    PendingEntry,
    append_entries,
    audit_record,
    audited_bulk_create,
    chain_head,
    entries_deferred,
    object_type_of,
)
from cmlims.documents.lease import Executor, LeaseKeeper, lease_duration, take_over_reason
from cmlims.documents.models import Disposition, DocumentJob, JobStatus, LabelDisposition, LabelPrint
from cmlims.documents.registry import BuildContext, BuiltDocument, LabelPrintSpec, builder_get
from cmlims.documents.selectors import label_item_counts, label_on_item, label_used
from cmlims.exceptions import ApplicationError, Conflict, InvalidInput
from cmlims.locks import document_job_lock
from cmlims.printing.services import print_dispatch_create, print_dispatch_deliver
from cmlims.printing.transports import PrinterError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


class TransientJobError(Exception):
    """A failure worth retrying (database busy/unreachable, storage hiccup): the job stays unfinished."""


def _setting(name: str, default: timedelta) -> timedelta:
    return getattr(settings, name, default)


# --- request and send ---------------------------------------------------------------------------------


def document_job_request(
    *, kind: str, params: dict[str, Any], actor, subject: models.Model | None = None, printer=None
) -> DocumentJob:
    """Create a job (in the caller's transaction, if any) and send it to its queue after commit.

    Domain rules (e.g. rule 4 for final labels) are checked by the calling app's service before
    this; here only the builder's permission check runs. With ``printer`` the worker sends the output
    there (``cmlims.printing``). Returns the job (status ``queued``).
    """
    builder = builder_get(kind)
    builder.permission_check(actor, params)
    with transaction.atomic():
        job = DocumentJob.objects.create(
            kind=kind,
            params=params,
            requested_by=actor,
            subject_type=object_type_of(subject) if subject is not None else "",
            subject_id=str(subject.pk) if subject is not None else "",
            subject_repr=str(subject)[:200] if subject is not None else "",
            queue=builder.queue,
        )
        audit_record(
            actor=actor, action=Action.CREATED, obj=job,
            changes={"kind": [None, kind], "params": [None, params], "subject": [None, job.subject_repr]},
        )
        if printer is not None:
            print_dispatch_create(job=job, printer=printer, actor=actor)
        job_id = job.pk
        transaction.on_commit(lambda: document_job_send(job_id=job_id), robust=True)
    return job


def document_job_send(*, job_id: int) -> bool:
    """Hand the job to the broker; False (and the error noted on the job) when the broker is down."""
    from cmlims.documents.tasks import document_job_run_task

    job = DocumentJob.objects.only("queue", "status").get(pk=job_id)
    if job.finished:
        return False
    try:
        # No publish retries: a request must answer at once; the sweep retries later.
        document_job_run_task.apply_async(args=[job_id], queue=job.queue, retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure leaves the job queued for the sweep
        logger.warning("document job %s not sent (broker unavailable?): %s", job_id, exc)
        # Not in the broker: last_sent_at cleared so the sweep treats it as never sent.
        DocumentJob.objects.filter(pk=job_id).update(
            send_error=f"{type(exc).__name__}: {exc}"[:2000], last_sent_at=None
        )
        return False
    DocumentJob.objects.filter(pk=job_id).update(
        send_count=F("send_count") + 1, last_sent_at=timezone.now(), send_error=""
    )
    return True


def document_jobs_sweep(*, now=None) -> list[int]:
    """Re-send jobs the broker never delivered or whose worker died; give up on poison jobs.

    - queued, never sent, older than the send grace (the broker was down at request time);
    - queued, sent long ago, still not started (message lost);
    - running with its lease run out (worker killed mid-job on another host, or stalled), or held by a process of
      this host that no longer exists (killed: no need to wait out its lease).
    """
    now = now or timezone.now()
    grace = _setting("CMLIMS_DOCUMENT_SEND_GRACE", timedelta(seconds=30))
    resend = _setting("CMLIMS_DOCUMENT_RESEND_AFTER", timedelta(minutes=10))
    lease = lease_duration()
    stale = DocumentJob.objects.filter(
        Q(status=JobStatus.QUEUED, last_sent_at__isnull=True, created_at__lt=now - grace)
        | Q(status=JobStatus.QUEUED, last_sent_at__lt=now - resend)
        # running, but its lease ran out or was given back (a retry that never came) and no beat since
        | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
        | Q(status=JobStatus.RUNNING, lease_expires_at__isnull=True, heartbeat_at__lt=now - lease)
    ).order_by("id").values_list("id", "attempts")
    held = DocumentJob.objects.filter(status=JobStatus.RUNNING, lease_expires_at__gte=now).exclude(lease_owner="")
    orphaned = [(job_id, attempts) for job_id, attempts, owner in held.values_list("id", "attempts", "lease_owner")
                if (holder := Executor.parse(owner)) is not None and holder.gone()]
    sent = []
    for job_id, attempts in sorted([*stale, *orphaned]):
        if attempts >= MAX_ATTEMPTS:
            document_job_fail(job_id=job_id, error=f"gave up after {attempts} attempts (worker lost each time)")
            continue
        # Claim the re-send so two sweeps (two beat hosts by mistake) do not both send.
        claimed = DocumentJob.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).filter(
            Q(last_sent_at__isnull=True) | Q(last_sent_at__lt=now - min(grace, lease, resend))
        ).update(last_sent_at=now)
        if claimed and document_job_send(job_id=job_id):
            sent.append(job_id)
    return sent


# --- run -------------------------------------------------------------------------------------------


def _progress_updater(job_id: int, executor: Executor):
    state = {"last": -1}

    def update(percent: int) -> None:
        percent = max(0, min(99, int(percent)))  # 100 only together with "done"
        if percent == state["last"]:
            return
        state["last"] = percent
        now = timezone.now()
        _held(job_id, executor).update(progress=percent, heartbeat_at=now, lease_expires_at=now + lease_duration())

    return update


def _held(job_id: int, executor: Executor) -> models.QuerySet:
    """The job, while ``executor`` holds its lease (an empty queryset once another took it over)."""
    return DocumentJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, lease_owner=executor.owner)


def document_job_lease_renew(job_id: int, executor: Executor, *, now) -> bool:
    """Extend the lease ``executor`` holds; False when it holds it no more."""
    return bool(_held(job_id, executor).update(heartbeat_at=now, lease_expires_at=now + lease_duration()))


def _lease_release(job_id: int, executor: Executor) -> None:
    """Give the lease back (a retryable failure: the next try, or the sweep, takes it at once)."""
    try:
        _held(job_id, executor).update(lease_owner="", lease_expires_at=None)
    except (OperationalError, InterfaceError) as exc:  # the database is what failed: the lease expires instead
        logger.warning("document job %s: lease not released: %s", job_id, exc)


def _job_lock(job_id: int) -> DocumentJob:
    """The job row under a lock (the one place jobs are locked; not its requester's user row)."""
    return document_job_lock(job_id)


LEASED = "leased"  # another execution holds the job: this one stood down
SKIPPED = "skipped"  # the job was finished already, or finished by another execution first
MISSING = "missing"  # no such job: a message left in the broker from another (or a restored) database


def _job_start(job_id: int, executor: Executor) -> DocumentJob | str:
    """The job, now running under ``executor``'s lease; or SKIPPED (finished), LEASED (held by a live owner) or
    MISSING (no such job: the message is dropped with a warning rather than failing the task and its retries;
    messages are sent once the job's row is committed, so one that names no row can never be run)."""
    with transaction.atomic():
        try:
            job = _job_lock(job_id)
        except DocumentJob.DoesNotExist:
            logger.warning("document job %s does not exist on this database: message dropped", job_id)
            return MISSING
        if job.finished:
            return SKIPPED
        now = timezone.now()
        reason = take_over_reason(holder_owner=job.lease_owner, expires_at=job.lease_expires_at,
                                  claimant=executor, now=now)
        if reason is None:
            logger.info("document job %s is held by %s: %s stands down", job_id, job.lease_owner, executor.owner)
            return LEASED
        if reason not in ("free", "own"):
            logger.warning("document job %s taken over from %s (%s) by %s", job_id, job.lease_owner, reason,
                           executor.owner)
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = now
        job.heartbeat_at = now
        job.lease_owner = executor.owner
        job.lease_expires_at = now + lease_duration()
        job.progress = 0
        job.save(update_fields=["status", "attempts", "started_at", "heartbeat_at", "lease_owner",
                                "lease_expires_at", "progress"])
        return job


def document_job_run(*, job_id: int, executor: Executor | None = None, keep_lease: bool = False) -> str:
    """Execute one job under a lease; returns its final status, SKIPPED when it was already finished (or
    another execution finished it first), LEASED when another execution holds it, MISSING when there is no
    such job.

    ``executor`` names this execution (the worker passes its task id and try); ``keep_lease`` renews the lease
    from a heartbeat thread while the job runs (the worker; an in-process call needs none: it is short and its
    transaction may be invisible to another connection). Raises ``TransientJobError`` for failures worth a
    retry, with the lease given back; anything else fails the job.
    """
    executor = executor or Executor.current()
    try:
        started = _job_start(job_id, executor)
    except (OperationalError, InterfaceError) as exc:
        raise TransientJobError(str(exc)) from exc
    if isinstance(started, str):
        return started
    keeper = LeaseKeeper(job_id, executor, document_job_lease_renew) if keep_lease else None
    try:
        if keeper is None:
            return _job_execute(started, executor, None)
        with keeper:
            return _job_execute(started, executor, keeper)
    except TransientJobError:
        _lease_release(job_id, executor)
        raise


def _job_execute(job: DocumentJob, executor: Executor, keeper: LeaseKeeper | None) -> str:
    try:
        builder = builder_get(job.kind)
    except ApplicationError as exc:  # the app that registered this kind is gone: fail, do not loop
        return _job_fail_held(job.pk, executor, exc.message)
    head = chain_head()
    ctx = BuildContext(
        job_id=job.pk, kind=job.kind, params=job.params, requested_by=job.requested_by,
        subject_type=job.subject_type, subject_id=job.subject_id, chain_head=head,
        progress=_progress_updater(job.pk, executor),
    )
    try:
        built = builder.build(ctx)
    except (OperationalError, InterfaceError, TransientJobError) as exc:
        raise TransientJobError(str(exc)) from exc
    except ApplicationError as exc:  # the record changed since the request (e.g. lot put on hold)
        return _job_fail_held(job.pk, executor, exc.message)
    except Exception as exc:  # a rendering bug or the soft time limit: fail visibly, never loop
        logger.exception("document job %s failed", job.pk)
        return _job_fail_held(job.pk, executor, f"{type(exc).__name__}: {exc}")
    # The one step that cannot be undone: only the lease holder prints.
    try:
        if (keeper is not None and keeper.lost.is_set()) or not _held(job.pk, executor).exists():
            return _stood_down(job.pk, executor)
    except (OperationalError, InterfaceError) as exc:
        raise TransientJobError(str(exc)) from exc
    try:
        _deliver(job, built)
    except PrinterError as exc:  # the printer's reason is the job's error; labels it took are counted
        confirmed = int(exc.extra.get("confirmed") or 0)
        return _job_complete(job.pk, built, head, executor, attempt=job.attempts, printed=confirmed,
                             error=exc.message)
    try:
        return _job_complete(job.pk, built, head, executor, attempt=job.attempts)
    except (OperationalError, InterfaceError) as exc:
        raise TransientJobError(str(exc)) from exc
    except OSError as exc:  # the document folder: full, read-only, permissions; the job waits for a retry
        message = _storage_error(exc)
        _held(job.pk, executor).update(error=message[:4000])
        raise TransientJobError(message) from exc


def _stood_down(job_id: int, executor: Executor) -> str:
    logger.warning("document job %s: %s lost its lease before delivery; its output is discarded", job_id,
                   executor.owner)
    return LEASED


def _job_fail_held(job_id: int, executor: Executor, error: str) -> str:
    """Fail the job, if ``executor`` still holds it (else the holder's outcome stands)."""
    with transaction.atomic():
        job = _job_lock(job_id)
        if job.finished:
            return SKIPPED
        if job.lease_owner != executor.owner:
            return _stood_down(job_id, executor)
        _job_failed(job, error)
    return JobStatus.FAILED


def _storage_error(exc: OSError) -> str:
    """Names the folder and the system's reason, for the admin's job page and the operator's log."""
    folder = exc.filename or getattr(settings, "MEDIA_ROOT", "")
    return f"document folder {folder} is not writable: {exc.strerror or exc}"


def _deliver(job: DocumentJob, built: BuiltDocument) -> None:
    """Send the output to the job's printer, if it names one (raises PrinterError with the printer's reason)."""
    print_dispatch_deliver(job=job, content=built.content, name=built.filename, labels=len(built.label_prints))


def _job_complete(
    job_id: int, built: BuiltDocument, head, executor: Executor, *, attempt: int, printed: int | None = None,
    error: str = "",
) -> str:
    """Done with the output and its LabelPrint rows; or, with ``error``, failed with the first ``printed``
    labels (those a printer took before it failed) counted as issued. Only while ``executor`` holds the lease."""
    digest = hashlib.sha256(built.content).hexdigest()
    with transaction.atomic():
        job = _job_lock(job_id)
        if job.finished:
            # Another execution finished first: its output and LabelPrint rows are the record.
            logger.info("document job %s already %s; discarding duplicate output", job_id, job.status)
            return SKIPPED
        if job.lease_owner != executor.owner:  # taken over while this one ran: the new holder completes it
            return _stood_down(job_id, executor)
        now = timezone.now()
        specs = built.label_prints if printed is None else built.label_prints[:printed]
        # The spec's fields as they are (asdict deep-copies every payload: 4 ms of a 50-label job, B7).
        names = [f.name for f in fields(LabelPrintSpec)]
        prints = [
            LabelPrint(job=job, printed_by=job.requested_by, printed_at=now,
                       **{name: getattr(spec, name) for name in names})
            for spec in specs
        ]
        if error:
            if prints:
                _prints_record(job, prints, now=now)
            _job_failed(job, error)
            return JobStatus.FAILED
        job.output.save(f"job-{job.pk}-a{attempt}-{built.filename}", ContentFile(built.content), save=False)
        # The labels', replaced labels' and the job's entries appended together once their rows are written: the
        # audit chain's lock (every writer waits for it) is held for that one append and the commit only (B7).
        with entries_deferred():
            if prints:
                _prints_record(job, prints, now=now)
            job.output_name = built.filename
            job.content_type = built.content_type
            job.sha256 = digest
            job.chain_sequence = head.sequence
            job.chain_hash = head.hash
            job.status = JobStatus.DONE
            job.progress = 100
            job.finished_at = now
            job.error = ""
            job.lease_expires_at = None  # the owner stays named: who made the record
            job.save()
            append_entries(actor=job.requested_by, pending=[PendingEntry(
                Action.PRINTED if prints else Action.GENERATED, object_type_of(job), str(job.pk), str(job),
                {"status": [JobStatus.RUNNING, JobStatus.DONE], "sha256": [None, digest],
                 "file": [None, job.output.name], "labels": [None, sum(p.copies for p in prints)],
                 "chain_head": [None, f"{head.sequence}:{head.hash}"]}, "")])
    return JobStatus.DONE


def _prints_record(job: DocumentJob, prints: list[LabelPrint], *, now) -> None:
    """The labels issued, and for each reprint the label it replaces recorded as destroyed (211.125): the one
    the item wears, if a label of it is still out (not destroyed or returned already)."""
    reason = job.params.get("reason", "")
    before = {}  # per reprinted item: the label it wears (1) or none (0)
    subjects = {(p.subject_type, p.subject_id) for p in prints if p.reprint_reason}
    for subject_type, subject_id in sorted(subjects):
        for (template, kind), per_item in label_item_counts(subject_type=subject_type, subject_id=subject_id).items():
            for key, c in per_item.items():
                before[(subject_type, subject_id, template, kind, key)] = label_used(c)
    created = audited_bulk_create(LabelPrint, prints, actor=job.requested_by, reason=reason)
    replaced = [
        LabelDisposition(
            subject_type=p.subject_type, subject_id=p.subject_id, template=p.template, kind=p.kind,
            item_key=p.item_key, disposition=Disposition.DESTROYED, count=count, recorded_by=job.requested_by,
            recorded_at=now, replaced_by=p, reason=f"replaced by reprint (job {job.pk}): {p.reprint_reason}",
        )
        for p in created if p.reprint_reason
        for count in [before.get((p.subject_type, p.subject_id, p.template, p.kind, p.item_key), 0)] if count >= 1
    ]
    if replaced:
        audited_bulk_create(LabelDisposition, replaced, actor=job.requested_by, reason=reason)


def label_disposition_record(
    *, subject_type: str, subject_id: str, subject_repr: str, template: str, kind: str, disposition: Any,
    labels: Any, reason: Any, actor,
) -> list[LabelDisposition]:
    """Record labels of a subject as destroyed or returned: ``labels`` names each one by its item key (a key
    twice is two labels of that item). Only labels issued and not yet accounted for can be; 400 naming the field.

    The calling app checks the role and locks the subject first (one record at a time per subject)."""
    errors: dict[str, list[str]] = {}
    if disposition not in Disposition.values:
        errors["disposition"] = [f"must be one of {', '.join(Disposition.values)}"]
    if not isinstance(labels, list) or not labels or not all(isinstance(k, str) and k for k in labels):
        errors["labels"] = ["must be a non-empty list of the labels' items (vial serial, carton key or SSCC)"]
    if not isinstance(reason, str) or not reason.strip():
        errors["reason"] = ["required: why the labels were destroyed or returned"]
    if errors:
        raise InvalidInput("Invalid label disposition.", fields=errors)
    wanted: dict[str, int] = {}
    for key in labels:
        wanted[key] = wanted.get(key, 0) + 1
    per_item = label_item_counts(subject_type=subject_type, subject_id=subject_id).get((template, kind), {})
    problems = []
    for key, count in wanted.items():
        c = per_item.get(key)
        out = label_on_item(c) if c else 0
        if not c or not c["issued"]:
            problems.append(f"{key}: no {template} {kind} label was issued for {subject_repr}")
        elif count > out:
            problems.append(f"{key}: {count} named, {out} issued and not yet destroyed or returned")
    if problems:
        raise InvalidInput(f"labels: {problems[0]}", fields={"labels": problems[:20]})
    now = timezone.now()
    rows = [LabelDisposition(subject_type=subject_type, subject_id=str(subject_id), template=template, kind=kind,
                             item_key=key, disposition=disposition, count=count, reason=reason.strip(),
                             recorded_by=actor, recorded_at=now)
            for key, count in wanted.items()]
    with transaction.atomic():
        return audited_bulk_create(LabelDisposition, rows, actor=actor, reason=reason.strip())


def document_job_fail(*, job_id: int, error: str) -> None:
    """Mark an unfinished job failed with its error (audited); a finished job is left alone."""
    with transaction.atomic():
        job = _job_lock(job_id)
        if job.finished:
            return
        _job_failed(job, error)


def _job_failed(job: DocumentJob, error: str) -> None:
    previous = job.status
    job.status = JobStatus.FAILED
    job.error = error[:4000]
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
    audit_record(
        actor=job.requested_by, action=Action.CHANGED, obj=job,
        changes={"status": [previous, JobStatus.FAILED], "error": [None, job.error]},
    )


def document_job_download(*, job: DocumentJob, actor, via: str):
    """The job's file, opened for ``actor``; each download is in the audit trail (who, which file, when, how)."""
    if job.status != JobStatus.DONE:
        raise Conflict(f"Document job {job.pk} is {job.status}, not done.", code="job_not_done")
    handle = job.output.open("rb")
    with transaction.atomic():
        audit_record(actor=actor, action=Action.DOWNLOADED, obj=job,
                     changes={"file": [None, job.output_name], "sha256": [None, job.sha256], "via": [None, via]})
    return handle
