"""Reading the urlencoded body: nothing silently changed, repeated and unknown fields seen."""

from __future__ import annotations

from form_service.form_input import parse_form

KNOWN = ("description", "area", "token")


def test_plain_form() -> None:
    form = parse_form(b"description=caf%C3%A9+con+leche&area=north&other=x", KNOWN)
    assert form.values == {"description": "café con leche", "area": "north"}
    assert form.unreadable == frozenset() and form.repeated == frozenset()
    assert form.field_count == 3


def test_invalid_utf8_is_marked_and_shown_as_replacement() -> None:
    form = parse_form(b"description=caf%E9+ok&area=%FF%FE", KNOWN)
    assert form.values == {"description": "caf\ufffd ok", "area": "\ufffd\ufffd"}
    assert form.unreadable == {"description", "area"}


def test_raw_bytes_outside_percent_escapes() -> None:
    form = parse_form("description=niño".encode() + b"\xff", KNOWN)
    assert form.values["description"] == "niño\ufffd"
    assert form.unreadable == {"description"}


def test_nul_and_control_characters_are_replaced_and_marked() -> None:
    form = parse_form(b"description=before%00after%07bell%0D%0Anext%09tab", KNOWN)
    assert form.values["description"] == "before\ufffdafter\ufffdbell\r\nnext\ttab"
    assert form.unreadable == {"description"}


def test_repeated_fields_keep_the_first_value() -> None:
    form = parse_form(b"area=north&area=south&description=a", KNOWN)
    assert form.values["area"] == "north"
    assert form.repeated == {"area"}


def test_every_field_is_counted() -> None:
    body = b"&".join(b"f%d=1" % n for n in range(5000)) + b"&description=kept"
    form = parse_form(body, KNOWN)
    assert form.field_count == 5001
    assert form.values == {"description": "kept"}


def test_empty_body() -> None:
    form = parse_form(b"", KNOWN)
    assert form.values == {} and form.field_count == 0
