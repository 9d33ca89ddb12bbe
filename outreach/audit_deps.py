"""`make audit`: check every pinned dependency against a vulnerability database.

Runs pip-audit on the lock file (constraints.txt) without resolving anything, then judges its
JSON report, because pip-audit's own exit status is not enough: when the database cannot be
reached it either crashes, or marks every package "skipped" and still says "No known
vulnerabilities found". Here an audit that did not check every package is never a pass:

* every package checked, none vulnerable: exit 0;
* a known vulnerability: exit 1, always (``--offline`` does not hide it);
* the database could not be reached, or some package was not checked: exit 2 with a
  sentence saying so, or, with ``--offline`` (``make audit OFFLINE=1``), exit 0 with a
  sentence saying that the check was SKIPPED.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSED, VULNERABLE, NOT_CHECKED = 0, 1, 2


@dataclass(frozen=True)
class Verdict:
    status: int
    message: str


def _reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return ((errors or lines or ["pip-audit gave no reason"])[-1])[:300]


def judge(report: dict[str, Any] | None, stderr: str, requirements: str) -> Verdict:
    """What pip-audit's JSON *report* (None: it wrote none) means for the pinned packages."""
    if report is None:
        return Verdict(
            NOT_CHECKED,
            "the vulnerability database could not be reached, so no package was checked "
            f"({_reason(stderr)})",
        )
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    if vulnerable:
        lines = []
        for dependency in vulnerable:
            for vuln in dependency["vulns"]:
                ids = ", ".join([vuln["id"], *vuln.get("aliases", [])])
                fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed release yet"
                lines.append(
                    f"  {dependency['name']} {dependency['version']}: {ids} (fixed in {fixed})"
                )
        if skipped:
            lines.append(f"  ({len(skipped)} more packages could not be checked)")
        return Verdict(
            VULNERABLE,
            f"known vulnerabilities in packages pinned in {requirements}:\n" + "\n".join(lines),
        )
    if skipped or not dependencies:
        example = skipped[0]["skip_reason"] if skipped else "the report lists no package"
        return Verdict(
            NOT_CHECKED,
            f"the vulnerability database could not be reached: {len(skipped)} of "
            f"{len(dependencies)} packages pinned in {requirements} were not checked "
            f"({example})",
        )
    return Verdict(
        PASSED,
        f"no known vulnerabilities in the {len(dependencies)} packages pinned in {requirements}",
    )


def run_pip_audit(
    requirements: Path,
    service: str,
    osv_url: str | None,
    timeout: int,
    cache_dir: Path | None,
) -> tuple[dict[str, Any] | None, str]:
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "audit.json"
        command = [
            sys.executable,
            "-m",
            "pip_audit",
            "--requirement",
            str(requirements),
            "--disable-pip",
            "--no-deps",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--output",
            str(output),
            "--progress-spinner",
            "off",
            "--timeout",
            str(timeout),
        ]
        if osv_url:
            command += ["--osv-url", osv_url]
        if cache_dir:
            command += ["--cache-dir", str(cache_dir)]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout * 40, check=False
            )
        except subprocess.TimeoutExpired:
            return None, f"pip-audit did not finish within {timeout * 40} seconds"
        if not output.is_file():
            return None, result.stderr
        try:
            report = json.loads(output.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None, "pip-audit wrote a report that is not JSON"
        return report if isinstance(report, dict) else None, result.stderr


def audit(
    requirements: Path,
    offline: bool = False,
    service: str = "pypi",
    osv_url: str | None = None,
    timeout: int = 15,
    cache_dir: Path | None = None,
) -> Verdict:
    """Audit *requirements*; with *offline*, a database that cannot be reached is a skip."""
    shown = requirements.name
    if importlib.util.find_spec("pip_audit") is None:
        verdict = Verdict(
            NOT_CHECKED,
            "pip-audit is not installed here; run: pip install -c constraints.txt -e '.[dev]'",
        )
    elif not requirements.is_file():
        verdict = Verdict(NOT_CHECKED, f"there is no {requirements} to audit")
    else:
        report, stderr = run_pip_audit(requirements, service, osv_url, timeout, cache_dir)
        verdict = judge(report, stderr, shown)
    if verdict.status == PASSED:
        return Verdict(PASSED, f"Dependency audit passed: {verdict.message}.")
    if verdict.status == VULNERABLE:
        return Verdict(VULNERABLE, f"Dependency audit FAILED: {verdict.message}")
    if offline:
        return Verdict(
            PASSED,
            f"Dependency audit SKIPPED (offline): {verdict.message}. The pinned packages were "
            "NOT checked for known vulnerabilities; run `make audit` where the database is "
            "reachable.",
        )
    return Verdict(
        NOT_CHECKED,
        f"Dependency audit FAILED: {verdict.message}. Run `make audit` where the database is "
        "reachable, or `make audit OFFLINE=1` to skip the check knowingly.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m outreach.audit_deps",
        description="Check the pinned dependencies against a vulnerability database.",
    )
    parser.add_argument("--requirements", type=Path, default=Path("constraints.txt"))
    parser.add_argument(
        "--offline",
        action="store_true",
        help="if the database cannot be reached, say the check was skipped and exit 0",
    )
    parser.add_argument("--service", choices=["pypi", "osv"], default="pypi")
    parser.add_argument("--osv-url", default=None, help="OSV query URL (with --service osv)")
    parser.add_argument("--timeout", type=int, default=15, help="seconds per request")
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    verdict = audit(
        args.requirements, args.offline, args.service, args.osv_url, args.timeout, args.cache_dir
    )
    print(verdict.message, file=sys.stdout if verdict.status == PASSED else sys.stderr)
    return verdict.status


if __name__ == "__main__":
    sys.exit(main())
