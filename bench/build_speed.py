"""Build-speed benchmark: the generator against a plain `mkdocs build` of the same pages.

The bar (issue 2): building the demo agency costs at most 1.25x a plain MkDocs build of
the same staged pages, one build per language, measured in the same run. Like is
compared with like:

- in-process: ``build_site(load_profile(), out)`` against MkDocs' own ``build()`` of each
  language's staged config, one after the other, in this process;
- subprocess: ``outreach build`` against ``python -m mkdocs build -q -f <config>`` for each
  language in sequence, the times summed.

The generator also lays out the printed materials (PDF), which plain MkDocs does not make;
a rebuild copies them from the last build while what they are made of is unchanged, as
in these runs. One more figure, outside the bar, is a build with that cache emptied first:
what a first build, or a build after a change to the materials, costs.

Each figure is the median of 5 runs after one warm-up run. Run it with ``make bench``.
Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from outreach.loader import load_profile
from outreach.site.materials import cache_folder
from outreach.site.sitegen import build_site, free_cores, plan_language

BAR = 1.25
OUTREACH = Path(sys.executable).with_name("outreach")


def median_seconds(actions: dict[str, Callable[[], None]], runs: int) -> dict[str, float]:
    """The median time of each action; the actions take turns, so a change in the machine's
    load during the run weighs on all of them alike."""
    for action in actions.values():
        action()  # warm-up: imports, file-system caches
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def run_quietly(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def mkdocs_in_process(config_file: Path) -> None:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    build(load_config(config_file=str(config_file)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure")
    args = parser.parse_args()

    loaded = load_profile()
    languages = loaded.profile.languages
    cores = free_cores()
    # MkDocs logs each build at INFO; the figures are what this script prints.
    logging.getLogger("mkdocs").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="outreach-bench-") as tmp:
        work = Path(tmp)
        out = work / "generator-site"
        cli_out = work / "cli-site"
        # The generator's own staging, made once: the plain builds use exactly these pages.
        plans = [
            plan_language(loaded, lang, work / "plain", work / "plain" / "site")
            for lang in languages
        ]
        configs = [plan.config_file for plan in plans]

        def generator() -> None:
            build_site(loaded, out)

        def generator_cold() -> None:
            shutil.rmtree(cache_folder(out), ignore_errors=True)
            build_site(loaded, out)

        def plain() -> None:
            for config in configs:
                mkdocs_in_process(config)

        def generator_cli() -> None:
            run_quietly([str(OUTREACH), "build", "--out", str(cli_out)])

        def plain_cli() -> None:
            for config in configs:
                run_quietly([sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(config)])

        medians = median_seconds(
            {
                "generator": generator,
                "generator_cold": generator_cold,
                "plain": plain,
                "generator_cli": generator_cli,
                "plain_cli": plain_cli,
            },
            args.runs,
        )
        figures = [
            ("in-process", medians["generator"], medians["plain"]),
            ("subprocess", medians["generator_cli"], medians["plain_cli"]),
        ]
        shutil.rmtree(work / "plain", ignore_errors=True)

    cores_after = free_cores()
    parallel = "yes" if min(cores, cores_after) > 1 and len(languages) > 1 else "no"
    if (cores > 1) != (cores_after > 1):
        parallel = "varied with the load"
    print(
        f"Demo agency, languages {', '.join(languages)}; free cores: {cores} at the start, "
        f"{cores_after} at the end (languages built in parallel: {parallel}); "
        f"median of {args.runs} runs after one warm-up.\n"
    )
    header = f"{'mode':<11} {'generator':>10} {'plain mkdocs':>13} {'ratio':>7} {'bar':>7}  result"
    print(header)
    print("-" * len(header))
    failed = False
    for mode, generated, plain_seconds in figures:
        ratio = generated / plain_seconds
        verdict = "PASS" if ratio <= BAR else "FAIL"
        failed |= verdict == "FAIL"
        print(
            f"{mode:<11} {generated:>9.3f}s {plain_seconds:>12.3f}s {ratio:>6.2f}x "
            f"{'<=' + format(BAR, '.2f') + 'x':>7}  {verdict}"
        )
    cold = medians["generator_cold"]
    print(
        f"\nin-process, materials laid out again (no cache): {cold:.3f}s, "
        f"{cold - medians['generator']:+.3f}s beside a rebuild (not held to the bar)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
