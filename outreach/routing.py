"""Server-side routing: which partners must receive a report, and under which rule.

A pure function of the report's facts and the profile, so it can be table-tested and so
the browser never has a say in who receives a report.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from outreach.profile import UNKNOWN_AREA, Concern, Profile, Routing, RoutingRule, Setting

INTAKE_RULE = "intake"

# A report whose concern is "both" is also a report of each single concern.
_CONCERNS_COVERED: dict[Concern, frozenset[Concern]] = {
    Concern.harm_others: frozenset({Concern.harm_others}),
    Concern.self_harm: frozenset({Concern.self_harm}),
    Concern.both: frozenset({Concern.both, Concern.harm_others, Concern.self_harm}),
    Concern.not_sure: frozenset({Concern.not_sure}),
}


@dataclass(frozen=True)
class RoutingFacts:
    """The parts of a report that routing may look at."""

    area: str
    setting: Setting
    concern: Concern
    danger_now: bool


@dataclass(frozen=True)
class Recipient:
    partner_id: str
    rule_id: str
    review: bool = False
    """Held until an intake user releases the report: every rule that chose this partner
    asks for review. One rule that delivers at once is enough to deliver at once."""


def _matches(rule: RoutingRule, facts: RoutingFacts) -> bool:
    match = rule.match
    if match.areas and facts.area not in match.areas:
        return False
    if match.settings and facts.setting not in match.settings:
        return False
    if match.concerns and not _CONCERNS_COVERED[facts.concern] & set(match.concerns):
        return False
    return match.danger_now is None or match.danger_now == facts.danger_now


def route_report(facts: RoutingFacts, profile: Profile) -> list[Recipient]:
    """Every partner that must receive the report, each with the first rule that chose it."""
    return route_by(facts, profile.routing)


def route_by(facts: RoutingFacts, routing: Routing) -> list[Recipient]:
    """``route_report`` from the routing section alone (a profile being checked may have
    problems elsewhere that keep it from loading)."""
    recipients: dict[str, Recipient] = {}
    if routing.intake:
        recipients[routing.intake] = Recipient(routing.intake, INTAKE_RULE)
    for rule in routing.rules:
        if _matches(rule, facts):
            for partner_id in rule.send_to:
                chosen = recipients.get(partner_id)
                if chosen is None or (chosen.review and not rule.review):
                    recipients[partner_id] = Recipient(partner_id, rule.id, rule.review)
    return list(recipients.values())


def all_facts(profile: Profile) -> Iterator[RoutingFacts]:
    """Every combination of facts a report can carry under this profile."""
    return facts_for_areas(profile.area_ids())


def facts_for_areas(area_ids: list[str]) -> Iterator[RoutingFacts]:
    """Every combination of facts a report can carry, given the profile's area ids."""
    areas = [*area_ids, UNKNOWN_AREA]
    for area, setting, concern, danger in itertools.product(areas, Setting, Concern, (False, True)):
        yield RoutingFacts(area, setting, concern, danger)


def routing_gaps(routing: Routing, area_ids: list[str]) -> list[RoutingFacts]:
    """Combinations of facts that would reach nobody."""
    return [facts for facts in facts_for_areas(area_ids) if not route_by(facts, routing)]


def unserved_areas(routing: Routing, area_ids: list[str]) -> list[str]:
    """Areas whose reports reach the intake team and no partner beside it, whatever they say."""
    if routing.intake is None:
        return []
    served = {
        facts.area
        for facts in facts_for_areas(area_ids)
        if any(r.rule_id != INTAKE_RULE for r in route_by(facts, routing))
    }
    return [area for area in area_ids if area not in served]
