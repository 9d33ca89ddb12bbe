"""Settings come from OUTREACH_* variables, each checked and each documented."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest

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
    assert settings.max_body_bytes == 64 * 1024
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
    settings = from_env(demo, tmp_path, OUTREACH_SECRET_KEY=" new-key , old-key ")
    assert settings.secret_keys == ("new-key", "old-key")
    assert not (tmp_path / "data" / "secret_key").exists()


def test_values_are_read(demo: LoadedProfile, tmp_path: Path) -> None:
    settings = from_env(
        demo,
        tmp_path,
        OUTREACH_SECRET_KEY="k",
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
    ],
)
def test_bad_values_name_the_variable(
    demo: LoadedProfile, tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        from_env(demo, tmp_path, **{name: value})
    assert message in error.value.message


def test_every_setting_is_documented_in_the_guide() -> None:
    guide = (REPO / "guide" / "report-service.md").read_text(encoding="utf-8")
    missing = [v.name for v in SETTINGS if f"`{v.name}`" not in guide]
    assert missing == []


def test_every_variable_read_is_in_the_table() -> None:
    import re

    source = (REPO / "form_service" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'"(OUTREACH_[A-Z_]+)"', source))
    assert read == {v.name for v in SETTINGS}
