"""The outbox payload: what one partner may see of one report, held to the contract.

Sharing builds it as this model, so it is checked as it is made; the outbox keeps its
JSON, and the delivery worker parses that once, right after claiming the row. Anything the
contract does not name is refused rather than passed on, so a payload can never carry a
field to a partner that no one meant to send. Identifiers that may reach a mail header are
held to patterns that cannot contain line breaks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from outreach.profile import ReportField

# Ids come from the profile or the store; these patterns keep them one line, one token.
ReportRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")]
Language = Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")]


class PayloadError(ValueError):
    """A payload that does not follow the contract; the message names keys, never values."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_Strict):
    area: str
    area_name: str = ""
    detail: str = ""


class SharedContact(_Strict):
    """The reporter's contact details as a partner receives them (form_service/sharing.py
    decides when)."""

    name: str = ""
    phone: str = ""
    email: str = ""


class ReportFields(_Strict):
    description: str | None = None
    location: Location | None = None
    setting: str | None = None
    concern: str | None = None
    when: str | None = None
    people: str | None = None
    danger_now: bool | None = None
    contact: SharedContact | None = None

    def names(self) -> list[str]:
        """The fields present, in the report's order (what the audit trail records)."""
        return [name for name in _FIELD_NAMES if getattr(self, name) is not None]


_FIELD_NAMES = tuple(field.value for field in ReportField)


class SharedFile(_Strict):
    """A file of the report, as its partner copy names it: never the tipster's file name."""

    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    kind: str = Field(pattern=r"^(image|video)$")
    number: int = Field(ge=1)
    """Its number among the report's files of its kind: "photo 1", "video 1"."""
    media_type: str = Field(pattern=r"^(image/(jpeg|png|gif)|video/mp4)$")
    size: int = Field(ge=0)


class DeliveryPayload(_Strict):
    delivery_id: str
    report_ref: ReportRef
    partner_id: Ident
    agreement_id: str = Field(min_length=1, max_length=200)
    agreement_title: str = Field(min_length=1, max_length=500)
    rule_id: Ident | None = None
    """The routing rule that chose the partner, only for a partner whose agreement shares
    the concern (a rule's id names what it matches, such as "self-harm")."""
    language: Language
    urgent: bool | None = None
    """Whether someone may be in danger now, only for a partner whose agreement shares
    ``danger_now``; absent otherwise, so no message, header or priority can tell."""
    received_at: datetime
    fields: ReportFields
    flood_suspected: bool | None = None
    """True when stored while submissions ran above the surge rate; absent otherwise."""
    attachments: list[SharedFile] | None = None
    """The report's files, for a partner whose agreement shares them (and the intake team)."""
    files_withheld: int | None = None
    """How many files the report has, for a partner whose agreement shares the description
    but not the files; absent otherwise."""

    @model_validator(mode="before")
    @classmethod
    def _only_what_the_fields_allow(cls, data: Any) -> Any:
        # Urgency and the rule only beside the fields that tell them. Payloads stored by
        # earlier versions carried both for every partner: a row still waiting in the outbox
        # after an upgrade loses them here rather than reveal them.
        if not isinstance(data, dict):
            return data
        fields = data.get("fields")
        shared = fields.names() if isinstance(fields, ReportFields) else (fields or {})
        hidden = {"urgent": "danger_now", "rule_id": "concern"}
        return {
            key: value
            for key, value in data.items()
            if key not in hidden or _given(shared, hidden[key])
        }

    @field_validator("delivery_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        # Canonical form, so the Message-ID and webhook-id are the same on every retry.
        return str(UUID(value))

    @field_validator("received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_serializer("received_at", when_used="json")
    def _minute(self, value: datetime) -> str:
        return value.strftime("%Y-%m-%dT%H:%MZ")

    def to_json(self) -> str:
        """The payload as the outbox keeps it and partners receive it: only keys that carry
        a value, the time to the minute."""
        return self.model_dump_json(exclude_none=True)

    def to_dict(self) -> dict[str, Any]:
        """What to_json writes, as a dict."""
        return self.model_dump(mode="json", exclude_none=True)


def _given(shared: Any, name: str) -> bool:
    if isinstance(shared, dict):
        return shared.get(name) is not None
    return name in shared


def parse_payload(text: str | bytes) -> DeliveryPayload:
    try:
        return DeliveryPayload.model_validate_json(text)
    except ValidationError as error:
        keys = sorted({".".join(str(p) for p in item["loc"]) or "(top)" for item in error.errors()})
        raise PayloadError(f"payload does not follow the contract at: {', '.join(keys)}") from None
