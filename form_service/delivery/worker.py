"""The delivery worker: outbox rows to partners, at least once, with one key per delivery.

It waits on the wake-up event or a short timer (for retries and for rows a crashed worker
left), claims due rows under a short lease, and sends up to ``concurrency`` at once. The
event is set when a report commits: by the request handler of the same process, and for
every worker process by the store (``Store.listen_for_reports``: NOTIFY on PostgreSQL,
named pipes on SQLite).

While the worker holds a row (a send in flight, however slow, or a row waiting for a
digest) it renews the row's lease every few seconds, so no other worker takes it; a worker
that dies stops renewing, and its rows are claimed again within one lease.

A row is marked delivered only after its channel accepted it; a crash before that leaves
the row to be claimed again when its lease runs out (seconds later), and the receiver drops
the repeat by its Message-ID or webhook-id, which is the delivery id.

Rows flagged as a possible flood wait for their partner's digest instead (digest.py).
Beside it run the escalation of danger-now reports nobody acknowledges (staff/escalation.py)
and the staff users' notices of new work (staff/notices.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from form_service.delivery.alerts import alert_dead
from form_service.delivery.channel import DeliveryFailed, DeliverySettings, FileNotReady
from form_service.delivery.digest import FloodDigests
from form_service.delivery.dispatch import OutgoingDelivery, deliver, deliver_digest, outgoing
from form_service.delivery.files import StoredFiles
from form_service.delivery.retry import RetryPolicy
from form_service.delivery.smtp_sessions import SmtpSessions
from form_service.logs import MinuteTally, log_event
from form_service.settings import Settings
from form_service.staff.escalation import escalate_forever
from form_service.staff.notices import send_notices_forever
from form_service.storage import ClaimedDelivery, Store, open_store
from form_service.storage import attachments as stored_files
from form_service.storage.statements import POSTPONE
from form_service.times import stamp
from form_service.waiting_files import clean_all_waiting

if TYPE_CHECKING:
    from form_service.service import Service

_RECORD_FOR_SECONDS = 120.0
"""How long a delivered row's outcome is retried while the database is away (a restart)."""


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 16
    lease_seconds: float = 10.0
    """How long a claim holds a row unless renewed: the worker renews the rows it holds every
    third of it, so a live worker's row is not claimed twice however long its send takes,
    and a dead worker's rows are claimed again by another within this time."""
    poll_seconds: float = 1.0
    purge_every_seconds: float = 24 * 3600.0
    checkpoint_every_seconds: float = 1.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    digest_seconds: float = 300.0
    """How long a partner's flood-flagged deliveries are gathered into one digest; 0: never."""
    escalation_seconds: float = 30.0
    """How often unacknowledged danger-now reports are checked (staff/escalation.py)."""
    notices_seconds: float = 30.0
    """How often staff notices are sent (staff/notices.py)."""
    sweep_seconds: float = 60.0
    """How often photos left waiting to be cleaned are looked for (waiting_files.py)."""
    file_wait_seconds: float = 2.0
    """How long a delivery whose photo is still being cleaned is put off; the cleaning
    makes it due as soon as it is done, so this only bounds a lost wake-up."""

    @property
    def renew_seconds(self) -> float:
        """How often the leases of held rows are renewed: two renewals may fail (a busy
        database) before a lease runs out."""
        return self.lease_seconds / 3


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        settings: DeliverySettings,
        *,
        wakeup: asyncio.Event | None = None,
        options: WorkerOptions | None = None,
        clock: Callable[[], datetime] | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        # True while reports are being submitted to the process this worker shares: it then
        # sends one message at a time, so tipsters' receipts do not wait behind deliveries.
        self.busy = busy or (lambda: False)
        # Sessions to SMTP relays stay open while there is work and close when it stops.
        self.sessions = settings.smtp_sessions or SmtpSessions()
        files = settings.file_source or StoredFiles(store, settings.secret_keys)
        self.settings = replace(settings, smtp_sessions=self.sessions, file_source=files)
        self.wakeup = wakeup or asyncio.Event()
        self.options = options or WorkerOptions()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._failing: set[str] = set()
        self._held: dict[str, ClaimedDelivery] = {}
        """Rows claimed whose outcome is not recorded yet: their leases are kept."""
        self._wiped = False
        self._last_checkpoint = 0.0
        self._checkpointing: asyncio.Task[None] | None = None
        self.digests = FloodDigests(self.options.digest_seconds)
        # Deliveries are logged as a count per minute: a line per message, a moment after
        # its report was sent, would time that report to the second in the log.
        self.delivered = MinuteTally("messages_delivered")

    async def run(self) -> None:
        """Deliver until cancelled."""
        listener = asyncio.create_task(self.store.listen_for_reports(self.wakeup))
        tally = asyncio.create_task(self.delivered.flush_every_minute())
        escalation = asyncio.create_task(
            escalate_forever(self.store, self.settings, self.clock, self.options.escalation_seconds)
        )
        notices = asyncio.create_task(
            send_notices_forever(
                self.store, self.settings, self.clock, self.options.notices_seconds
            )
        )
        sweep = asyncio.create_task(self._clean_left_waiting_forever())
        leases = asyncio.create_task(self._keep_leases())
        try:
            await self._deliver_forever()
        finally:
            listener.cancel()
            tally.cancel()
            escalation.cancel()
            notices.cancel()
            sweep.cancel()
            # A stop (a restart, a deploy) sends what is held rather than leave it leased.
            with anyio.move_on_after(5, shield=True):
                await asyncio.gather(*(self._send_digest(h) for h in self.digests.due(flush=True)))
            leases.cancel()
            # Shielded: under the app's task group every await here would be cancelled again.
            with anyio.move_on_after(5, shield=True):
                await asyncio.gather(
                    listener, escalation, notices, sweep, leases, return_exceptions=True
                )
                await self.sessions.close()
                if self._checkpointing is not None:
                    await asyncio.gather(self._checkpointing, return_exceptions=True)
            self.delivered.flush()

    async def _deliver_forever(self) -> None:
        next_purge = time.monotonic()
        while True:
            self.wakeup.clear()
            try:
                await self._drain()
                if time.monotonic() >= next_purge:
                    await self.purge()
                    next_purge = time.monotonic() + self.options.purge_every_seconds
            except Exception as error:  # a database hiccup must not end delivery for good
                log_event("delivery_worker_error", logging.ERROR, error=type(error).__name__)
            # The one await that can last long: a stop lost on the way here must not sleep.
            _stop_if_cancelled()
            wait = self.options.poll_seconds
            digest_due = self.digests.seconds_to_next()
            try:
                async with asyncio.timeout(wait if digest_due is None else min(wait, digest_due)):
                    await self.wakeup.wait()
            except TimeoutError:
                # Idle: no connection held open for nothing, no wiped text left in the WAL.
                await self.sessions.close()
                await self._checkpoint(force=True)

    async def drain(self) -> int:
        """Send every row that is due now (held digests too, whatever their window), then
        close the SMTP sessions it opened."""
        leases = asyncio.create_task(self._keep_leases())
        try:
            return await self._drain(flush=True)
        finally:
            leases.cancel()
            await asyncio.gather(leases, return_exceptions=True)
            await self.sessions.close()
            await self._checkpoint(force=True)

    async def _drain(self, *, flush: bool = False) -> int:
        """Send every due row, up to ``concurrency`` at once, and every digest due (all held
        ones when *flush*); the number of rows claimed."""
        inflight: set[asyncio.Task[None]] = set()
        attempts = 0
        try:
            while True:
                concurrency = 1 if self.busy() else self.options.concurrency
                free = concurrency - len(inflight)
                # Claim in groups, not one row per finished send: each claim is a write.
                refill = free >= max(1, concurrency // 4) or not inflight
                batch = await self._claim(free) if refill else []
                # A claim that got fewer rows than it asked for has taken all that is due.
                taken_all = refill and len(batch) < free
                inflight |= self._start(batch, flush=flush and taken_all)
                attempts += len(batch)
                if not inflight:
                    if batch:
                        continue  # every row claimed waits for a digest: claim on
                    break
                inflight = await self._next_finished(inflight)
                await self._checkpoint(force=False)
        except Exception:
            # The database went away (a claim failed), not a shutdown: the attempts in flight
            # finish and record their outcome, retrying while it is away; cut short, their
            # rows would be sent again by the next claim after their lease.
            if inflight:
                await asyncio.wait(inflight)
            raise
        finally:
            if inflight:
                await _settle(inflight)
        await self._checkpoint(force=False)
        return attempts

    async def _next_finished(self, inflight: set[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        """Wait for an attempt to finish or a new report to commit; the attempts still running."""
        waiter = asyncio.create_task(self.wakeup.wait())
        first = asyncio.FIRST_COMPLETED
        # Or until a held digest is due, which must not wait for a slow send.
        timeout = self.digests.seconds_to_next()
        done, _ = await asyncio.wait({*inflight, waiter}, return_when=first, timeout=timeout)
        if waiter in done:
            self.wakeup.clear()
        else:
            waiter.cancel()
        for task in inflight & done:
            error = task.exception()
            if error is not None:
                raise error
        return inflight - done

    async def _claim(self, limit: int) -> list[ClaimedDelivery]:
        lease = self.options.lease_seconds
        batch = await self.store.claim_due_deliveries(self.clock(), limit, lease)
        self._held |= {row.delivery_id: row for row in batch}
        return batch

    async def _keep_leases(self) -> None:
        """Renew the lease of every row held, until cancelled. A row another worker took
        meanwhile (this one stalled past its lease) is let go: its digest no longer waits."""
        while True:
            await asyncio.sleep(self.options.renew_seconds)
            held = dict(self._held)
            lease = self.options.lease_seconds
            try:
                kept = await self.store.renew_leases([*held.values()], self.clock(), lease)
            except Exception as error:  # the database is away: the next renewal may get through
                log_event("lease_not_renewed", logging.WARNING, error=type(error).__name__)
                continue
            # Rows recorded meanwhile were not renewed, and are no longer held anyway.
            lost = {i for i, row in held.items() if i not in kept and self._held.get(i) is row}
            if lost:
                log_event("leases_lost", logging.WARNING, rows=len(lost))
                self.digests.let_go(lost)
                for delivery_id in lost:
                    self._held.pop(delivery_id, None)

    def _start(self, batch: list[ClaimedDelivery], *, flush: bool) -> set[asyncio.Task[None]]:
        """Attempts for the claimed rows, but flagged ones that wait for their partner's
        digest; and the digests now due. Each row's payload is parsed here, once."""
        sends: list[Coroutine[Any, Any, None]] = []
        for row in batch:
            try:
                delivery = outgoing(row)
            except DeliveryFailed as failure:
                sends.append(self._failed(row, failure.reason))
                continue
            digestible = self.digests.digestible(delivery, self.settings.profile)
            if not digestible or not self.digests.hold(delivery):
                sends.append(self.attempt(delivery))
        sends += [self._send_digest(held) for held in self.digests.due(flush=flush)]
        return {asyncio.create_task(send) for send in sends}

    async def _send_digest(self, held: list[OutgoingDelivery]) -> None:
        """One message for a partner's held rows; then each row is recorded on its own."""
        if len(held) == 1:
            await self.attempt(held[0])  # one report: the usual message, under its own id
            return
        try:
            await deliver_digest([h.payload for h in held], self.settings)
        except Exception as error:  # DeliveryFailed, or a bug: the rows are retried either way
            reason = error.reason if isinstance(error, DeliveryFailed) else None
            for h in held:
                why = reason or f"internal error: {type(error).__name__}"
                await self._failed(h.row, why)
            return
        log_event("flood_digest_sent", partner=held[0].row.partner_id, reports=len(held))
        for h in held:
            await self._succeeded(h.row)

    async def _clean_left_waiting_forever(self) -> None:
        """Clean the photos a stopped process left waiting, now and then every while."""
        settings = self.settings
        while True:
            try:
                settled = await clean_all_waiting(self.store, settings.profile,
                                                  settings.secret_keys, settings.data_dir,
                                                  self.clock)  # fmt: skip
            except Exception as error:  # the database is away: the next sweep may get through
                log_event("waiting_files_not_cleaned", logging.WARNING, error=type(error).__name__)
            else:
                if settled:
                    log_event("waiting_files_cleaned", files=settled)
                    self.wakeup.set()
            await asyncio.sleep(self.options.sweep_seconds)

    async def _wait_for_files(self, row: ClaimedDelivery) -> None:
        """Put a row off while a photo it carries is cleaned: back to pending, its claim
        not counted as an attempt."""
        at = self.clock() + timedelta(seconds=self.options.file_wait_seconds)
        try:
            async with self.store.transaction() as tx:
                await tx.run(POSTPONE, (stamp(at), row.delivery_id, row.attempts))
        finally:
            self._held.pop(row.delivery_id, None)

    async def attempt(self, delivery: OutgoingDelivery) -> None:
        """One attempt at one row, recorded as delivered or failed (then retried or dead)."""
        row = delivery.row
        try:
            await deliver(delivery.payload, self.settings)
        except FileNotReady:
            await self._wait_for_files(row)
            return
        except DeliveryFailed as failure:
            await self._failed(row, failure.reason)
            return
        except Exception as error:  # a bug in one row must not stop the others
            await self._failed(row, f"internal error: {type(error).__name__}")
            return
        await self._succeeded(row)
        source = self.settings.file_source
        if delivery.payload.attachments and source is not None:
            intake = self.settings.profile.routing.intake or ""
            try:
                async with source.turn:
                    await source.keep_for_partner(delivery.payload, intake)
            except Exception as error:  # delivered all the same; its users see no file
                log_event("partner_files_not_kept", logging.WARNING, error=type(error).__name__)
            # The last delivery of the report's files: their delivery copies go.
            await source.release(row.report_ref)

    async def _succeeded(self, row: ClaimedDelivery) -> None:
        try:
            await self._record_delivered(row)
        finally:
            self._held.pop(row.delivery_id, None)
        self._wiped = True
        self.delivered.add(messages=1)
        if row.partner_id in self._failing:
            self._failing.discard(row.partner_id)
            await self._recovered(row.partner_id)

    async def _record_delivered(self, row: ClaimedDelivery) -> None:
        """Mark the row delivered, retrying while the database is away (a restart): the
        channel took the message, so sending it again would only be a duplicate. The row
        stays held meanwhile, its lease renewed once the database is back."""
        give_up_at = time.monotonic() + _RECORD_FOR_SECONDS
        delay = 0.1
        while True:
            try:
                await self.store.mark_delivered(row.delivery_id)
                return
            except Exception as error:
                if time.monotonic() + delay > give_up_at:
                    raise
                log_event(
                    "delivered_not_recorded_yet",
                    logging.WARNING,
                    partner=row.partner_id,
                    error=type(error).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _failed(self, row: ClaimedDelivery, reason: str) -> None:
        policy = self.options.retry
        dead = policy.gives_up(row.attempts)
        delay = 0.0 if dead else policy.delay(row.attempts)
        next_at = self.clock() + timedelta(seconds=delay)
        try:
            await self.store.mark_failed(row.delivery_id, reason, next_at, dead)
        finally:
            self._held.pop(row.delivery_id, None)
        self._failing.add(row.partner_id)
        log_event(
            "delivery_dead" if dead else "delivery_failed",
            logging.ERROR if dead else logging.WARNING,
            # No report reference: `outreach audit` names the reports, and a failure logged
            # a moment after a report arrived would time it. The partner is what to act on.
            partner=row.partner_id,
            attempt=row.attempts,
            reason=reason,
            retry_in_seconds=round(delay),
        )
        if dead:
            # The server's fact, not the payload's: the alert goes to the operator, who may
            # know what a partner's agreement leaves out.
            await alert_dead(row, row.urgent, reason, self.settings)

    async def _recovered(self, partner_id: str) -> None:
        # The partner answers again: its backlog need not sit out the rest of its backoff.
        pulled = await self.store.retry_partner_now(partner_id, self.clock())
        if pulled:
            log_event("delivery_backlog_due", partner=partner_id, rows=pulled)
            self.wakeup.set()

    async def _checkpoint(self, *, force: bool) -> None:
        """Empty the WAL of wiped payloads: in the background at most once per interval,
        or now (``force``) when a caller needs it done before going on."""
        running = self._checkpointing
        if force:
            if running is not None:
                await running
            if self._wiped:
                await self._run_checkpoint()
            return
        due = time.monotonic() - self._last_checkpoint >= self.options.checkpoint_every_seconds
        if self._wiped and due and (running is None or running.done()):
            # Not awaited: a checkpoint waits for the disk, and sends go on meanwhile.
            self._checkpointing = asyncio.create_task(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        self._wiped = False
        self._last_checkpoint = time.monotonic()
        try:
            done = await self.store.checkpoint()
        except Exception as error:  # retried at the next interval
            log_event("checkpoint_failed", logging.WARNING, error=type(error).__name__)
            done = False
        if not done:
            self._wiped = True

    async def purge(self) -> list[str]:
        days = self.settings.profile.retention.days
        refs = await self.store.purge(self.clock(), days)
        if refs:
            log_event("reports_purged", count=len(refs), retention_days=days)
        # Files held for a form that expired unsent: their form can no longer be sent.
        expired = self.clock() - timedelta(seconds=self.settings.held_files_seconds + 60)
        async with self.store.transaction() as tx:
            dropped = await stored_files.drop_unclaimed(tx, expired)
        if dropped:
            log_event("unsent_files_dropped", count=dropped)
        return refs


def _stop_if_cancelled() -> None:
    """Raise the cancellation a library swallowed.

    On Python 3.11 ``asyncio.wait_for`` returns its result when that result and a cancel
    arrive together (psycopg_pool waits for a pooled connection that way): the worker would
    then go back to sleep with its stop lost, and a shutdown would wait for it forever. The
    task still counts the request, so it is honored here."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _settle(inflight: set[asyncio.Task[None]], grace_seconds: float = 5.0) -> None:
    """On the way out (shutdown, an error): let running attempts finish and be recorded
    before the store closes, so a message already accepted is not sent again later."""
    with anyio.move_on_after(grace_seconds, shield=True):
        await asyncio.wait(inflight)
    for task in inflight:
        task.cancel()
    with anyio.CancelScope(shield=True):
        await asyncio.gather(*inflight, return_exceptions=True)


def delivery_settings(settings: Settings) -> DeliverySettings:
    return DeliverySettings(
        profile=settings.profile.profile,
        data_dir=settings.data_dir,
        secret_keys=settings.secret_keys,
        held_files_seconds=settings.max_token_age_seconds,
    )


async def start_worker(service: Service) -> None:
    """The worker inside ``outreach serve``: a background task of create_app, woken by the
    service's wake-up event the moment a report commits. It shares the process (and its
    one interpreter lock) with the form: while reports are coming in it sends one message
    at a time, and the outbox holds the rest until the rush is over."""
    worker = DeliveryWorker(
        service.store,
        delivery_settings(service.settings),
        wakeup=service.wakeup,
        options=WorkerOptions(digest_seconds=service.settings.flood_digest_seconds),
        busy=lambda: service.reports_in_flight > 0,
    )
    await worker.run()


async def run_standalone(settings: Settings, options: WorkerOptions | None = None) -> None:
    """``outreach worker``: its own process and store connection, woken by each commit of
    any process (NOTIFY on PostgreSQL, a named pipe on SQLite); polling finds retries that
    come due. Stops on SIGTERM or SIGINT."""
    store = open_store(settings)
    await store.open()
    options = replace(options or WorkerOptions(), digest_seconds=settings.flood_digest_seconds)
    worker = DeliveryWorker(store, delivery_settings(settings), options=options)
    task = asyncio.create_task(worker.run())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    log_event("delivery_worker_started")
    try:
        await task
    except asyncio.CancelledError:
        log_event("delivery_worker_stopped")
    finally:
        await store.close()
