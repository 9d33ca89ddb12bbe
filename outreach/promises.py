"""What the pages and the report form promise, worked out from the profile.

Who receives which reports, when reports are read, who could see contact details and
which copies outlive the retention period all depend on what an agency configured. The
site and the form both say them in the words below, so a change of profile changes every
promise at once and no page can keep an old one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from babel.lists import format_list

from outreach.i18n import translations
from outreach.profile import (
    UNKNOWN_AREA,
    Concern,
    Partner,
    PartnerKind,
    Profile,
    RoutingRule,
    Setting,
    localize,
)


@dataclass(frozen=True)
class RouteRow:
    """One line of "who receives which reports": the reports, their recipients, and when."""

    reports: str
    partners: list[str]
    at_once: bool


def join_names(names: list[str], lang: str, style: str = "standard") -> str:
    """ "A, B and C" in the reader's language; with style "or", "A, B or C"."""
    if not names:
        return ""
    return format_list(names, style=style, locale=lang.replace("-", "_"))  # type: ignore[arg-type]


def reads_always(profile: Profile) -> bool:
    return profile.agency.reads_reports == "always"


def reading_hours(profile: Profile, lang: str) -> str:
    """One sentence: when the team reads reports, from ``agency.reads_reports``."""
    _ = translations(lang, profile.interface_locale).gettext
    if reads_always(profile):
        return _("Our team reads reports at any hour, every day.")
    hours = localize(profile.agency.hours, lang, profile.default_language).rstrip(".")
    return _(
        "Our team reads reports during office hours: %(hours)s. "
        "At other times, no one may read your report until the next work day."
    ) % {"hours": hours}


def partner_label(partner: Partner, lang: str, profile: Profile) -> str:
    """The partner's name, with "law enforcement" said outright for police partners."""
    _ = translations(lang, profile.interface_locale).gettext
    name = localize(partner.name, lang, profile.default_language)
    if partner.kind is PartnerKind.law_enforcement:
        return _("%(name)s (law enforcement)") % {"name": name}
    return name


def _setting_label(setting: Setting, _: Callable[[str], str]) -> str:
    return {
        Setting.school: _("a school"),
        Setting.college: _("a college or university"),
        Setting.workplace: _("a workplace"),
        Setting.public_place: _("a public place or event"),
        Setting.critical_infrastructure: _("water, power or transit systems"),
        Setting.online: _("online"),
        Setting.home: _("a home or neighborhood"),
        Setting.other: _("somewhere else"),
    }[setting]


def _concern_label(concern: Concern, _: Callable[[str], str]) -> str:
    return {
        Concern.harm_others: _("someone may hurt other people"),
        Concern.self_harm: _("someone may hurt themselves"),
        Concern.both: _("someone may hurt themselves and others"),
        Concern.not_sure: _("the person who reports is not sure what may happen"),
    }[concern]


def _area_label(area_id: str, profile: Profile, lang: str) -> str:
    _ = translations(lang, profile.interface_locale).gettext
    if area_id == UNKNOWN_AREA:
        return _("a place not known")
    for area in profile.areas:
        if area.id == area_id:
            return localize(area.name, lang, profile.default_language)
    return area_id


def _rule_reports(rule: RoutingRule, profile: Profile, lang: str) -> str:
    """The reports a rule matches, in words: "Where: a school. Area: North Harbor."."""
    _ = translations(lang, profile.interface_locale).gettext
    match = rule.match
    parts = []
    if match.danger_now:
        parts.append(_("Someone is in danger now."))
    elif match.danger_now is False:
        parts.append(_("No one is in danger now."))
    if match.concerns:
        labels = [_concern_label(c, _) for c in match.concerns]
        parts.append(_("Worry: %(what)s.") % {"what": join_names(labels, lang, "or")})
    if match.settings:
        labels = [_setting_label(s, _) for s in match.settings]
        parts.append(_("Where: %(where)s.") % {"where": join_names(labels, lang, "or")})
    if match.areas:
        labels = [_area_label(a, profile, lang) for a in match.areas]
        parts.append(_("Area: %(areas)s.") % {"areas": join_names(labels, lang, "or")})
    return " ".join(parts) or _("Every report.")


