"""Debian's Caddy and nginx in front of the real service, with `outreach deploy`'s configuration.

Each proxy runs as the current user from a test folder, on free loopback ports, with the
configuration `outreach deploy` prints (Caddy with its internal authority, nginx with a
certificate made here; nginx inside Debian's own nginx.conf, its paths moved to the test
folder). Requests come from distinctive loopback addresses (127.0.0.2xx) with distinctive
user agents: reports over HTTP/2, reports too long and bodies too large, a flood of status
look-ups, requests while the service restarts and for unknown host names. Afterwards no
file either proxy wrote, nor its output, nor the service's, may hold one of those addresses
or user agents.
"""

from __future__ import annotations

import datetime
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from form_service.proxy_config import (
    ProxySite,
    caddyfile,
    nginx_site,
    security_headers,
)
from form_service.report_form import MAX_DESCRIPTION
from form_service.settings import max_body_bytes_from_env, proxy_body_limit_from_env
from outreach.cli import main
from tests.conftest import free_port, require_tool
from tests.form_service.samples import VALID_FORM
from tests.form_service.test_deploy_guides import GUIDE, fenced
from tests.live_server import OUTREACH

PAGE = "deploy-single-machine.md"

HOST = "prevent.test"
SECRET = "fedcba9876543210" * 4
_SEQUENCE = iter(range(201, 255))


@dataclass(frozen=True)
class Answer:
    status: int
    version: str
    headers: dict[str, str]
    body: str
    cut: bool = False
    """The head arrived, then the stream ended before the body (curl's error 18)."""


@dataclass
class Client:
    """A visitor: a loopback source address and a user agent no one else uses."""

    address: str = field(default_factory=lambda: f"127.0.0.{next(_SEQUENCE)}")

    @property
    def agent(self) -> str:
        return f"TestBrowser/{self.address.rsplit('.', 1)[1]}-Zq7"


