"""Payloads and partners for delivery tests, shaped as the service contract says."""

from __future__ import annotations

import json
import uuid
from typing import Any

from outreach.profile import Partner
from tests.form_service.samples import ALL_FIELDS


def payload(partner_id: str = "intake-team", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "delivery_id": str(uuid.uuid4()),
        "report_ref": "R-7K3M9Q2X",
        "partner_id": partner_id,
        "agreement_id": "HC-ISA-00",
        "agreement_title": "Intake and triage of all reports",
        "rule_id": "intake",
        "language": "en",
        "urgent": True,
        "received_at": "2026-03-04T05:06Z",
        "fields": json.loads(json.dumps(ALL_FIELDS)),
    }
    data.update(changes)
    return data


def payload_text(partner_id: str = "intake-team", **changes: Any) -> str:
    return json.dumps(payload(partner_id, **changes))


def partner(base: Partner, **delivery: Any) -> Partner:
    """*base* with its delivery settings replaced (channel and its block, age key, …)."""
    return Partner.model_validate({**base.model_dump(mode="json"), "delivery": delivery})
