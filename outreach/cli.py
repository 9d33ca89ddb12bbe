"""The ``outreach`` command: check a profile, build the site, serve it, start a new agency."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click
import uvicorn

from form_service import connection_cap
from form_service import http_limits as limits
from form_service.app import create_app
from form_service.delivery.admin import audit_line, audit_trail, purge_mail_now, purge_now
from form_service.delivery.worker import WorkerOptions, run_standalone, start_worker
from form_service.logs import setup_logging
from form_service.private_files import is_inside, private_folder, private_tree
from form_service.proxy_config import (
    DEFAULT_PAGES_DIR,
    ProxySite,
    caddyfile,
    nginx_site,
    write_pages,
)
from form_service.settings import Settings, data_dir_from_env, proxy_body_limit_from_env
from form_service.staff import commands as staff_commands
from form_service.staff.accounts import AccountError
from form_service.staff.figures import as_csv, as_json
from outreach.catalog_coverage import LanguageGap, language_gaps
from outreach.i18n import catalog_path
from outreach.keys import keygen as make_key_pair
from outreach.loader import LoadedProfile, ProfileError, display_path, load_profile
from outreach.profile import (
    DeliveryConfig,
    Escalation,
    Profile,
    ReportField,
    SharingAgreement,
    StaffNotices,
    localize,
)
from outreach.routing import INTAKE_RULE, all_facts, route_report
from outreach.scaffold import ScaffoldError, scaffold_agency
from outreach.secret_env import missing_secrets
from outreach.site.claims import contradicted_claims
from outreach.site.materials import cache_folder
from outreach.site.sitegen import BuildError, build_site

DEFAULT_OUT = "var/site"

profile_option = click.option(
    "--profile",
    "profile_path",
    metavar="PATH",
    default=None,
    help="Agency profile folder or its agency.yml (default: the demo agency).",
)


def _load(profile_path: str | None, *, draft: bool = False, warn: bool = False) -> LoadedProfile:
    """The profile, or one clean abort naming every problem; with *warn*, its warnings on
    stderr (``check`` lists them in its own output)."""
    try:
        loaded = load_profile(profile_path, draft=draft)
    except ProfileError as error:
        raise click.ClickException(str(error)) from None
    if warn:
        for warning in loaded.warnings:
            click.echo(f"Warning: {warning}", err=True)
    return loaded


def _require_secrets(loaded: LoadedProfile, doing: str) -> None:
    """Refuse to go on when a secret a delivery target needs is not in the environment."""
    missing = missing_secrets(loaded.profile, os.environ)
    if missing:
        shown = display_path(loaded.path)
        count = f"{len(missing)} secret{'s' if len(missing) > 1 else ''}"
        raise click.ClickException(
            f"{doing}: {count} missing from the environment:\n  "
            + "\n  ".join(f"{shown}: {line}" for line in missing)
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="outreach-kit")
def main() -> None:
    """Build and serve a prevention outreach site from one agency profile."""


@main.command()
@profile_option
@click.option(
    "--deploy",
    is_flag=True,
    help="Also fail when a secret a partner needs (SMTP password, webhook secret, …) is not "
    "set in this environment: run it where the service runs.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Also fail when a language of the profile shows some of the strings a person who "
    "reports sees (site, form, receipt, status page, mail) in English.",
)
def check(profile_path: str | None, deploy: bool, strict: bool) -> None:
    """Validate a profile; print its partners and routing table."""
    loaded = _load(profile_path)
    if deploy:
        _require_secrets(loaded, "Not ready to deploy")
    claims = contradicted_claims(loaded)
    if claims:
        raise click.ClickException(
            f"{len(claims)} sentence{'s promise' if len(claims) > 1 else ' promises'} more "
            "than the profile configures:\n  " + "\n  ".join(str(claim) for claim in claims)
        )
    profile = loaded.profile
    default = profile.default_language
    click.echo(
        f"{display_path(loaded.path)}: OK ({localize(profile.agency.name, default, default)})"
    )
    gaps = language_gaps(profile)
    warnings = [*loaded.warnings, *(_gap_warning(loaded, gap) for gap in gaps)]
    if warnings:
        click.echo("Warnings:")
        for warning in warnings:
            click.echo(f"  {warning}")
        click.echo()
    _warn_plaintext_mail(profile)
    click.echo(f"Languages: {', '.join(profile.languages)}")
    click.echo(f"Areas: {', '.join(profile.area_ids())}")
    click.echo("\nPartners:")
    for partner in profile.partners:
        agreement = partner.agreement
        fields = ", ".join(f.value for f in agreement.fields)
        click.echo(
            f"  {partner.id} ({partner.kind.value}) via {partner.delivery.channel}; "
            f"agreement {agreement.id}: {fields}; {_contact_terms(agreement)}"
        )
    click.echo("\nRouting (every kind of report and who receives it):")
    rows: dict[tuple[str, ...], list[str]] = {}
    for facts in all_facts(profile):
        chosen = [
            r.partner_id
            if r.rule_id == INTAKE_RULE
            else f"{r.partner_id} [{r.rule_id}{', after review' if r.review else ''}]"
            for r in route_report(facts, profile)
        ]
        key = tuple(chosen)
        rows.setdefault(key, []).append(
            f"{facts.area}/{facts.setting.value}/{facts.concern.value}"
            + ("/danger-now" if facts.danger_now else "")
        )
    for recipients, kinds in sorted(rows.items(), key=lambda item: -len(item[1])):
        click.echo(f"  {len(kinds):4d} kinds -> {', '.join(recipients)}")
        click.echo(f"         e.g. {kinds[0]}")
    _echo_requests(profile)
    _echo_escalation(profile.escalation)
    _echo_staff_notices(profile.staff_notices)
    if strict and gaps:
        names = ", ".join(gap.lang for gap in gaps)
        raise click.ClickException(f"--strict: interface strings are missing in {names}")


def _shorter(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _gap_warning(loaded: LoadedProfile, gap: LanguageGap, shown: int = 3) -> str:
    """One line per language: how many strings stay in English, and the first few."""
    index = loaded.profile.languages.index(gap.lang)
    examples = ", ".join(f'"{_shorter(msgid)}"' for _, msgid in gap.missing[:shown])
    more = ", …" if len(gap.missing) > shown else ""
    return (
        f"{display_path(loaded.path)}: languages[{index}]: '{gap.lang}': {len(gap.missing)} of "
        f"{gap.total} strings a person who reports sees are not translated "
        f"(kit catalog or {display_path(catalog_path(gap.lang, loaded.folder / 'locale'))}), "
        f"e.g. {examples}{more}"
    )


def _warn_plaintext_mail(profile: Profile) -> None:
    """Loudly, on stderr: each partner whose reports would rest in plaintext on the server."""
    for partner in profile.partners:
        folder = partner.delivery.maildir
        if folder is not None and partner.delivery.age_recipient is None:
            click.secho(
                f"WARNING: {partner.id}: reports are delivered into the Maildir folder "
                f"<data dir>/maildir/{folder.folder}/ on this server IN PLAINTEXT. Anyone "
                "who can read that folder, or a backup of it, reads them. Set the partner's "
                "delivery.age_recipient to the age key of whoever reads it.",
                err=True,
                fg="red",
                bold=True,
            )


def _contact_terms(agreement: SharingAgreement) -> str:
    if ReportField.contact not in agreement.fields:
        return "no contact details"
    if agreement.contact_requires_consent:
        return "contact details with consent"
    return "contact details always"


def _echo_requests(profile: Profile) -> None:
    """Per agreement, the requests for information it permits and what may come back."""
    default = profile.default_language
    click.echo("\nRequests for information (the intake team asks a partner about one report):")
    asked = [p for p in profile.partners if p.id != profile.routing.intake]
    if not asked:
        click.echo("  none: no partner but the intake team")
    for partner in asked:
        terms = partner.agreement.requests
        if terms is None:
            click.echo(f"  {partner.agreement.id} ({partner.id}): none")
            continue
        bases = "; ".join(localize(basis.title, default, default) for basis in terms.bases)
        fields = ", ".join(field.value for field in terms.fields) or "no report fields"
        answers = "; ".join(localize(kind.title, default, default) for kind in terms.answers)
        click.echo(f"  {partner.agreement.id} ({partner.id}): under {bases}")
        click.echo(f"      a request may carry: {fields}")
        click.echo(f"      the partner may answer with: {answers}")


def _echo_escalation(escalation: Escalation | None) -> None:
    if escalation is None:
        click.echo("\nEscalation: none (unacknowledged danger-now reports wait in the inbox)")
        return
    click.echo(
        f"\nEscalation (a danger-now report unacknowledged after {escalation.after_minutes} min,"
        f" then every {escalation.repeat_minutes} min, to the next contact):"
    )
    for number, contact in enumerate(escalation.contacts, start=1):
        click.echo(f"  {number}. {_target(contact)}")


def _echo_staff_notices(notices: StaffNotices | None) -> None:
    if notices is None:
        click.echo("\nStaff notices: none (staff users find new work in the inbox)")
        return
    if notices.email is not None:
        how = f"email via {notices.email.smtp_host}"
    else:
        how = f"maildir {notices.maildir.folder}" if notices.maildir else notices.channel
    click.echo(
        f"\nStaff notices: {how}, to each user's account address; at most one every"
        f" {notices.every_minutes} min per user, urgent ones at once"
    )


def _target(delivery: DeliveryConfig) -> str:
    if delivery.email is not None:
        return f"email to {', '.join(delivery.email.to)} via {delivery.email.smtp_host}"
    if delivery.webhook is not None:
        url = delivery.webhook.url
        return f"webhook {url.scheme}://{url.host}"
    if delivery.maildir is not None:
        return f"maildir {delivery.maildir.folder}"
    return delivery.channel


@main.command()
@profile_option
@click.option("--out", "out", default=DEFAULT_OUT, show_default=True, help="Output folder.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Languages and printed materials built at once (default: the free cores).",
)
@click.option(
    "--draft",
    is_flag=True,
    help="Build even with CHANGE-ME placeholders left; every page then says it is a draft "
    "and asks search engines not to index it. Never publish a draft.",
)
def build(profile_path: str | None, out: str, jobs: int | None, draft: bool) -> None:
    """Build the static outreach site, one language per folder."""
    loaded = _load(profile_path, draft=draft, warn=draft)
    languages = _build(loaded, Path(out), jobs)
    click.echo(f"Built {', '.join(languages)} into {out}" + (" (a draft)" if draft else ""))


def _build(loaded: LoadedProfile, out: Path, jobs: int | None = None) -> list[str]:
    # The default site folder (var/site) is in the data dir: a first build must not make
    # that folder readable by everyone, nor leave files there that are.
    data_dir = data_dir_from_env()
    in_data_dir = is_inside(out, data_dir)
    if in_data_dir:
        private_folder(data_dir)
    try:
        built = build_site(loaded, out, jobs)
    except BuildError as error:
        message = f"The site was not built (the previous one is kept):\n{error}"
        raise click.ClickException(message) from None
    if in_data_dir:
        private_tree(out)
        # The PDFs kept for the next build sit beside the site, in the data dir too.
        if cache_folder(out).is_dir():
            private_tree(cache_folder(out))
    return built


@main.command()
@profile_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--out", "out", default=DEFAULT_OUT, show_default=True, help="Site folder.")
@click.option("--no-build", is_flag=True, help="Serve the site already in --out.")
@click.option("--no-worker", is_flag=True, help="Leave delivery to `outreach worker`.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Service processes on the one port (each with its own delivery worker).",
)
def serve(
    profile_path: str | None,
    host: str,
    port: int,
    out: str,
    no_build: bool,
    no_worker: bool,
    workers: int,
) -> None:
    """Build the site and serve it (with the report service) on HOST:PORT."""
    loaded = _load(profile_path)
    site = Path(out)
    settings = Settings.from_env(profile=loaded, site_dir=site)  # checked (and secret made) once
    deliver = settings.delivery_worker and not no_worker
    if deliver:  # else `outreach worker` delivers, and checks the secrets itself
        _require_secrets(loaded, "The report service was not started")
    if not no_build:
        _build(loaded, site)
    elif not (site / "index.html").is_file():
        raise click.ClickException(f"No built site in {out}; run without --no-build first.")
    click.echo(f"Serving {display_path(loaded.path)} at http://{host}:{port}/ (Ctrl+C stops)")
    if workers > 1:
        # Each process builds its app from these public settings (form_service/asgi.py).
        os.environ["OUTREACH_PROFILE"] = str(loaded.path)
        os.environ["OUTREACH_SITE_DIR"] = str(site.resolve())
        os.environ["OUTREACH_DELIVERY_WORKER"] = "1" if deliver else "0"
        _run_uvicorn("form_service.asgi:app_from_environment", host, port, settings, workers)
        return
    app = create_app(settings, background=(start_worker,) if deliver else ())
    _run_uvicorn(app, host, port, settings)


@main.command()
@click.argument("server", type=click.Choice(["caddy", "nginx"]))
@profile_option
@click.option("--host", required=True, help="The site's host name, as in agency.site_url.")
@click.option("--upstream", default="127.0.0.1:8000", show_default=True, help="The service.")
@click.option(
    "--tls",
    type=click.Choice(["internal"]),
    default=None,
    help="Caddy: a certificate from Caddy's own authority (tests, intranets), not ACME.",
)
@click.option("--certificate", default="", help="nginx: certificate chain (default: certbot's).")
@click.option("--certificate-key", default="", help="nginx: its private key.")
@click.option(
    "--pages",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_PAGES_DIR,
    show_default=True,
    help="Where to write the error pages the proxy serves when the service cannot answer.",
)
@click.option("--http-port", type=click.IntRange(1, 65535), default=80, show_default=True)
@click.option("--https-port", type=click.IntRange(1, 65535), default=443, show_default=True)
def deploy(
    server: str,
    profile_path: str | None,
    host: str,
    upstream: str,
    tls: str | None,
    certificate: str,
    certificate_key: str,
    pages: Path,
    http_port: int,
    https_port: int,
) -> None:
    """Print a Caddy or nginx configuration for HTTPS in front of the service, and write
    its error pages. The body limit follows OUTREACH_MAX_BODY_BYTES and
    OUTREACH_MAX_REPORT_FILES_BYTES in this environment."""
    if tls and server != "caddy":
        raise click.ClickException("--tls internal is Caddy's; give nginx --certificate.")
    loaded = _load(profile_path)
    profile = loaded.profile
    site = ProxySite(
        host=host,
        upstream=upstream,
        body_limit=proxy_body_limit_from_env(),
        languages=(
            profile.default_language,
            *(lang for lang in profile.languages if lang != profile.default_language),
        ),
        pages_dir=pages.resolve(),
        tls_internal=tls == "internal",
        certificate=certificate,
        certificate_key=certificate_key,
        http_port=http_port,
        https_port=https_port,
    )
    try:
        written = write_pages(loaded, site.pages_dir)
    except OSError as error:
        raise click.ClickException(
            f"Cannot write the error pages to {site.pages_dir}: {error.strerror}"
        ) from None
    click.echo(caddyfile(site) if server == "caddy" else nginx_site(site), nl=False)
    click.echo(f"Wrote {len(written)} error pages to {site.pages_dir}.", err=True)


def _service_settings(profile_path: str | None) -> Settings:
    return Settings.from_env(profile=_load(profile_path), site_dir=Path(DEFAULT_OUT))


@main.command()
@profile_option
@click.option("--concurrency", type=click.IntRange(1, 100), default=16, show_default=True)
@click.option(
    "--lease-seconds",
    type=click.FloatRange(min=1),
    default=WorkerOptions.lease_seconds,
    show_default=True,
    help="How long a crashed worker's rows wait before another worker sends them"
    " (a live worker renews its rows' leases, however long a send takes).",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="How often due retries are looked for (a new report wakes the worker at once).",
)
def worker(
    profile_path: str | None, concurrency: int, lease_seconds: float, poll_seconds: float
) -> None:
    """Deliver routed reports to partners (`outreach serve` also does this itself)."""
    settings = _service_settings(profile_path)
    _require_secrets(settings.profile, "The delivery worker was not started")
    setup_logging(settings.log_level)
    options = WorkerOptions(
        concurrency=concurrency, lease_seconds=lease_seconds, poll_seconds=poll_seconds
    )
    asyncio.run(run_standalone(settings, options))


@main.command()
@profile_option
def purge(profile_path: str | None) -> None:
    """Delete reports, and the mail the kit delivered into Maildir folders, past the
    profile's retention period; the audit trail stays."""
    settings = _service_settings(profile_path)
    refs = purge_now(settings)
    days = settings.profile.profile.retention.days
    click.echo(f"Purged {len(refs)} report(s) older than {days} days.")
    mail = purge_mail_now(settings)
    click.echo(f"Deleted {mail} delivered message(s) older than {days} days from Maildir folders.")


