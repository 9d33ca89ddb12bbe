"""An agency's own interface strings win over the kit's on the report form, the staff pages
and in mail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from form_service.delivery.message import mail_gettext
from form_service.settings import Settings
from outreach.loader import LoadedProfile
from tests.outreach.test_interface_catalogs import write_agency_catalog

from .conftest import start_client, submit, token_of
from .sample_files import screenshot
from .samples import VALID_FORM


def with_spanish(
    loaded: LoadedProfile, agency: Path, strings: dict[tuple[str | None, str], str]
) -> LoadedProfile:
    """*loaded* with an agency catalog in *agency* translating *strings* into Spanish."""
    write_agency_catalog(agency, "es", strings)
    profile = loaded.profile.model_copy()
    profile.read_interface_strings_from(agency / "locale")
    return LoadedProfile(profile=profile, folder=loaded.folder, path=loaded.path)


def test_an_agency_string_wins_on_the_form_and_receipt(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile, tmp_path: Path
) -> None:
    loaded = with_spanish(
        keyed_demo,
        tmp_path / "riverside",
        {
            (None, "Send report"): "Mandar el reporte",
            (None, "Your receipt code"): "Su número para consultar",
            ("mail", "New report %(ref)s"): "Reporte nuevo %(ref)s",
            (None, "Sign in"): "Entrar al equipo",
        },
    )
    with start_client(make_settings(profile=loaded)) as client:
        form = client.get("/es/report").text
        assert "Mandar el reporte" in form and "Enviar reporte" not in form
        assert "¿Qué pasó" in form, "the kit's other strings stay"
        receipt = submit(client, "/es/report").text
        assert "Su número para consultar" in receipt
        staff = client.get("/staff/sign-in", headers={"Accept-Language": "es"}).text
        assert "<h1>Entrar al equipo</h1>" in staff
        english = client.get("/report").text
        assert "Send report" in english and "Mandar" not in english
    gettext = mail_gettext("es", loaded.profile.interface_locale)
    assert gettext("New report %(ref)s") == "Reporte nuevo %(ref)s"
    assert mail_gettext("es")("New report %(ref)s") != "Reporte nuevo %(ref)s"


def test_an_agency_string_wins_in_what_the_pages_say_of_files(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile, tmp_path: Path
) -> None:
    """The file field's limits and the files' names ("photo 1") come from the agency's
    catalog first, like every other string of the pages."""
    loaded = with_spanish(
        keyed_demo,
        tmp_path / "riverside",
        {(None, "%(size)s MB"): "%(size)s megas", (None, "photo %(number)s"): "imagen %(number)s"},
    )
    with start_client(make_settings(profile=loaded)) as client:
        form = client.get("/es/report").text
        assert "10 megas" in form and "10 MB" not in form
        token = token_of(form)
        data = {"token": token, **VALID_FORM}
        files = [("files", ("s.png", screenshot(), "image/png"))]
        receipt = client.post("/es/report", data=data, files=files)
        assert receipt.status_code == 200
        assert "imagen 1" in receipt.text and "foto 1" not in receipt.text


def test_the_demo_reads_no_agency_strings(keyed_demo: LoadedProfile) -> None:
    locale = keyed_demo.profile.interface_locale
    assert locale == keyed_demo.folder / "locale" and not locale.exists()