@dataclass
class Service:
    """`outreach serve` on a fixed port, which a test can stop and start again."""

    port: int
    command: list[str]
    env: dict[str, str]
    output: Path
    profile: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.output.open("ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=log)
        wait_for(self._answers, 60, "the service")

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(30)

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.output.read_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True


@dataclass
class Proxy:
    name: str
    http_port: int
    https_port: int
    folder: Path
    """Everything the proxy may write to: its logs, state and output."""
    curl_dir: Path
    edit: Callable[[str], str] = lambda config: config
    """A change to the generated configuration (only the control test makes one)."""

    def request(
        self,
        path: str,
        client: Client,
        *,
        data: bytes | None = None,
        host: str = HOST,
        https: bool = True,
        sni: str = HOST,
        http1: bool = False,
    ) -> Answer:
        port = self.https_port if https else self.http_port
        scheme = "https" if https else "http"
        headers, body = self.curl_dir / "headers", self.curl_dir / "body"
        command = [
            "curl", "-sS", "-k", "--http1.1" if http1 else "--http2", "--max-time", "30",
            "--resolve", f"{sni}:{port}:127.0.0.1",
            "--interface", client.address, "-A", client.agent,
            "-D", str(headers), "-o", str(body), "-w", "%{http_version}",
        ]  # fmt: skip
        if host != sni:
            command += ["-H", f"Host: {host}"]
        if data is not None:
            (self.curl_dir / "data").write_bytes(data)
            command += ["-H", "Content-Type: application/x-www-form-urlencoded"]
            command += ["--data-binary", f"@{self.curl_dir / 'data'}"]
        headers.unlink(missing_ok=True)
        done = subprocess.run(
            [*command, f"{scheme}://{sni}:{port}{path}"], capture_output=True, text=True
        )
        cut = done.returncode == 18
        if done.returncode != 0 and not cut:
            return Answer(0, "", {}, done.stderr)  # refused, or closed without an answer
        lines = headers.read_text(encoding="latin-1").strip().splitlines()
        status = int(lines[0].split()[1])
        fields = dict(line.strip().split(": ", 1) for line in lines[1:] if ": " in line)
        return Answer(
            status,
            done.stdout,
            {k.lower(): v for k, v in fields.items()},
            done.stderr if cut else body.read_text(encoding="utf-8", errors="replace"),
            cut,
        )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def service(tmp_path: Path, demo_copy: Path) -> Iterator[Service]:
    site = tmp_path / "site"
    (site / "privacy").mkdir(parents=True)
    (site / "index.html").write_text("<h1>site</h1>", encoding="utf-8")
    (site / "privacy" / "index.html").write_text("<h1>privacy</h1>", encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(
        OUTREACH_DATA_DIR=str(tmp_path / "data"),
        OUTREACH_SECRET_KEY=SECRET,
        OUTREACH_TRUSTED_PROXIES="127.0.0.1",
        OUTREACH_ALLOWED_HOSTS=HOST,
        OUTREACH_MIN_FILL_SECONDS="0",
        OUTREACH_STATUS_MIN_SECONDS="0",
        OUTREACH_STATUS_CLIENT_LIMIT="3",
    )
    command = [OUTREACH, "serve", "--profile", str(demo_copy), "--no-build"]
    command += ["--out", str(site), "--port", str(port)]
    running = Service(port, command, env, tmp_path / "service-output.log", demo_copy)
    running.start()
    yield running
    if running.process is not None and running.process.poll() is None:
        running.stop()


def deploy_config(server: str, service: Service, proxy: Proxy, *options: str) -> str:
    command = [OUTREACH, "deploy", server, "--host", HOST]
    command += ["--upstream", f"127.0.0.1:{service.port}", "--pages", str(proxy.folder / "pages")]
    command += ["--http-port", str(proxy.http_port), "--https-port", str(proxy.https_port)]
    command += ["--profile", str(service.profile)]
    done = subprocess.run([*command, *options], capture_output=True, text=True, env=service.env)
    assert done.returncode == 0, done.stderr
    return proxy.edit(done.stdout)


def start_caddy(service: Service, proxy: Proxy) -> subprocess.Popen[bytes]:
    caddy = require_tool("caddy", "the proxy suite (apt-get install caddy)")
    config = deploy_config("caddy", service, proxy, "--tls", "internal")
    # The admin endpoint's fixed port would clash with other tests; nothing else changes.
    config = config.replace("{\n", "{\n\tadmin off\n", 1)
    (proxy.folder / "Caddyfile").write_text(config, encoding="utf-8")
    env = {
        **os.environ,
        "HOME": str(proxy.folder),
        "XDG_DATA_HOME": str(proxy.folder / "data"),
        "XDG_CONFIG_HOME": str(proxy.folder / "config"),
    }
    command = [caddy, "run", "--config", "Caddyfile", "--adapter", "caddyfile"]
    return _run_proxy(command, env, proxy)


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def debian_nginx_conf(folder: Path) -> str:
    """Debian's own nginx.conf, with its paths in *folder* and as the current user."""
    text = Path("/etc/nginx/nginx.conf").read_text(encoding="utf-8")
    user = pwd.getpwuid(os.getuid()).pw_name
    replaced = {
        "user www-data;": f"user {user};" if os.getuid() == 0 else "",
        "pid /run/nginx.pid;": f"pid {folder}/nginx.pid;",
        "/var/log/nginx/": f"{folder}/log/",
        "/etc/nginx/sites-enabled/": f"{folder}/sites-enabled/",
        "http {": "http {\n"
        + "".join(
            f"\t{kind}_temp_path {folder}/temp-{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
    }
    for old, new in replaced.items():
        assert old in text, f"Debian's nginx.conf has changed: no {old!r}"
        text = text.replace(old, new)
    return text


def start_nginx(service: Service, proxy: Proxy) -> subprocess.Popen[bytes]:
    nginx = require_tool("/usr/sbin/nginx", "the proxy suite (apt-get install nginx)")
    cert, key = self_signed(proxy.folder)
    site = deploy_config(
        "nginx", service, proxy, "--certificate", str(cert), "--certificate-key", str(key)
    )
    (proxy.folder / "log").mkdir()
    (proxy.folder / "sites-enabled").mkdir()
    (proxy.folder / "sites-enabled" / "outreach").write_text(site, encoding="utf-8")
    (proxy.folder / "nginx.conf").write_text(debian_nginx_conf(proxy.folder), encoding="utf-8")
    command = [nginx, "-e", str(proxy.folder / "log" / "early-error.log")]
    command += ["-c", str(proxy.folder / "nginx.conf")]
    return _run_proxy([*command, "-g", "daemon off;"], dict(os.environ), proxy)


def _run_proxy(command: list[str], env: dict[str, str], proxy: Proxy) -> subprocess.Popen[bytes]:
    with (proxy.folder / "stdout").open("wb") as out, (proxy.folder / "stderr").open("wb") as err:
        return subprocess.Popen(command, cwd=proxy.folder, env=env, stdout=out, stderr=err)


@contextmanager
def running_proxy(
    name: str, tmp_path: Path, service: Service, edit: Callable[[str], str] = lambda c: c
) -> Iterator[Proxy]:
    folder, curl_dir = tmp_path / name, tmp_path / "curl"
    folder.mkdir()
    curl_dir.mkdir()
    require_tool("curl", "the proxy suite (apt-get install curl)")
    running = Proxy(name, free_port(), free_port(), folder, curl_dir, edit)
    process = (start_caddy if name == "caddy" else start_nginx)(service, running)
    probe = Client("127.0.0.1")

    def up() -> bool:
        assert process.poll() is None, (folder / "stderr").read_text()
        return running.request("/healthz", probe).status == 200

    try:
        wait_for(up, 60, name)
        yield running
    finally:
        process.send_signal(signal.SIGTERM if name == "caddy" else signal.SIGQUIT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(params=["caddy", "nginx"])
def proxy(request: pytest.FixtureRequest, tmp_path: Path, service: Service) -> Iterator[Proxy]:
    with running_proxy(request.param, tmp_path, service) as running:
        yield running


def form_token(proxy: Proxy, client: Client, path: str = "/report") -> str:
    page = proxy.request(path, client)
    assert page.status == 200, page.body
    token = re.search(r'name="token" value="([^"]+)"', page.body)
    assert token
    return token[1]


def encoded(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def assert_service_headers(answer: Answer) -> None:
    for name, value in security_headers():
        if name != "Cache-Control" or answer.status >= 400:
            assert answer.headers.get(name.lower()) == value, (name, answer.headers)


def assert_no_server_header(answer: Answer) -> None:
    assert "server" not in answer.headers, answer.headers


Visitor = Callable[[], Client]


@pytest.mark.server
@pytest.mark.timeout(300)
def test_proxy_keeps_no_client_address(proxy: Proxy, service: Service) -> None:
    clients: list[Client] = []

    def visitor() -> Client:
        clients.append(Client())
        return clients[-1]

    phases = (reports, bodies_too_long, bad_requests, flood, redirects, unknown_hosts, restart)
    for phase in phases:
        phase(proxy, service, visitor)

    written = searched_files(proxy, service)
    assert written, "the proxy wrote nothing at all"
    for client in clients:
        for needle in (client.address, client.agent):
            holding = [str(p) for p, data in written.items() if needle.encode() in data]
            assert not holding, f"{needle} is in {holding}"


def reports(proxy: Proxy, service: Service, visitor: Visitor) -> None:
    """Over HTTP/2, each from its own address and browser."""
    for _ in range(2):
        client = visitor()
        fields = {**VALID_FORM, "token": form_token(proxy, client)}
        answer = proxy.request("/report", client, data=encoded(fields))
        assert (answer.status, answer.version) == (200, "2"), answer.body
        assert 'id="receipt-code"' in answer.body
        assert_no_server_header(answer)
        assert_service_headers(answer)


def bodies_too_long(proxy: Proxy, service: Service, visitor: Visitor) -> None:
    # Too long for its field: the service's answer, with every word kept.
    client = visitor()
    long_text = "Zorblat " * (MAX_DESCRIPTION // 8 + 10)
    fields = {**VALID_FORM, "description": long_text, "token": form_token(proxy, client)}
    answer = proxy.request("/report", client, data=encoded(fields))
    assert answer.status == 422 and long_text.strip() in answer.body

    # A body of exactly the service's limit reaches it: too long for its field, kept.
    limit = max_body_bytes_from_env(service.env)
    client = visitor()
    fields = {**VALID_FORM, "token": form_token(proxy, client), "description": ""}
    fields["description"] = "Zorblat" * ((limit - len(encoded(fields))) // 7)
    fields["description"] += "x" * (limit - len(encoded(fields)))
    assert len(encoded(fields)) == limit
    answer = proxy.request("/report", client, data=encoded(fields))
    assert answer.status == 422 and fields["description"] in answer.body

    # One byte more than the proxy lets through (a report's text and all its files), or far
    # more: the copy of the service's 413 page, in the path's language.
    allowed = proxy_body_limit_from_env(service.env)
    for path, size, words in (
        ("/report", allowed + 1, "too long to send"),
        ("/es/report", allowed + 1, "demasiado largo"),
        ("/es/report", 2 * allowed, "demasiado largo"),
    ):
        fields = {**VALID_FORM, "description": ""}
        fields["description"] = "x" * (size - len(encoded(fields)))
        answer = proxy.request(path, visitor(), data=encoded(fields))
        assert answer.status == 413, (path, size, answer.body[:300])
        # Caddy answers a body over the limit before reading it, then ends the stream
        # (RST_STREAM, NO_ERROR, as HTTP/2 allows); curl, still sending tens of megabytes, may
        # drop the page after its 413 head (browsers show it).
        assert words in answer.body or (answer.cut and proxy.name == "caddy")
        assert_service_headers(answer)
        assert_no_server_header(answer)


def bad_requests(proxy: Proxy, service: Service, visitor: Visitor) -> None:
    """A request the proxy refuses itself gets the service's page for it, with its status:
    nginx refuses an address longer than its buffers (414; with no address read, the page
    is in the default language); Caddy has nothing at a path under its own pages (404)."""
    if proxy.name == "nginx":
        # Over HTTP/1.1: over HTTP/2 nginx closes the stream instead.
        answer = proxy.request("/es/report?" + "q" * 20_000, visitor(), http1=True)
        assert answer.status == 414, answer
    else:
        answer = proxy.request("/.outreach-errors/nothing.html", visitor())
        assert answer.status == 404, answer
    assert "Something was wrong with the request" in answer.body, answer.body[:300]
    assert_service_headers(answer)
    assert_no_server_header(answer)


def flood(proxy: Proxy, service: Service, visitor: Visitor) -> None:
    """Status look-ups past the limit: each client is limited on its own address, which the
    service learns from the proxy and keeps only in memory."""
    for client in (visitor(), visitor()):
        statuses = [
            proxy.request("/status", client, data=encoded({"code": "R-0000-0000"})).status
            for _ in range(5)
        ]
        assert statuses[0] != 429 and statuses[-1] == 429, statuses


def redirects(proxy: Proxy, service: Service, visitor: Visitor) -> None:
    # A folder's redirect keeps https: the service believes the proxy's X-Forwarded-Proto.
    answer = proxy.request("/privacy", visitor())
    assert answer.status in (301, 302, 307, 308)
    assert answer.headers["location"].startswith(f"https://{HOST}"), answer.headers

    # Plain HTTP is sent to HTTPS.
    answer = proxy.request("/report", visitor(), https=False)
    assert answer.status in (301, 308)
    assert answer.headers["location"] == f"https://{HOST}:{proxy.https_port}/report"
    assert_no_server_header(answer)


def unknown_hosts(proxy: Proxy, service: Service, visitor: Visitor) -> None:
    """No page, over HTTPS (by name or by SNI) or HTTP."""
    for options in ({"host": "other.test"}, {"sni": "other.test"}, {"https": False, "host": "x"}):
        answer = proxy.request("/report", visitor(), **options)  # type: ignore[arg-type]
        assert answer.status in (0, 421), (options, answer)


def restart(proxy: Proxy, service: Service, visitor: Visitor) -> None:
    """The proxy's copy of the service's 503 page, in the path's language, until it is back."""
    service.stop()
    gone = (("/report", "usually still in the form"), ("/es/report", "suele seguir en el"))
    for path, words in gone:
        client = visitor()
        answer = proxy.request(path, client, data=encoded(VALID_FORM))
        assert answer.status == 503 and words in answer.body, answer
        assert answer.version == "2"
        assert_service_headers(answer)
        assert_no_server_header(answer)
        css = proxy.request("/.outreach-errors/form.css", client)
        assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    service.start()
    client = visitor()
    fields = {**VALID_FORM, "token": form_token(proxy, client)}
    assert proxy.request("/report", client, data=encoded(fields)).status == 200


# What the generated configurations leave out, put back: the logs Caddy and nginx keep by
# default (Caddy logs a failed request when no handle_errors answers it). The suite's
# search must then find the visitor.
def _caddy_defaults(config: str) -> str:
    start = config.index("\thandle_errors {")
    config = config[:start] + config[config.index("\n\t}\n", start) + 3 :]
    return config.replace("\t\texclude http.log.access http.log.error http.stdlib\n", "")


DEFAULT_LOGGING: dict[str, Callable[[str], str]] = {
    "caddy": _caddy_defaults,
    "nginx": lambda config: config.replace("    error_log /dev/null;\n", ""),
}


@pytest.mark.server
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["caddy", "nginx"])
def test_the_search_finds_a_visitor_in_the_proxies_default_logs(
    name: str, tmp_path: Path, service: Service
) -> None:
    with running_proxy(name, tmp_path, service, DEFAULT_LOGGING[name]) as proxy:
        stranger = Client()  # Caddy's Go server logs a handshake for no name it knows
        assert proxy.request("/report", stranger, sni="other.test").status == 0
        service.stop()
        client = Client()  # nginx logs a refused upstream connection
        assert proxy.request("/report", client).status in (502, 503)
        service.start()
    written = searched_files(proxy, service)
    found = [
        c for c in (stranger, client) if any(c.address.encode() in d for d in written.values())
    ]
    assert found, sorted(written)


def searched_files(proxy: Proxy, service: Service) -> dict[Path, bytes]:
    """Every file the proxy wrote (logs, state, its output) and the service's output."""
    found = {p: p.read_bytes() for p in proxy.folder.rglob("*") if p.is_file()}
    found[service.output] = service.output.read_bytes()
    assert any(p.name == "stderr" for p in found)
    return found


def guide_site() -> ProxySite:
    """The site of the guide's example: its host, the service's defaults, the demo's languages."""
    limit = proxy_body_limit_from_env({})
    return ProxySite("prevent.riverside.example.org", "127.0.0.1:8000", limit, ("en", "es"))


@pytest.mark.parametrize(("info", "make"), [("caddyfile", caddyfile), ("nginx", nginx_site)])
def test_the_guide_shows_what_the_generator_makes(
    info: str, make: Callable[[ProxySite], str]
) -> None:
    blocks = fenced(PAGE, info)
    assert make(guide_site()).rstrip() in blocks


def test_every_body_limit_in_the_guide_is_the_services() -> None:
    text = (GUIDE / PAGE).read_text(encoding="utf-8")
    limits = re.findall(r"(?:max_size|client_max_body_size) (\S+?);?\n", text)
    # nginx checks the limit again when it serves the 413 page: "0" turns that check off.
    assert limits.count("0") == 1
    limits.remove("0")
    assert len(limits) >= 4 and set(limits) == {str(proxy_body_limit_from_env({}))}


@pytest.mark.parametrize("server", ["caddy", "nginx"])
def test_the_body_limit_follows_the_setting_and_the_pages_are_written(
    server: str, tmp_path: Path
) -> None:
    pages = tmp_path / "pages"
    command = ["deploy", server, "--host", HOST, "--pages", str(pages)]
    env = {"OUTREACH_MAX_BODY_BYTES": "100000", "OUTREACH_MAX_REPORT_FILES_BYTES": "2000000"}
    result = CliRunner().invoke(main, command, env=env)
    assert result.exit_code == 0, result.output
    limits = re.findall(r"(?:max_size |client_max_body_size |> )(\d+)\b", result.stdout)
    assert set(limits) - {"0"} == {"2100000"}  # the text's allowance and the files'

    assert sorted(p.name for p in pages.iterdir()) == [
        "400.en.html", "400.es.html", "413.en.html", "413.es.html", "503.en.html",
        "503.es.html", "form.css",
    ]  # fmt: skip
    spanish = (pages / "413.es.html").read_text(encoding="utf-8")
    assert '<html lang="es"' in spanish and "demasiado largo" in spanish
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in pages.iterdir())


def test_nginx_has_no_internal_authority(tmp_path: Path) -> None:
    command = ["deploy", "nginx", "--host", HOST, "--tls", "internal", "--pages", str(tmp_path)]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1 and "--tls internal is Caddy's" in result.output