@main.command()
@profile_option
@click.option("--report", "report_ref", metavar="REF", help="Only this report reference.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="From this day (UTC).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="To this day, included.")
@click.option(
    "--verify", is_flag=True, help="Check that no row of the staff audit trail was changed."
)
def audit(
    profile_path: str | None, report_ref: str | None, since: Any, until: Any, verify: bool
) -> None:
    """Print the audit trail: routing, delivery attempts, deliveries, purges (no content)."""
    if verify:
        _verify_audit(profile_path)
        return

    events = audit_trail(
        _service_settings(profile_path),
        report_ref,
        since.date() if since else None,
        until.date() if until else None,
    )
    for event in events:
        click.echo(audit_line(event))
    if not events:
        click.echo("No audit events match.", err=True)


def _verify_audit(profile_path: str | None) -> None:
    count, problems = staff_commands.verify_audit(_service_settings(profile_path))
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    if problems:
        raise click.ClickException(
            f"The staff audit trail has been changed: {len(problems)} problem(s) in {count} events."
        )
    click.echo(f"The staff audit trail is intact: {count} events, each chained to the last.")


@main.command()
@profile_option
@click.option(
    "--format",
    "output",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="CSV: one row per figure (month, dimension, category, value). JSON: one object a month.",
)
@click.option("--months", type=click.IntRange(1, 120), default=12, show_default=True)
def stats(profile_path: str | None, output: str, months: int) -> None:
    """Print the program figures: reports per month by area, setting, concern and outcome,
    and the median time to acknowledge and to close. A count from 1 to 4 is "<5"."""
    figures = staff_commands.figures(_service_settings(profile_path), months, output)
    click.echo(as_csv(figures) if output == "csv" else as_json(figures), nl=False)


