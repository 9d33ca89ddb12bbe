"""Hostile input against every form field and the status look-up.

Property tests (hypothesis) and fixed lists of classic attacks: whatever is sent, the
service never answers 500, never echoes markup unescaped, never lets a value into a
response header, and never stores a report for a submission it refused. The last
test is the endpoint fuzzer: every address the guide documents, with any method,
content type, body and headers (hypothesis in place of schemathesis, which needs an
OpenAPI schema that a form service does not have).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from form_service.ratelimit import LookupLimiter
from form_service.report_form import FORM_FIELDS
from form_service.settings import Settings

from .conftest import start_client, token_of
from .samples import VALID_FORM

FIELDS = (*FORM_FIELDS, "website")
CHOICE_VALUES = {
    "area": "north",
    "setting": "school",
    "concern": "harm_others",
    "danger_now": "no",
    "consent": "yes",
}

# OWASP XSS filter-evasion classics, SQL metacharacters and Unicode edge cases.
XSS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "<svg onload=alert(1)>",
    "<svg/onload=alert(1)>",
    '"><script>alert(1)</script>',
    "'><script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<body onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "\\x3cscript\\x3ealert(1)\\x3c/script\\x3e",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<div style="background:url(javascript:alert(1))">',
    "</textarea><script>alert(1)</script>",
    '" autofocus onfocus="alert(1)',
    "{{7*7}}{% raw %}${7*7}",
]
SQL = [
    "' OR 1=1 --",
    '" OR "1"="1',
    "'; DROP TABLE reports; --",
    "1; DELETE FROM outbox",
    "' UNION SELECT receipt_hash FROM reports --",
    "\\'; --",
    "%' AND 1=0 --",
]
UNICODE = [
    "\u202eevil\u202c.txt",
    "a\u200db\u200cc\u200bd\ufeff",
    "e\u0301\u0301\u0301\u0301\u0301 Z\u0351\u0352\u0353\u0354",
    "\U0001f600\U0001f9d1\u200d\U0001f680\U0001d54f",
    "\x00\x01\x7f\u0085\u2028\u2029",
    "line\r\nX-Injected: yes",
    "\r\n\r\n<html>",
]
CLASSICS = XSS + SQL + UNICODE
# Raw bytes a browser never sends: lone surrogates (CESU-8), overlongs, stray continuation.
BAD_BYTES = [b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xc0\xbc", b"\x80", b"\xff\xfe", b"a\xed\xa0"]

hostile_text = st.one_of(
    st.sampled_from(CLASSICS),
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from("<>\"'&;=%/\\\r\n\t\x00"), max_size=40),
    st.lists(st.sampled_from(CLASSICS), min_size=2, max_size=4).map("".join),
)
FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def hostile(make_settings: Callable[..., Settings]) -> Iterator[tuple[TestClient, Settings]]:
    settings_ = make_settings(
        report_client_burst=1_000_000,
        report_global_per_minute=1_000_000,
        status_client_limit=1_000_000,
    )
    with start_client(settings_, client=("203.0.113.9", 5000)) as client:
        yield client, settings_


def stored(settings_: Settings) -> int:
    with closing(sqlite3.connect(settings_.data_dir / "reports.sqlite3")) as conn:
        count: int = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        return count


def check_response(response: Any, sent: str, allowed: frozenset[bytes] | None = None) -> None:
    """No 5xx, no header but *allowed* (the service's own by default), none with a line
    break, and *sent* not echoed unescaped."""
    assert response.status_code < 500, response.status_code
    for name, value in response.headers.raw:
        assert b"\r" not in name + value and b"\n" not in name + value
        assert name.lower() in (allowed or ALLOWED_HEADERS), name
    if ("<" in sent or '"' in sent) and len(sent) > 1:
        assert sent not in response.text, "an unescaped echo"


ALLOWED_HEADERS = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-security-policy",
        b"referrer-policy",
        b"x-content-type-options",
        b"cross-origin-opener-policy",
        b"cross-origin-resource-policy",
        b"permissions-policy",
        b"cache-control",
        b"strict-transport-security",
        b"x-frame-options",
        b"content-language",
        b"vary",
        b"retry-after",
    }
)


def send_report(client: TestClient, settings_: Settings, field: str, value: str) -> Any:
    before = stored(settings_)
    token = token_of(client.get("/report").text)
    data = {"token": token, **VALID_FORM, field: value}
    response = client.post("/report", data=data)
    check_response(response, value)
    after = stored(settings_)
    if response.status_code != 200:
        assert after == before, "a refused submission was stored"
    else:
        assert after <= before + 1
    if field in CHOICE_VALUES and value != CHOICE_VALUES[field] and value != "":
        assert after == before, f"an invalid {field} was stored"
    if field in ("token", "website") and value != "":
        assert after == before
    return response


@pytest.mark.parametrize("field", FIELDS)
def test_every_field_survives_hostile_text(
    hostile: tuple[TestClient, Settings], field: str
) -> None:
    client, settings_ = hostile

    @FAST
    @given(value=hostile_text)
    def prop(value: str) -> None:
        # Marked, so that an echo is told apart from the page's own quotes and brackets.
        send_report(client, settings_, field, f"zq{value}qz")

    prop()


@pytest.mark.parametrize("field", FIELDS)
def test_every_field_survives_the_classics(
    hostile: tuple[TestClient, Settings], field: str
) -> None:
    client, settings_ = hostile
    for value in CLASSICS:
        send_report(client, settings_, field, f"zq{value}qz")


@pytest.mark.parametrize("field", FIELDS)
def test_every_field_survives_bytes_that_are_not_utf8(
    hostile: tuple[TestClient, Settings], field: str
) -> None:
    client, settings_ = hostile
    for raw in BAD_BYTES:
        before = stored(settings_)
        token = token_of(client.get("/report").text)
        data = {"token": token, **VALID_FORM}
        data.pop(field, None)
        body = "&".join(f"{k}={quote_from_bytes(v.encode())}" for k, v in data.items())
        body += f"&{field}={quote_from_bytes(raw)}"
        response = client.post(
            "/report",
            content=body.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        check_response(response, "")
        # Unreadable text is shown back for checking, never stored unseen.
        assert response.status_code in (400, 422)
        assert stored(settings_) == before


def test_a_one_megabyte_line_is_refused_and_not_stored(
    hostile: tuple[TestClient, Settings],
) -> None:
    client, settings_ = hostile
    line = "<script>" + "A" * (1024 * 1024) + '"'
    for field in FIELDS:
        token = token_of(client.get("/report").text)
        response = client.post("/report", data={"token": token, **VALID_FORM, field: line})
        check_response(response, line)
        assert response.status_code == 413
    response = client.post("/status", data={"code": line})
    check_response(response, line)
    assert response.status_code == 413
    assert stored(settings_) == 0


def test_status_lookup_survives_hostile_codes(
    hostile: tuple[TestClient, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, settings_ = hostile
    # Failed look-ups slow a client down (up to 8 s each); this test is about answers.
    monkeypatch.setattr(LookupLimiter, "record_failure", lambda self, client: None)

    @FAST
    @given(code=hostile_text)
    def prop(code: str) -> None:
        response = client.post("/status", data={"code": f"zq{code}qz"})
        check_response(response, f"zq{code}qz")
        assert response.status_code in (404, 400, 413, 422)

    prop()
    for code in CLASSICS:
        response = client.post("/status", data={"code": f"zq{code}qz"})
        check_response(response, f"zq{code}qz")
        assert response.status_code == 404
    for raw in BAD_BYTES:
        response = client.post(
            "/status",
            content=b"code=" + quote_from_bytes(raw).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        check_response(response, "")
    assert stored(settings_) == 0


# --- every documented address, whatever the method, headers and body ------------------

GUIDE = Path(__file__).resolve().parents[2] / "guide" / "report-service.md"


def documented_addresses() -> list[str]:
    """The addresses in the guide's table of what the service answers."""
    found = re.findall(r"^\| (`/[^|]*) \|", GUIDE.read_text(encoding="utf-8"), re.MULTILINE)
    return [path for cell in found for path in re.findall(r"`(/[^`]*)`", cell)]


DOCUMENTED = documented_addresses()


def test_the_guide_documents_every_service_route(hostile: tuple[TestClient, Settings]) -> None:
    client, _ = hostile
    paths = {getattr(route, "path", "") for route in client.app.routes}  # type: ignore[attr-defined]
    documented = {re.sub(r"<(\w+)>", r"{\1}", p) for p in DOCUMENTED}
    assert {"/report", "/{lang}/report", "/status", "/{lang}/status", "/healthz"} <= paths
    assert paths - {"/assets-form", ""} <= documented


MARK = "zq<b>\"'qz"
SUFFIXES = ["", "/", "/..", "/../../etc/passwd", "/%2e%2e/", "/%00", "/" + MARK, "?x=" + MARK]
CONTENT_TYPES = [
    None,
    *["application/x-www-form-urlencoded"] * 5,
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=zz",
    "multipart/form-data",
    "application/json",
    "text/plain",
    "text/html; charset=utf-7",
]
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=2048),
    st.dictionaries(st.sampled_from([*FIELDS, "code", "token", "x"]), hostile_text, max_size=6).map(
        lambda d: urlencode({k: f"zq{v}qz" for k, v in d.items()}).encode()
    ),
    st.just(b'{"description": "' + MARK.encode() + b'"}'),
)
requests = st.fixed_dictionaries(
    {
        # Weighted by repetition towards what the service mostly answers.
        "method": st.sampled_from(
            ["POST"] * 6 + ["GET"] * 3 + ["HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]
        ),
        "address": st.sampled_from([*DOCUMENTED, "/", "/es/"]),
        "lang": st.sampled_from(["en", "es", "es", "xx", "EN", "e%20s", MARK]),
        "suffix": st.sampled_from(["", "", "", *SUFFIXES]),
        "content_type": st.sampled_from(CONTENT_TYPES),
        "body": bodies,
        "headers": st.dictionaries(
            st.sampled_from(
                [
                    "accept-language",
                    "cookie",
                    "x-forwarded-for",
                    "referer",
                    "user-agent",
                    "accept",
                    "origin",
                    "accept-encoding",
                    "forwarded",
                ]
            ),
            header_text,
            max_size=4,
        ),
    }
)
# What the site's static pages add to the service's own headers.
SITE_HEADERS = frozenset(
    {b"etag", b"last-modified", b"accept-ranges", b"content-encoding", b"allow"}
)


def test_every_documented_address_survives_any_request(
    hostile: tuple[TestClient, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fuzzer over the guide's addresses: any method, content type, body and headers."""
    client, settings_ = hostile
    monkeypatch.setattr(LookupLimiter, "record_failure", lambda self, client: None)

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=requests)
    def prop(request: dict[str, Any]) -> None:
        path = request["address"].replace("<lang>", request["lang"]) + request["suffix"]
        headers = dict(request["headers"])
        if request["content_type"] is not None:
            headers["content-type"] = request["content_type"]
        response = client.request(request["method"], path, content=request["body"], headers=headers)
        check_response(response, MARK, ALLOWED_HEADERS | SITE_HEADERS)
        assert b"set-cookie" not in {name.lower() for name, _ in response.headers.raw}
        assert stored(settings_) == 0, "a report stored without a form token"

    prop()
