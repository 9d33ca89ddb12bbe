"""A validated report, the shape the contract between form, routing, sharing and storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from outreach.profile import Concern, Setting
from outreach.routing import RoutingFacts


@dataclass(frozen=True)
class ReporterContact:
    """How the tipster may be reached, as they typed it; every part optional."""

    name: str = ""
    phone: str = ""
    email: str = ""

    def given(self) -> bool:
        return bool(self.name or self.phone or self.email)


@dataclass(frozen=True)
class Report:
    description: str
    area: str
    area_detail: str
    setting: Setting
    concern: Concern
    when: str
    people: str
    danger_now: bool
    contact: ReporterContact
    consent_to_share_contact: bool
    language: str

    @classmethod
    def from_content(cls, content: dict[str, Any]) -> Report:
        """The report again, from its sealed copy (what ``content`` wrote)."""
        contact = content["contact"]
        return cls(
            description=content["description"],
            area=content["location"]["area"],
            area_detail=content["location"]["detail"],
            setting=Setting(content["setting"]),
            concern=Concern(content["concern"]),
            when=content["when"],
            people=content["people"],
            danger_now=bool(content["danger_now"]),
            contact=ReporterContact(contact["name"], contact["phone"], contact["email"]),
            consent_to_share_contact=bool(content["consent_to_share_contact"]),
            language=content["language"],
        )

    def facts(self) -> RoutingFacts:
        return RoutingFacts(self.area, self.setting, self.concern, self.danger_now)

    def content(self) -> dict[str, Any]:
        """Everything the tipster gave, for the encrypted archive copy."""
        return {
            "description": self.description,
            "location": {"area": self.area, "detail": self.area_detail},
            "setting": self.setting.value,
            "concern": self.concern.value,
            "when": self.when,
            "people": self.people,
            "danger_now": self.danger_now,
            "contact": {
                "name": self.contact.name,
                "phone": self.contact.phone,
                "email": self.contact.email,
            },
            "consent_to_share_contact": self.consent_to_share_contact,
            "language": self.language,
        }