@main.group()
def staff() -> None:
    """Staff accounts for the inbox: add, list, disable, reset."""


@staff.command("add")
@profile_option
@click.argument("email")
@click.option("--role", required=True, help="admin, intake, auditor, or partner:<partner id>.")
def staff_add(profile_path: str | None, email: str, role: str) -> None:
    """Add an account and print its one-time enrolment link (valid 24 hours)."""
    try:
        user, link = staff_commands.add(_service_settings(profile_path), email, role)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Added {user.email} ({user.role}). Send this enrolment link to them alone:")
    click.echo(link)


@staff.command("list")
@profile_option
def staff_list(profile_path: str | None) -> None:
    """List every account, its role and state."""
    for user in staff_commands.list_users(_service_settings(profile_path)):
        click.echo(f"{user.email}\t{user.role}\t{user.state}")


@staff.command("disable")
@profile_option
@click.argument("email")
def staff_disable(profile_path: str | None, email: str) -> None:
    """Disable an account and end its sessions."""
    try:
        user = staff_commands.disable(_service_settings(profile_path), email)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Disabled {user.email}; their sessions have ended.")


@staff.command("reset")
@profile_option
@click.argument("email")
def staff_reset(profile_path: str | None, email: str) -> None:
    """Reset an account: new password and second factor from a new enrolment link.

    The user loses access to reports until a colleague grants it again (SECURITY.md)."""
    try:
        user, link = staff_commands.reset(_service_settings(profile_path), email)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Reset {user.email}. Send this enrolment link to them alone:")
    click.echo(link)


