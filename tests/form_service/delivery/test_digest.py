"""Flood digests: flagged reports reach a partner as one message per window, unflagged ones
one by one at once, each report with only what the partner's agreement allows."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyrage
import pytest

from form_service.delivery.channel import DeliveryFailed
from form_service.delivery.digest import FloodDigests
from form_service.delivery.dispatch import OutgoingDelivery, outgoing
from form_service.delivery.message import render_digest
from form_service.delivery.payload import parse_payload
from form_service.delivery.retry import RetryPolicy
from form_service.delivery.worker import DeliveryWorker
from form_service.intake import prepare_report
from form_service.report import Report, ReporterContact
from form_service.storage import ClaimedDelivery, NewReport, Store
from outreach.loader import LoadedProfile
from outreach.profile import Concern, Profile, Setting
from tests.databases import Database
from tests.form_service.delivery.conftest import smtp_delivery
from tests.form_service.delivery.factory import payload
from tests.form_service.delivery.reports import (
    FAST,
    make_worker,
    open_store,
    rows,
    submit,
    with_partner,
)
from tests.form_service.delivery.servers import HTTPReceiver, Received, SMTPServer, ThrowawayCA
from tests.form_service.samples import report

# Routed to the intake team, the sheriff and the utility (agreements HC-ISA-00, 05 and 07).
PARTNERS = ("intake-team", "sheriff-tau", "harbor-utilities")
PEOPLE = "CANARY-PEOPLE-{n}-d1g"
CONTACT = "CANARY-CONTACT-{n}-d1g"


def infrastructure_report(n: int, **changes: Any) -> Report:
    changes.setdefault("danger_now", False)  # urgent reports never wait for a digest
    return report(
        area="east",
        setting=Setting.critical_infrastructure,
        concern=Concern.harm_others,
        description=f"Digest report number {n} about the water plant.",
        people=PEOPLE.format(n=n),
        contact=ReporterContact(name=CONTACT.format(n=n)),
        consent_to_share_contact=False,
        **changes,
    )


async def submit_flagged(store: Store, profile: Profile, filed: Report) -> NewReport:
    """A report stored while submissions ran above the surge rate."""
    new, _ = prepare_report(filed, profile, str(uuid.uuid4()), "secret", datetime.now(UTC), True)
    await store.save_report(new)
    return new


def all_on_smtp(profile: Profile, server: SMTPServer) -> Profile:
    for partner_id in PARTNERS:
        to = [f"{partner_id}@partners.example.org"]
        profile = with_partner(profile, partner_id, **smtp_delivery(server, to=to))
    return profile


def received_by(server: SMTPServer, partner_id: str) -> list[Received]:
    return [m for m in server.messages if m.rcpt_tos == [f"{partner_id}@partners.example.org"]]


def body(message: Received) -> str:
    content: str = message.message.get_content()
    return content


def refs_of(message: Received) -> list[str]:
    return [ref.strip() for ref in message.message["X-Outreach-Report"].split(",")]


def undelivered(database: Database) -> int:
    return int(rows(database, "SELECT count(*) FROM outbox WHERE status != 'delivered'")[0][0])


@pytest.mark.smtp
def test_flagged_reports_are_one_digest_per_partner_and_others_go_one_by_one(
    demo: LoadedProfile,
    data_dir: Path,
    smtp_server: Any,
    test_ca: ThrowawayCA,
    database: Database,
) -> None:
    server: SMTPServer = smtp_server(starttls=True)
    profile = all_on_smtp(demo.profile, server)

    async def scenario() -> tuple[NewReport, list[NewReport], list[NewReport]]:
        store = await open_store(database)
        worker = make_worker(store, profile, data_dir, tls_context=test_ca.client_context())
        # The first flagged report finds no window open: it goes at once, and opens one.
        first = await submit_flagged(store, profile, infrastructure_report(0))
        await worker.drain()
        assert len(server.messages) == 3
        flagged = [
            await submit_flagged(store, profile, infrastructure_report(n)) for n in range(1, 6)
        ]
        # Someone may be in danger now: flagged or not, it never waits for a digest.
        urgent = await submit_flagged(store, profile, infrastructure_report(8, danger_now=True))
        plain = [await submit(store, profile, infrastructure_report(n)) for n in (6, 7)]
        await worker.drain()
        await store.close()
        return first, flagged, [urgent, *plain]

    first, flagged, alone = asyncio.run(scenario())
    urgent, *plain = alone
    flagged_refs = {new.report_ref for new in flagged}
    for partner_id in PARTNERS:
        messages = received_by(server, partner_id)
        assert len(messages) == 5, partner_id  # the first, the digest, the urgent, 2 unflagged
        (opener,) = [m for m in messages if refs_of(m) == [first.report_ref]]
        (digest,) = [m for m in messages if len(refs_of(m)) > 1]
        (danger,) = [m for m in messages if refs_of(m) == [urgent.report_ref]]
        singles = [m for m in messages if m not in (opener, digest, danger)]
        assert opener.message["Subject"].startswith("[possible flood] New report")
        assert danger.message["Subject"].startswith("[possible flood] Someone may be in danger")
        assert digest.message["Subject"] == "[possible flood] 5 reports sent together"
        assert set(refs_of(digest)) == flagged_refs
        text = body(digest)
        assert all(ref in text for ref in flagged_refs)
        assert text.count("Report reference: ") == 5
        assert sorted(ref for m in singles for ref in refs_of(m)) == sorted(
            new.report_ref for new in plain
        )
        for single in singles:
            assert "[possible flood]" not in single.message["Subject"]
            (ref,) = refs_of(single)
            (delivery,) = [
                e.delivery_id
                for new in plain
                if new.report_ref == ref
                for e in new.outbox
                if e.partner_id == partner_id
            ]
            assert single.message["Message-ID"].startswith(f"<{delivery}@")
    # Each report in a digest carries what that partner's agreement allows, and no more.
    intake = body(_digest(server, "intake-team"))
    sheriff = body(_digest(server, "sheriff-tau"))
    utility = body(_digest(server, "harbor-utilities"))
    for n in range(1, 6):
        people, contact = PEOPLE.format(n=n), CONTACT.format(n=n)
        assert people in intake and contact in intake
        assert people in sheriff and contact not in sheriff  # no consent to share contact
        assert people not in utility and contact not in utility  # not in its agreement
        assert f"Digest report number {n}" in utility
    assert "HC-ISA-07" in utility and "HC-ISA-05" in sheriff
    # Every delivery has its own record, and is delivered with its plain text wiped.
    assert undelivered(database) == 0
    assert rows(database, "SELECT count(*) FROM outbox WHERE payload IS NOT NULL") == [(0,)]
    delivered = rows(
        database,
        "SELECT report_ref, partner_id FROM audit_events WHERE event = 'delivered'",
    )
    assert sorted(delivered) == sorted(
        (new.report_ref, e.partner_id)
        for new in [first, *flagged, urgent, *plain]
        for e in new.outbox
    )


def _digest(server: SMTPServer, partner_id: str) -> Received:
    (digest,) = [m for m in received_by(server, partner_id) if len(refs_of(m)) > 1]
    return digest


@pytest.mark.smtp
def test_unflagged_reports_do_not_wait_for_the_window(
    demo: LoadedProfile,
    data_dir: Path,
    smtp_server: Any,
    test_ca: ThrowawayCA,
    database: Database,
) -> None:
    """A running worker sends unflagged reports at once, and the first flagged one; the
    other flagged ones wait for the window. Stopping it sends what it holds."""
    server: SMTPServer = smtp_server(starttls=True)
    profile = all_on_smtp(demo.profile, server)
    options = replace(FAST, digest_seconds=60)

    async def scenario() -> None:
        store = await open_store(database)
        wakeup = asyncio.Event()
        worker = make_worker(
            store,
            profile,
            data_dir,
            options=options,
            wakeup=wakeup,
            tls_context=test_ca.client_context(),
        )
        for n in range(3):
            await submit_flagged(store, profile, infrastructure_report(n))
        await submit(store, profile, infrastructure_report(3))
        wakeup.set()
        running = asyncio.create_task(worker.run())
        async with asyncio.timeout(20):
            while len(server.messages) < 6:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # time enough for anything else that was going out
        # To each partner: the unflagged report, and the first flagged one.
        assert len(server.messages) == 6
        flood = [m for m in server.messages if "[possible flood]" in m.message["Subject"]]
        assert len(flood) == 3 and all(len(refs_of(m)) == 1 for m in flood)
        assert rows(database, "SELECT count(*) FROM outbox WHERE status = 'sending'") == [(6,)]
        running.cancel()  # a stop sends the held digests
        await asyncio.gather(running, return_exceptions=True)
        await store.close()

    asyncio.run(scenario())
    assert len(server.messages) == 9
    for partner_id in PARTNERS:
        assert len(refs_of(_digest(server, partner_id))) == 2
    assert undelivered(database) == 0


def test_rows_another_worker_took_over_leave_the_digest(
    demo: LoadedProfile, data_dir: Path, database: Database
) -> None:
    """A worker that stalled past its rows' lease (renewals lost) finds them taken by another
    worker at its next renewal, and no longer holds them for its digest."""
    options = replace(FAST, digest_seconds=60, lease_seconds=0.3)

    async def scenario() -> None:
        store = await open_store(database)
        for n in range(3):
            filed = report(description=f"Report {n}.", danger_now=False)
            await submit_flagged(store, demo.profile, filed)
        stalled = make_worker(store, demo.profile, data_dir, options=options)
        await stalled._drain()
        assert stalled.digests.holding
        later = datetime.now(UTC) + timedelta(seconds=60)
        taken = await store.claim_due_deliveries(later, 100, 30)
        assert {row.delivery_id for row in taken} == set(stalled._held)
        renewing = asyncio.create_task(stalled._keep_leases())
        try:
            async with asyncio.timeout(10):
                while stalled.digests.holding:
                    await asyncio.sleep(0.02)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
        assert not stalled._held
        await store.close()

    asyncio.run(scenario())


@pytest.mark.smtp
def test_a_failed_or_abandoned_digest_loses_no_report(
    demo: LoadedProfile,
    data_dir: Path,
    smtp_server: Any,
    test_ca: ThrowawayCA,
    database: Database,
) -> None:
    """Rows are marked delivered only after their message was accepted: a worker that dies
    holding them, or a digest the server refuses, leaves every report to be sent again."""
    server: SMTPServer = smtp_server(starttls=True, start=False)
    profile = with_partner(demo.profile, "intake-team", **smtp_delivery(server))
    # Retries wait 10 s: the first report, refused, does not come back within a drain.
    retry = RetryPolicy(base_seconds=10, cap_seconds=10, max_attempts=50)
    options = replace(FAST, digest_seconds=60, lease_seconds=30, retry=retry)
    tls = test_ca.client_context()

    def intake_rows() -> list[tuple[Any, ...]]:
        return rows(
            database, "SELECT status, last_error FROM outbox WHERE partner_id = 'intake-team'"
        )

    def worker_at(store: Store, moment: datetime) -> DeliveryWorker:
        def clock() -> datetime:
            return moment

        return make_worker(store, profile, data_dir, options=options, tls_context=tls, clock=clock)

    async def scenario() -> None:
        store = await open_store(database)
        for n in range(5):
            filed = report(description=f"Held report {n}.", danger_now=False)
            await submit_flagged(store, profile, filed)
        # A worker sends the first (the relay is down), holds the rest, and dies.
        dying = make_worker(store, profile, data_dir, options=options, tls_context=tls)
        await dying._drain()
        assert dying.digests.holding
        assert sorted(status for status, _ in intake_rows()) == ["pending"] + ["sending"] * 4
        # Another worker, once the leases have run out: the relay refuses every message.
        later = datetime.now(UTC) + timedelta(seconds=options.lease_seconds + 61)
        await worker_at(store, later).drain()
        assert [status for status, _ in intake_rows()] == ["pending"] * 5
        assert all(f"SMTP 127.0.0.1:{server.port}" in error for _, error in intake_rows())
        server.start()
        await worker_at(store, later + timedelta(seconds=11)).drain()
        await store.close()

    asyncio.run(scenario())
    messages = server.messages
    assert sorted(len(refs_of(m)) for m in messages) == [1, 4]  # the first alone, then a digest
    assert all(f"Held report {n}." in "".join(body(m) for m in messages) for n in range(5))
    events = rows(
        database,
        "SELECT event, outcome FROM audit_events WHERE partner_id = 'intake-team'"
        " AND event != 'routed'",
    )
    assert sorted(events) == sorted(
        [("delivery_attempt", "failed")] * 6 + [("delivered", "delivered")] * 5
    )
    assert undelivered(database) == 0


def test_webhook_partners_still_get_one_request_per_report(
    demo: LoadedProfile, data_dir: Path, http_receiver: HTTPReceiver, database: Database
) -> None:
    hook = {"url": http_receiver.url, "secret_env": "HOOK_SECRET"}
    profile = with_partner(demo.profile, "intake-team", channel="webhook", webhook=hook)

    async def scenario() -> None:
        store = await open_store(database)
        for n in range(3):
            await submit_flagged(store, profile, report(setting=Setting.online, when=f"day {n}"))
        worker = make_worker(store, profile, data_dir, environ={"HOOK_SECRET": "s"})
        await worker.drain()
        await store.close()

    asyncio.run(scenario())
    sent = [json.loads(r.body) for r in http_receiver.requests]
    assert len(sent) == 3 and all(item["flood_suspected"] is True for item in sent)
    assert len({r.headers["webhook-id"] for r in http_receiver.requests}) == 3


def test_a_window_with_one_report_sends_the_usual_message(
    demo: LoadedProfile, data_dir: Path, database: Database
) -> None:
    async def scenario() -> NewReport:
        store = await open_store(database)
        new = await submit_flagged(store, demo.profile, report(setting=Setting.online))
        await make_worker(store, demo.profile, data_dir).drain()
        await store.close()
        return new

    new = asyncio.run(scenario())
    intake = [e.delivery_id for e in new.outbox if e.partner_id == "intake-team"]
    assert [p.name for p in (data_dir / "maildir" / "intake-team" / "new").iterdir()] == intake


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _claimed(partner_id: str = "intake-team", **changes: Any) -> ClaimedDelivery:
    changes.setdefault("urgent", False)  # urgent reports never wait for a digest
    text = json.dumps(payload(partner_id, flood_suspected=True, **changes))
    return ClaimedDelivery(
        json.loads(text)["delivery_id"],
        "R-7K3M9Q2X",
        partner_id,
        "intake",
        "HC-ISA-00",
        text,
        1,
        True,
    )


def _row(partner_id: str = "intake-team", **changes: Any) -> OutgoingDelivery:
    return outgoing(_claimed(partner_id, **changes))


def test_a_flagged_message_opens_a_window_and_its_digest_the_next(
    demo: LoadedProfile,
) -> None:
    clock = Clock()
    digests = FloodDigests(300, clock=clock)

    def hold(row: OutgoingDelivery) -> bool:
        assert digests.digestible(row, demo.profile)
        return digests.hold(row)

    assert hold(_row()) is False  # no window open: it goes at once, and opens one
    assert not digests.holding
    clock.now += 100
    second, third = _row(), _row()
    assert hold(second) and hold(third)
    assert hold(_row("sheriff-tau")) is False  # each partner has its own window
    assert digests.due() == [] and digests.seconds_to_next() == 200
    clock.now += 200
    (due,) = digests.due()
    assert due == [second, third]
    assert not digests.holding and digests.seconds_to_next() is None
    # The digest opened the next window; a row another worker took over is let go.
    fourth, fifth = _row(), _row()
    assert hold(fourth) and hold(fifth)
    digests.let_go({fourth.row.delivery_id})
    clock.now += 300
    assert digests.due() == [[fifth]]
    digests.let_go({fifth.row.delivery_id})  # already sent: nothing to let go
    # A window that passes with nothing flagged closes: the next flagged row goes at once.
    clock.now += 300
    assert hold(_row()) is False
    assert digests.due(flush=True) == []
    last = _row()
    assert hold(last) and digests.holding
    digests.let_go({last.row.delivery_id})
    assert not digests.holding and digests.seconds_to_next() is None


def test_only_flagged_rows_on_mail_channels_wait(demo: LoadedProfile) -> None:
    digests = FloodDigests(300)
    assert digests.digestible(_row(), demo.profile)
    plain = payload()
    unflagged = outgoing(replace(_claimed(), payload=json.dumps(plain)))
    assert not digests.digestible(unflagged, demo.profile)
    hooked = with_partner(
        demo.profile,
        "intake-team",
        channel="webhook",
        webhook={"url": "https://hook.example.org/x", "secret_env": "S"},
    )
    assert not digests.digestible(_row(), hooked)
    assert not FloodDigests(0).digestible(_row(), demo.profile)
    # Someone may be in danger now: never held, flood or not, for a partner that may know.
    assert not digests.digestible(_row(urgent=True), demo.profile)
    assert digests.digestible(_row(urgent=False), demo.profile)
    # For any other, its copy does not say (sharing leaves urgent out): held as any other,
    # since a message apart from the digest would tell what the message leaves out.
    fields = {k: v for k, v in payload()["fields"].items() if k != "danger_now"}
    assert digests.digestible(_row(urgent=True, fields=fields), demo.profile)
    # A payload that breaks the contract fails at the claim, and is never held.
    with pytest.raises(DeliveryFailed, match="contract"):
        outgoing(replace(_claimed(), payload='{"flood_suspected": true}'))


def test_a_sealed_digest_names_references_only(demo: LoadedProfile) -> None:
    identity = pyrage.x25519.Identity.generate()
    sealed_partner = with_partner(
        demo.profile,
        "sheriff-tau",
        channel="maildir",
        maildir={"folder": "s"},
        age_recipient=str(identity.to_public()),
    ).partner("sheriff-tau")
    payloads = [
        parse_payload(json.dumps(payload("sheriff-tau", report_ref=ref, flood_suspected=True)))
        for ref in ("R-AAAAAAAA", "R-BBBBBBBB")
    ]
    rendered = render_digest(payloads, sealed_partner, demo.profile)
    assert "R-AAAAAAAA" in rendered.body and "R-BBBBBBBB" in rendered.body
    assert "knife" not in rendered.body
    assert rendered.sealed is not None
    opened = pyrage.decrypt(rendered.sealed, [identity]).decode()
    assert opened.count("knife") == 2 and "Report 2 of 2" in opened
    # The same deliveries make the same message id, whatever their order.
    again = render_digest(payloads[::-1], sealed_partner, demo.profile)
    assert again.delivery_id == rendered.delivery_id


def test_urgent_reports_come_first_in_a_digest_in_the_partners_language(
    demo: LoadedProfile,
) -> None:
    partner = demo.profile.partner("eastwood-schools")
    payloads = [
        parse_payload(
            json.dumps(
                payload(
                    "eastwood-schools",
                    report_ref=ref,
                    urgent=urgent,
                    language="es",
                    flood_suspected=True,
                )
            )
        )
        for ref, urgent in (("R-AAAAAAAA", False), ("R-BBBBBBBB", True), ("R-CCCCCCCC", False))
    ]
    rendered = render_digest(payloads, partner, demo.profile)
    assert rendered.urgent
    assert rendered.subject.startswith("[posible avalancha de envíos] 3 reportes")
    assert rendered.body.index("R-BBBBBBBB") < rendered.body.index("R-AAAAAAAA")
    assert "Reporte 1 de 3" in rendered.body


def test_a_digest_names_each_reports_files_and_attaches_none(demo: LoadedProfile) -> None:
    """A flood's photos in one message would make it the flood's size: each report's files
    are named, with where to get them; those the agreement does not share are counted."""
    partner = demo.profile.partner("eastwood-schools")
    photo = {"id": "a" * 32, "kind": "image", "number": 1, "media_type": "image/jpeg", "size": 9}
    video = {"id": "b" * 32, "kind": "video", "number": 1, "media_type": "video/mp4", "size": 9}
    shared = payload("eastwood-schools", report_ref="R-AAAAAAAA", flood_suspected=True,
                     urgent=False, attachments=[photo, video])  # fmt: skip
    counted = payload("eastwood-schools", report_ref="R-BBBBBBBB", flood_suspected=True,
                      urgent=False, files_withheld=2)  # fmt: skip
    rendered = render_digest(
        [parse_payload(json.dumps(p)) for p in (shared, counted)], partner, demo.profile
    )
    assert rendered.files == ()
    first, second = rendered.body.split("== Report 2 of 2 ==")
    assert (
        "Files not attached, since this message gathers many reports (ask us for them):"
        " photo-1.jpg, video-1.mp4" in first
    )
    assert "this agreement does not share: 2." in second and "photo-1" not in second
