"""Hostile and broken input: a clear localized answer, the right status, nothing typed lost.

One test per item of the issue's "Bad input" list; none may answer 500.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import anyio
import pytest
from markupsafe import escape
from starlette.requests import Request
from starlette.testclient import TestClient

from form_service.form_input import FORM_TYPE, BodyTooLarge, read_body
from form_service.report_form import MAX_DESCRIPTION, MAX_TEXT, TEXT_FIELDS
from form_service.settings import Settings
from form_service.tokens import FormTokens

from .conftest import code_of, rows, start_client, token_of
from .samples import VALID_FORM

FORM = {"content-type": "application/x-www-form-urlencoded"}


def fresh(client: TestClient, path: str = "/report") -> dict[str, str]:
    return {"token": token_of(client.get(path).text), **VALID_FORM}


def shown(page: str, text: str) -> bool:
    """The text appears in the page exactly, as escaped HTML."""
    return str(escape(text)) in page


def stored(settings: Settings) -> int:
    return rows(settings, "SELECT count(*) FROM reports")[0][0]


@pytest.mark.parametrize("description", ["", "   \n\t  "])
def test_empty_or_blank_description(
    client: TestClient, settings: Settings, description: str
) -> None:
    data = {**fresh(client), "description": description, "people": "Kept people text"}
    page = client.post("/report", data=data)
    assert page.status_code == 422
    assert "Tell us what happened or what you noticed." in page.text
    assert 'href="#f-description"' in page.text
    assert 'aria-describedby="h-description e-description"' in page.text
    assert shown(page.text, "Kept people text") and shown(page.text, VALID_FORM["area_detail"])
    assert 'value="north" checked' in page.text
    assert stored(settings) == 0


def test_too_long_but_under_the_body_limit_is_kept_whole(client: TestClient) -> None:
    text = "ñ and more " * 1_200
    page = client.post("/report", data={**fresh(client), "description": text})
    assert page.status_code == 422
    assert text in page.text
    assert "13,200 characters long" in page.text


def test_200_kb_in_one_field_says_what_to_shorten_and_keeps_the_text(
    client: TestClient, settings: Settings
) -> None:
    text = "a" * 199_999 + "z"
    page = client.post("/es/report", data={**fresh(client, "/es/report"), "description": text})
    assert page.status_code == 422
    assert "Este texto tiene 200.000 caracteres. Acórtelo a 10.000 o menos" in page.text
    assert text + "</textarea>" in page.text
    assert stored(settings) == 0


def test_a_body_larger_than_any_form_a_person_types_is_refused_unread(
    client: TestClient, settings: Settings
) -> None:
    huge = "a" * (settings.max_body_bytes + 1)
    page = client.post("/es/report", data={**fresh(client, "/es/report"), "description": huge})
    assert page.status_code == 413
    assert "Su reporte es demasiado largo para enviarlo" in page.text
    assert stored(settings) == 0


@pytest.mark.parametrize("character", ["界", "ع", "😟"], ids=["cjk", "arabic", "emoji"])
def test_every_field_at_its_character_limit_in_any_script_is_accepted(
    client: TestClient, settings: Settings, character: str
) -> None:
    full = {
        name: character * (MAX_DESCRIPTION if name == "description" else MAX_TEXT)
        for name in TEXT_FIELDS
        if name != "contact_email"
    }
    form = {**fresh(client), **full, "consent": "yes"}
    assert len(urlencode(form).encode()) > 64 * 1024  # more than the old limit in bytes
    page = client.post("/report", data=form)
    assert page.status_code == 200, page.text[:2000]
    assert stored(settings) == 1
    # One more character in the description: refused by characters, the text kept.
    form = {**fresh(client), **full, "description": character * (MAX_DESCRIPTION + 1)}
    page = client.post("/report", data=form)
    assert page.status_code == 422 and "10,001 characters long" in page.text
    assert character * (MAX_DESCRIPTION + 1) + "</textarea>" in page.text


class Counted:
    def __init__(self, chunks: int, size: int = 64 * 1024) -> None:
        self.chunks, self.size, self.sent = chunks, size, 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.sent += 1
            yield b"a" * self.size


def test_10_mb_body_is_refused_before_it_is_read() -> None:
    """Sent in chunks without a length: reading stops at the first chunk over the limit."""
    chunks = Counted(160)  # 10 MiB
    stream = iter(chunks)

    async def receive() -> dict[str, object]:
        chunk = next(stream, b"")
        return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}

    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", FORM_TYPE.encode())]}
    with pytest.raises(BodyTooLarge):
        anyio.run(read_body, Request(scope, receive), 64 * 1024)
    assert chunks.sent == 2


def test_10_mb_announced_is_refused_without_reading(client: TestClient) -> None:
    body = Counted(160)
    headers = {**FORM, "content-length": str(160 * 64 * 1024)}
    answer = client.post("/report", content=body, headers=headers)
    assert answer.status_code == 413
    assert body.sent <= 1


def test_invalid_utf8(client: TestClient, settings: Settings) -> None:
    data = fresh(client)
    data.pop("description")
    body = urlencode(data).encode() + b"&description=caf%E9+%FF+and+more"
    page = client.post("/report", content=body, headers=FORM)
    assert page.status_code == 422
    assert "caf\ufffd \ufffd and more" in page.text
    assert "could not be read" in page.text
    assert shown(page.text, VALID_FORM["people"])
    assert stored(settings) == 0


def test_nul_bytes(client: TestClient, settings: Settings) -> None:
    page = client.post("/report", data={**fresh(client), "description": "before\x00after"})
    assert page.status_code == 422
    assert "before\ufffdafter" in page.text and "\x00" not in page.text
    assert "could not be read" in page.text
    # The tipster can send the text as it is now shown.
    again = client.post("/report", data={**fresh(client), "description": "before\ufffdafter"})
    assert again.status_code == 200 and stored(settings) == 1


def test_cr_lf_in_every_field(client: TestClient, settings: Settings) -> None:
    data = {name: f"{value}\r\nX-Injected: yes\r\n" for name, value in fresh(client).items()}
    refused = client.post("/report", data=data)
    assert refused.status_code == 400  # even the token was broken
    assert "x-injected" not in refused.headers
    text_fields = ("description", "area_detail", "when", "people")
    data = {
        **fresh(client),
        **{f: f"line one\r\nX-Injected: yes\r\n{f}" for f in text_fields},
        "contact_name": "Ana\r\nBcc: all@example.org",
        "contact_phone": "555\r\n0199",
        "consent": "yes",
    }
    answer = client.post("/report", data=data)
    assert answer.status_code == 200 and "x-injected" not in answer.headers
    import json

    for (payload,) in rows(settings, "SELECT payload FROM outbox"):
        fields = json.loads(payload)["fields"]
        for one_line in (
            fields.get("location", {}).get("detail", ""),
            fields.get("when", ""),
            *fields.get("contact", {}).values(),
        ):
            assert "\r" not in one_line and "\n" not in one_line
        assert "\r" not in fields["description"]


def test_choices_with_cr_lf_are_refused(client: TestClient) -> None:
    page = client.post("/report", data={**fresh(client), "area": "north\r\n"})
    assert page.status_code == 422 and 'href="#f-area-1"' in page.text


PAYLOADS = [
    '"><script>alert(1)</script>',
    "<img src=x onerror=alert(1)>",
    "</textarea><b>x</b>",
    "{{ 7*7 }}",
    "' onmouseover='alert(1)",
]


def only_the_logo(page: str) -> bool:
    """The page's one picture is the agency's logo: no image came from what was typed."""
    return page.count("<img") == page.count('<img class="agency-logo"') == 1


@pytest.mark.parametrize("payload", PAYLOADS)
def test_html_and_script_are_escaped_everywhere(client: TestClient, payload: str) -> None:
    fields = (
        "description",
        "area_detail",
        "when",
        "people",
        "contact_name",
        "contact_phone",
        "contact_email",
    )
    data = {**fresh(client), **{f: payload for f in fields}, "setting": payload}
    page = client.post("/report", data=data)
    assert page.status_code == 422
    assert "<script" not in page.text and "<b>" not in page.text and only_the_logo(page.text)
    assert page.text.count(str(escape(payload))) >= len(fields) - 2
    status = client.post("/status", data={"code": payload})
    assert status.status_code == 404
    assert "<script" not in status.text and only_the_logo(status.text)
    assert str(escape(payload)) in status.text


@pytest.mark.parametrize(
    ("field", "value"),
    [("area", "atlantis"), ("setting", "spaceship"), ("concern", "aliens"), ("danger_now", "2")],
)
def test_unknown_choice_values(
    client: TestClient, settings: Settings, field: str, value: str
) -> None:
    page = client.post("/report", data={**fresh(client), field: value})
    assert page.status_code == 422
    assert f'href="#f-{field}-1"' in page.text
    assert shown(page.text, VALID_FORM["description"])
    assert stored(settings) == 0


def test_repeated_fields(client: TestClient, settings: Settings) -> None:
    data = fresh(client)
    body = urlencode(data) + "&area=south&description=" + "second+copy"
    page = client.post("/report", content=body.encode(), headers=FORM)
    assert page.status_code == 400
    assert "Some of the form could not be read" in page.text
    assert shown(page.text, VALID_FORM["description"]) and 'value="north" checked' in page.text
    assert stored(settings) == 0


def test_5000_fields(client: TestClient, settings: Settings) -> None:
    body = urlencode(fresh(client)) + "".join(f"&f{n}=1" for n in range(5000))
    page = client.post("/report", content=body.encode(), headers=FORM)
    assert page.status_code == 400
    assert shown(page.text, VALID_FORM["description"])
    assert stored(settings) == 0


def test_json_instead_of_a_form(client: TestClient, settings: Settings) -> None:
    answer = client.post("/es/report", json=fresh(client))
    assert answer.status_code == 415
    assert "Envíe el reporte con el formulario de este sitio" in answer.text
    assert stored(settings) == 0


def test_multipart_file_under_another_name_is_not_kept(
    client: TestClient, settings: Settings
) -> None:
    # The form is sent as multipart (it can carry files); only its own file field is read.
    answer = client.post("/report", data=fresh(client), files={"f": ("a.txt", b"x")})
    assert answer.status_code == 200
    assert stored(settings) == 1
    assert rows(settings, "SELECT count(*) FROM attachments") == [(0,)]


def test_other_charset_is_refused(client: TestClient) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded; charset=iso-8859-1"}
    assert client.post("/report", content=b"a=b", headers=headers).status_code == 415


def test_forged_token(client: TestClient, settings: Settings) -> None:
    data = fresh(client)
    forged = FormTokens(("attacker-key",), 0, 3600).issue()
    page = client.post("/report", data={**data, "token": forged})
    assert page.status_code == 400
    assert "We could not confirm that this form came from this site" in page.text
    assert shown(page.text, VALID_FORM["description"])
    assert token_of(page.text) != forged
    assert stored(settings) == 0


def test_expired_token(client: TestClient, settings: Settings) -> None:
    past = time.time() - settings.max_token_age_seconds - 10
    old = FormTokens(settings.secret_keys, 0, settings.max_token_age_seconds, clock=lambda: past)
    page = client.post("/report", data={**fresh(client), "token": old.issue()})
    assert page.status_code == 400
    assert "This form was open for a long time" in page.text
    assert shown(page.text, VALID_FORM["description"])
    # The fresh token on the page works.
    assert (
        client.post("/report", data={**VALID_FORM, "token": token_of(page.text)}).status_code == 200
    )


def test_missing_token(client: TestClient, settings: Settings) -> None:
    data = fresh(client)
    data.pop("token")
    page = client.post("/report", data=data)
    assert page.status_code == 400
    assert shown(page.text, VALID_FORM["description"])
    assert stored(settings) == 0


def test_reused_token(client: TestClient, settings: Settings) -> None:
    data = fresh(client)
    codes = {code_of(client.post("/report", data=data).text) for _ in range(3)}
    assert len(codes) == 1 and stored(settings) == 1


def test_get_with_a_body(client: TestClient, settings: Settings) -> None:
    answer = client.request("GET", "/report", content=urlencode(VALID_FORM).encode(), headers=FORM)
    assert answer.status_code == 200 and 'name="token"' in answer.text
    assert client.request("GET", "/status", content=b"code=1234").status_code == 200
    assert stored(settings) == 0


def test_unknown_language_prefix(client: TestClient) -> None:
    answer = client.post("/xx/report", data=VALID_FORM, headers={"accept-language": "es"})
    assert answer.status_code == 404 and "No se encontró la página" in answer.text


def test_limits_come_from_settings(make_settings: Callable[..., Settings]) -> None:
    with start_client(make_settings(max_body_bytes=1000, max_fields=5)) as client:
        assert (
            client.post("/report", data={**fresh(client), "people": "x" * 1000}).status_code == 413
        )
        assert client.post("/report", data=fresh(client)).status_code == 400
