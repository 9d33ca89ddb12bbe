"""Settings come from OUTREACH_* variables, each checked and each documented."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import stat
from pathlib import Path

import pytest

from form_service.report_form import largest_form_bytes
from form_service.settings import SETTINGS, Settings, SettingsError
from outreach.loader import LoadedProfile

REPO = Path(__file__).resolve().parents[2]


def from_env(demo: LoadedProfile, tmp_path: Path, **environ: str) -> Settings:
    environ.setdefault("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    return Settings.from_env(demo, tmp_path / "site", environ)


def test_defaults(demo: LoadedProfile, tmp_path: Path) -> None:
    settings = from_env(demo, tmp_path)
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'reports.sqlite3'}"
    assert settings.min_fill_seconds == 3
    assert settings.max_token_age_seconds == 4 * 3600
    assert settings.trusted_proxies == ()
    assert settings.max_body_bytes == 2 * largest_form_bytes() == 544_384
    assert "prevent.harbor-county.example.org" in settings.allowed_hosts


def test_dev_secret_is_generated_once_with_owner_only_access(
    demo: LoadedProfile, tmp_path: Path
) -> None:
    first = from_env(demo, tmp_path)
    second = from_env(demo, tmp_path)
    secret_file = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert first.secret_keys == second.secret_keys
    assert len(first.secret_keys[0]) == 64


def test_secret_key_list_for_rotation(demo: LoadedProfile, tmp_path: Path) -> None:
    settings = from_env(demo, tmp_path, OUTREACH_SECRET_KEY=f" {NEW} , {OLD} ")
    assert settings.secret_keys == (NEW, OLD)
    assert not (tmp_path / "data" / "secret_key").exists()


NEW = "new-key-" + "n" * 32
OLD = "old-key-" + "o" * 32


@pytest.mark.parametrize(
    ("keys", "which"),
    [("tiny-k", "the secret"), ("change-me-please", "the secret"), (f"{NEW},tiny-old", "secret 2")],
)
def test_a_short_secret_key_is_refused_at_start(
    demo: LoadedProfile, tmp_path: Path, keys: str, which: str
) -> None:
    with pytest.raises(SettingsError) as error:
        from_env(demo, tmp_path, OUTREACH_SECRET_KEY=keys)
    assert error.value.message.startswith(
        f"OUTREACH_SECRET_KEY: {which} is shorter than 32 characters."
    )
    assert "token_hex(32)" in error.value.message
    assert keys.split(",")[-1] not in error.value.message[25:], "the secret itself is not shown"


def test_a_key_of_32_characters_and_the_generated_one_start(
    demo: LoadedProfile, tmp_path: Path
) -> None:
    assert from_env(demo, tmp_path, OUTREACH_SECRET_KEY="x" * 32).secret_keys == ("x" * 32,)
    assert len(from_env(demo, tmp_path).secret_keys[0]) == 64  # `make run`: no key set


def test_values_are_read(demo: LoadedProfile, tmp_path: Path) -> None:
    settings = from_env(
        demo,
        tmp_path,
        OUTREACH_SECRET_KEY=NEW,
        OUTREACH_MIN_FILL_SECONDS="0",
        OUTREACH_MAX_TOKEN_AGE_SECONDS="60",
        OUTREACH_TRUSTED_PROXIES="10.0.0.1, 192.168.0.0/16",
        OUTREACH_DATABASE_URL="sqlite:////srv/reports.db",
        OUTREACH_ALLOWED_HOSTS="tips.example.org",
    )
    assert settings.min_fill_seconds == 0
    assert settings.max_token_age_seconds == 60
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("192.168.0.0/16"),
    )
    assert settings.database_url == "sqlite:////srv/reports.db"
    assert settings.allowed_hosts[0] == "tips.example.org"
    assert "localhost" in settings.allowed_hosts


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OUTREACH_MIN_FILL_SECONDS", "soon", "OUTREACH_MIN_FILL_SECONDS='soon': not a number"),
        ("OUTREACH_MAX_FIELDS", "-1", "OUTREACH_MAX_FIELDS='-1': must not be negative"),
        ("OUTREACH_TRUSTED_PROXIES", "proxy.local", "'proxy.local' is not an IP address"),
        ("OUTREACH_LOG_LEVEL", "chatty", "OUTREACH_LOG_LEVEL='chatty'"),
        ("OUTREACH_DELIVERY_WORKER", "yes", "OUTREACH_DELIVERY_WORKER='yes': use 1 (on) or 0"),
    ],
)
def test_bad_values_name_the_variable(
    demo: LoadedProfile, tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        from_env(demo, tmp_path, **{name: value})
    assert message in error.value.message


def test_profile_site_and_delivery_come_from_the_environment(
    demo: LoadedProfile, tmp_path: Path
) -> None:
    environ = {
        "OUTREACH_PROFILE": str(demo.folder),
        "OUTREACH_SITE_DIR": str(tmp_path / "site"),
        "OUTREACH_DATA_DIR": str(tmp_path / "data"),
        "OUTREACH_DELIVERY_WORKER": "0",
    }
    settings = Settings.from_env(environ=environ)
    assert settings.profile.path == demo.path
    assert settings.site_dir == (tmp_path / "site").resolve()
    assert settings.delivery_worker is False
    assert from_env(demo, tmp_path).delivery_worker is True


def test_a_missing_profile_is_named(tmp_path: Path) -> None:
    environ = {"OUTREACH_PROFILE": str(tmp_path / "nowhere"), "OUTREACH_DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError) as error:
        Settings.from_env(environ=environ)
    assert error.value.message.startswith("OUTREACH_PROFILE: ")
    assert "no agency profile here" in error.value.message


def test_the_table_fills_every_field_and_gives_its_default() -> None:
    assert sorted(s.field for s in SETTINGS) == sorted(f.name for f in dataclasses.fields(Settings))
    for field in dataclasses.fields(Settings):
        if field.default is not dataclasses.MISSING:
            setting = next(s for s in SETTINGS if s.field == field.name)
            assert field.default == setting.default_value(), setting.env


def guide_table() -> list[str]:
    """The guide's settings table as SETTINGS says it must read."""
    rows = ["| Variable | Default | What it does |", "| --- | --- | --- |"]
    for s in SETTINGS:
        rows.append(f"| `{s.env}` | {s.shown or f'`{s.default}`'} | {s.help} |")
    return rows


def test_the_guide_documents_every_setting_as_the_table_says() -> None:
    guide = (REPO / "guide" / "report-service.md").read_text(encoding="utf-8").splitlines()
    start = guide.index("| Variable | Default | What it does |")
    end = guide.index("", start)
    assert guide[start:end] == guide_table()


def test_every_variable_named_here_is_in_the_table() -> None:
    source = (REPO / "form_service" / "settings.py").read_text(encoding="utf-8")
    named = set(re.findall(r'"(OUTREACH_[A-Z_]+)"', source))
    assert named == {s.env for s in SETTINGS}


def test_a_short_kept_secret_is_refused(demo: LoadedProfile, tmp_path: Path) -> None:
    kept = tmp_path / "data" / "secret_key"
    kept.parent.mkdir()
    kept.write_text("abc\n")
    with pytest.raises(SettingsError) as error:
        from_env(demo, tmp_path)
    assert "shorter than 32 characters; delete it" in error.value.message
