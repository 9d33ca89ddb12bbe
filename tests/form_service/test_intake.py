"""A validated report becomes routed outbox rows and an archive copy only the agency can read."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pyrage
import pytest

from form_service.conversation import open_thread
from form_service.intake import prepare_report
from form_service.receipts import open_code, receipt_hash, token_hash
from outreach.loader import LoadedProfile, load_profile
from outreach.profile import Concern, Setting
from outreach.routing import INTAKE_RULE, all_facts, route_report
from tests.form_service.samples import report

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
REPORT = report(
    area="south",
    area_detail="",
    setting=Setting.online,
    concern=Concern.self_harm,
    danger_now=False,
    consent_to_share_contact=True,
    language="es",
)


def test_outbox_rows_follow_routing(keyed_demo: LoadedProfile) -> None:
    new, _ = prepare_report(REPORT, keyed_demo.profile, "a" * 32, "secret", NOW)
    rows = {(e.partner_id, e.rule_id, e.is_intake) for e in new.outbox}
    assert rows == {
        ("intake-team", INTAKE_RULE, True),
        ("harbor-behavioral-health", "self-harm", False),
    }
    for row in new.outbox:
        payload = json.loads(row.payload)
        assert payload["delivery_id"] == row.delivery_id
        assert payload["report_ref"] == new.report_ref
        assert list(payload["fields"]) == list(row.fields)
        assert row.agreement_id == payload["agreement_id"]


@pytest.mark.parametrize("facts", list(all_facts(load_profile().profile)), ids=str)
def test_every_kind_of_report_reaches_its_partners(keyed_demo: LoadedProfile, facts: Any) -> None:
    report = replace(
        REPORT,
        area=facts.area,
        setting=facts.setting,
        concern=facts.concern,
        danger_now=facts.danger_now,
    )
    new, _ = prepare_report(report, keyed_demo.profile, "b" * 32, "secret", NOW)
    expected = route_report(facts, keyed_demo.profile)
    assert [(e.partner_id, e.rule_id) for e in new.outbox] == [
        (r.partner_id, r.rule_id) for r in expected
    ]
    assert new.outbox[0].partner_id == "intake-team"


def test_receipt_code_and_hash(keyed_demo: LoadedProfile) -> None:
    new, code = prepare_report(REPORT, keyed_demo.profile, "c" * 32, "secret", NOW)
    again, other = prepare_report(REPORT, keyed_demo.profile, "c" * 32, "secret", NOW)
    # Random, not derived from the form: the same form prepared twice gets two codes.
    assert code != other
    assert new.receipt_hash == receipt_hash("secret", code)
    # The form token's id is kept only as a hash; it opens the sealed code.
    assert new.token_id == token_hash("c" * 32) == again.token_id
    assert "c" * 32 not in repr(new)
    opened = open_code("c" * 32, new.receipt_sealed, new.report_ref)
    assert opened is not None and opened.code == code
    # The thread key opens with the code alone.
    identity = open_thread(code, new.thread_sealed, new.report_ref)
    assert identity is not None and identity.recipient == new.thread_recipient
    assert open_thread(other, new.thread_sealed, new.report_ref) is None


def test_content_is_encrypted_to_the_archive_key(
    keyed_demo: LoadedProfile, archive_identity: Any
) -> None:
    new, _ = prepare_report(REPORT, keyed_demo.profile, "d" * 32, "secret", NOW)
    assert b"knife" not in new.content_age
    content = json.loads(pyrage.decrypt(new.content_age, [archive_identity]))
    assert content["description"] == REPORT.description
    assert content["location"] == {"area": "south", "detail": ""}
    assert content["contact"]["phone"] == "555-0199"
    assert content["report_ref"] == new.report_ref
    assert content["received_at"] == "2026-03-04T05:06Z"
    assert content["language"] == "es"


def test_delivery_ids_are_distinct_uuid4(keyed_demo: LoadedProfile) -> None:
    import uuid

    report = replace(REPORT, concern=Concern.both, danger_now=True)
    ids = [
        e.delivery_id
        for n in range(20)
        for e in prepare_report(report, keyed_demo.profile, f"{n:032x}", "s", NOW)[0].outbox
    ]
    assert len(set(ids)) == len(ids) > 20
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_each_partner_reads_the_report_in_its_own_language(keyed_demo: LoadedProfile) -> None:
    east = replace(REPORT, area="east", setting=Setting.school, concern=Concern.harm_others)
    new, _ = prepare_report(east, keyed_demo.profile, "c" * 32, "secret", NOW)
    names = {
        row.partner_id: json.loads(row.payload)["fields"]["location"]["area_name"]
        for row in new.outbox
    }
    # The intake team reads English; Eastwood's schools read Spanish (the demo profile).
    assert names["intake-team"] == "Eastwood Valley"
    assert names["eastwood-schools"] == "Valle de Eastwood"


def test_partners_of_review_rules_are_held_not_sent(reviewed_demo: LoadedProfile) -> None:
    school = replace(REPORT, setting=Setting.school, concern=Concern.harm_others)
    ordinary = replace(school, danger_now=False)  # two review rules choose two partners
    new, _ = prepare_report(ordinary, reviewed_demo.profile, "e" * 32, "secret", NOW)
    assert [e.partner_id for e in new.outbox] == ["intake-team"]
    held = {(s.partner_id, s.rule_id) for s in new.shares if s.held}
    assert held == {("harbor-schools", "schools-north-south"), ("sheriff-tau", "harm-to-others")}
    urgent, _ = prepare_report(
        replace(school, danger_now=True), reviewed_demo.profile, "f" * 32, "secret", NOW
    )
    assert [e.partner_id for e in urgent.outbox] == ["intake-team", "sheriff-tau"]
    assert {s.partner_id for s in urgent.shares if s.held} == {"harbor-schools"}


def _holding(loaded: LoadedProfile, partner_id: str, minutes: int) -> LoadedProfile:
    profile = loaded.profile
    partners = [
        p.model_copy(update={"hold_minutes": minutes}) if p.id == partner_id else p
        for p in profile.partners
    ]
    return LoadedProfile(
        profile=profile.model_copy(update={"partners": partners}),
        folder=loaded.folder,
        path=loaded.path,
    )


def test_a_partner_may_hold_ordinary_reports_a_random_while(
    keyed_demo: LoadedProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert all(p.hold_minutes == 0 for p in keyed_demo.profile.partners), "off in the demo"
    profile = _holding(keyed_demo, "harbor-behavioral-health", 10).profile
    holds = set()
    for _ in range(40):
        new, _code = prepare_report(REPORT, profile, "c" * 32, "secret", NOW)
        held = {e.partner_id: e.hold_seconds for e in new.outbox}
        assert held["intake-team"] == 0
        holds.add(held["harbor-behavioral-health"])
    assert all(0 <= hold <= 600 for hold in holds) and len(holds) > 30, holds
    monkeypatch.setattr("form_service.intake.secrets.randbelow", lambda n: n - 1)
    new, _code = prepare_report(REPORT, profile, "c" * 32, "secret", NOW)
    assert max(e.hold_seconds for e in new.outbox) == 600, "up to the whole hold"
    danger = replace(REPORT, danger_now=True)
    new, _code = prepare_report(danger, profile, "d" * 32, "secret", NOW)
    assert all(e.hold_seconds == 0 for e in new.outbox), "danger now is never held"
