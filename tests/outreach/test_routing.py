"""Routing is a pure function of the report's facts and the profile, table-tested."""

from __future__ import annotations

from typing import Any

import pytest

from outreach.profile import Concern, Setting
from outreach.routing import INTAKE_RULE, RoutingFacts, route_report, routing_gaps

S, C = Setting, Concern

# (area, setting, concern, danger now) -> {partner: rule}; the intake team gets everything.
TABLE = [
    ("north", S.school, C.not_sure, False, {"harbor-schools": "schools-north-south"}),
    ("south", S.school, C.not_sure, False, {"harbor-schools": "schools-north-south"}),
    ("unknown", S.school, C.not_sure, False, {"harbor-schools": "schools-north-south"}),
    ("east", S.school, C.not_sure, False, {"eastwood-schools": "schools-east"}),
    ("east", S.college, C.not_sure, False, {"bayside-college": "college"}),
    ("north", S.home, C.self_harm, False, {"harbor-behavioral-health": "self-harm"}),
    ("north", S.online, C.harm_others, False, {"sheriff-tau": "harm-to-others"}),
    (
        "south",
        S.online,
        C.both,
        False,
        {"harbor-behavioral-health": "self-harm", "sheriff-tau": "harm-to-others"},
    ),
    ("south", S.home, C.not_sure, True, {"sheriff-tau": "danger-now"}),
    ("east", S.workplace, C.not_sure, False, {"business-network": "workplaces-and-venues"}),
    ("north", S.public_place, C.not_sure, False, {"business-network": "workplaces-and-venues"}),
    ("north", S.critical_infrastructure, C.not_sure, False, {"harbor-utilities": "infrastructure"}),
    ("unknown", S.other, C.not_sure, False, {}),
    (
        "east",
        S.school,
        C.harm_others,
        True,
        # The sheriff's unit is chosen by two rules; danger-now delivers at once, so it wins.
        {"eastwood-schools": "schools-east", "sheriff-tau": "danger-now"},
    ),
]


@pytest.mark.parametrize(("area", "setting", "concern", "danger", "expected"), TABLE)
def test_demo_routing_table(
    reviewed_demo: Any,
    area: str,
    setting: Setting,
    concern: Concern,
    danger: bool,
    expected: dict[str, str],
) -> None:
    recipients = route_report(RoutingFacts(area, setting, concern, danger), reviewed_demo.profile)
    assert recipients[0].partner_id == "intake-team" and recipients[0].rule_id == INTAKE_RULE
    assert {r.partner_id: r.rule_id for r in recipients[1:]} == expected


def test_table_covers_every_rule_of_the_demo(demo: Any) -> None:
    used = {rule for *_, expected in TABLE for rule in expected.values()}
    assert used == {rule.id for rule in demo.profile.routing.rules}


def test_demo_has_no_routing_gaps(demo: Any) -> None:
    assert routing_gaps(demo.profile.routing, demo.profile.area_ids()) == []


def test_a_partner_is_listed_once_under_its_first_rule(demo: Any) -> None:
    recipients = route_report(RoutingFacts("north", S.online, C.harm_others, True), demo.profile)
    ids = [r.partner_id for r in recipients]
    assert ids.count("sheriff-tau") == 1
    assert {r.partner_id: r.rule_id for r in recipients}["sheriff-tau"] == "harm-to-others"


@pytest.mark.parametrize(
    ("danger", "held"),
    [(False, {"eastwood-schools", "sheriff-tau"}), (True, {"eastwood-schools"})],
)
def test_review_rules_hold_a_partner_unless_another_rule_sends_at_once(
    reviewed_demo: Any, danger: bool, held: set[str]
) -> None:
    facts = RoutingFacts("east", S.school, C.harm_others, danger)
    recipients = route_report(facts, reviewed_demo.profile)
    assert {r.partner_id for r in recipients if r.review} == held
    assert not recipients[0].review  # the intake team always at once