def route_rows(profile: Profile, lang: str) -> list[RouteRow]:
    """The intake team's row, then one row per routing rule, in the profile's order."""
    _ = translations(lang, profile.interface_locale).gettext
    rows = []
    if profile.routing.intake:
        intake = profile.partner(profile.routing.intake)
        rows.append(RouteRow(_("Every report."), [partner_label(intake, lang, profile)], True))
    for rule in profile.routing.rules:
        names = [partner_label(profile.partner(p), lang, profile) for p in rule.send_to]
        rows.append(RouteRow(_rule_reports(rule, profile, lang), names, not rule.review))
    return rows


def routing_summary(profile: Profile, lang: str) -> str:
    """When partners get a report: at once, only after review, or some of each."""
    _ = translations(lang, profile.interface_locale).gettext
    reviews = {rule.review for rule in profile.routing.rules}
    if not reviews:
        return _("Only our intake team gets your report.")
    if reviews == {True}:
        return _("Partners get a report only after our intake team has read it and sent it on.")
    if reviews == {False}:
        return _(
            "Partners get a report at once, as soon as it is sent. "
            "That is before anyone on our team has read it."
        )
    return _(
        "Some partners get a report at once, as soon as it is sent. "
        "That is before anyone on our team has read it. "
        "Others get it only after our intake team has read it and sent it on."
    )


def _cell(text: str) -> str:
    """Profile text kept literal inside a Markdown table cell."""
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return text


def routing_table(profile: Profile, lang: str) -> str:
    """A Markdown table of who receives which reports, and whether before anyone reads them."""
    _ = translations(lang, profile.interface_locale).gettext
    head = [_("Which reports"), _("Who gets them"), _("When they get them")]
    lines = ["| " + " | ".join(head) + " |", "| --- | --- | --- |"]
    for row in route_rows(profile, lang):
        when = (
            _("At once, as soon as the report is sent.")
            if row.at_once
            else _("Only after our intake team has read the report and sent it on.")
        )
        who = join_names(row.partners, lang)
        lines.append(f"| {_cell(row.reports)} | {_cell(who)}. | {when} |")
    return "\n".join(lines)


def contact_partners(profile: Profile, lang: str) -> list[str]:
    """Partners that could see the reporter's contact details if the reporter consents."""
    return [
        partner_label(p, lang, profile)
        for p in profile.partners
        if "contact" in p.agreement.fields
        and p.agreement.contact_requires_consent
        and any(p.id in rule.send_to for rule in profile.routing.rules)
    ]


def law_enforcement_partners(profile: Profile, lang: str) -> list[str]:
    """Names of the law-enforcement partners some rule sends reports to."""
    default = profile.default_language
    return [
        localize(p.name, lang, default)
        for p in profile.partners
        if p.kind is PartnerKind.law_enforcement
        and any(p.id in rule.send_to for rule in profile.routing.rules)
    ]


def kept_copies(profile: Profile, lang: str) -> list[str]:
    """The copies of a report that ``outreach purge`` does not delete, one sentence each."""
    _ = translations(lang, profile.interface_locale).gettext
    channels = {p.delivery.channel for p in profile.partners}
    copies = []
    if "email" in channels:
        copies.append(_("Copies sent by e-mail stay in the mailboxes of the people who got them."))
    if "webhook" in channels:
        copies.append(_("Copies sent to a partner's own computer system stay there."))
    if "maildir" in channels:
        copies.append(
            _(
                "Copies left in the mail folders of our team and partners stay until they "
                "delete them."
            )
        )
    copies.append(_("Notes and files that partners made about a case follow their own rules."))
    backup_days = profile.retention.backup_days
    if backup_days is None:
        copies.append(_("Backups of our database may keep a copy for a while longer."))
    else:
        copies.append(
            _("Backups of our database keep a copy for up to %(days)s more days.")
            % {"days": backup_days}
        )
    return copies