def _run_uvicorn(app: Any, host: str, port: int, settings: Settings, workers: int = 1) -> None:
    """Serve *app*, or with several workers the factory named by the string *app*."""
    # No access log: it would record every visitor's address and the pages they read.
    # The limits: a request head of at most 16 KiB, sent within 10 s, its body within 30 s
    # (DeadlineH11Protocol); idle keep-alive connections closed after 5 s; past 512 open
    # connections new requests get 503 rather than queueing without end. One client may hold
    # OUTREACH_CONNECTIONS_PER_CLIENT of them, and the 503 is the service's own page
    # (form_service/connection_cap.py).
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=isinstance(app, str),
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level=os.environ.get("OUTREACH_LOG_LEVEL", "info").lower(),
        http=connection_cap.protocol(settings),
        h11_max_incomplete_event_size=limits.MAX_HEAD_BYTES,
        timeout_keep_alive=limits.KEEP_ALIVE_TIMEOUT,
        limit_concurrency=limits.MAX_CONCURRENCY,
        backlog=limits.BACKLOG,
        timeout_graceful_shutdown=limits.GRACEFUL_SHUTDOWN_TIMEOUT,
    )


@main.command()
@click.argument("agency_id")
def new(agency_id: str) -> None:
    """Create agencies/AGENCY_ID/ with a profile to fill in (its CHANGE-ME values)."""
    try:
        folder = scaffold_agency(Path.cwd(), agency_id)
    except ScaffoldError as error:
        raise click.ClickException(str(error)) from None
    shown = display_path(folder)
    click.echo(
        f"Created {shown}. Replace each CHANGE-ME value in {shown}/agency.yml, "
        f"then run: outreach check --profile {shown}"
    )


@main.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the private key to this new file (owner-only; never overwrites).",
)
def keygen(out: Path | None) -> None:
    """Make an archive key pair; the private key must never be on the server."""
    make_key_pair(out)
