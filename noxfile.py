"""Developer sessions: ``nox -s tests lint typing docs bench``.

Sessions reuse their virtualenvs (``-r`` is the default here) and install the
package with every extra, so the tests talk to real Redis, OTel and Prometheus.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typing", "docs", "unasync-check"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str, extras: str = "all") -> None:
    """Install perfprim (editable, with extras) and the named dependency groups."""
    deps: list[str] = []
    for group in groups:
        deps.extend(nox.project.dependency_groups(PYPROJECT, group))
    session.install("-e", f".[{extras}]", *deps)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite with coverage against real Redis servers."""
    install(session, "test")
    session.run("coverage", "erase")
    # One worker per core; a file's tests stay on one worker (they share its servers).
    session.run(
        "coverage", "run", "-m", "pytest", "-n", "auto", "--dist", "loadfile",
        "-m", "not solo", *session.posargs,
    )  # fmt: skip
    # Then, alone on the machine, the tests that time a recovery under injected faults: on
    # a 2-core runner another worker's servers starve their 0.2 s Redis timeouts (CI once
    # saw a cluster-failover probe time out 4 s after the cluster was whole). Exit code 5
    # (nothing selected) is fine only when posargs chose other tests: a bare run (CI's) that
    # finds no solo test has lost them.
    session.run(
        "coverage", "run", "-m", "pytest", "-m", "solo", *session.posargs,
        success_codes=[0, 5] if session.posargs else [0],
    )  # fmt: skip
    session.run("coverage", "combine", success_codes=[0, 1])
    # The floor holds for the whole suite; a run of some tests (posargs) reports without it.
    floor = [] if session.posargs else ["--fail-under=90"]
    session.run("coverage", "report", *floor)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff check and ruff format --check."""
    install(session, "lint", extras="all")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(name="unasync-check")
def unasync_check(session: nox.Session) -> None:
    """Fail when the generated sync cache (cache/_sync) differs from what its async source makes."""
    install(session, "lint", extras="all")
    session.run("python", "scripts/unasync.py", "--check")


@nox.session
def typing(session: nox.Session) -> None:
    """Mypy --strict on the package and on a file that uses the public API."""
    install(session, "typing")
    session.run("mypy", "src", "tests/typing")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs with warnings as errors and run every doc example."""
    install(session, "docs")
    out = ROOT / "docs" / "_build"
    shutil.rmtree(out, ignore_errors=True)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", str(out / "html"))
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "--doctest-glob=*.md",
        "--doctest-modules",
        "-o",
        "testpaths=",
        "docs",
        "src/perfprim",
    )


@nox.session(name="bench-smoke")
def bench_smoke(session: nox.Session) -> None:
    """Run every benchmark once, untimed, so CI notices a broken benchmark."""
    install(session, "bench")
    session.run(
        "pytest", "-q", "-p", "no:cacheprovider",
        "-o", "python_files=bench_*.py", "-o", "testpaths=",
        "--benchmark-disable", "benchmarks",
        env={"PERFPRIM_BENCH_RESULTS": str(ROOT / "benchmarks" / ".results-smoke")},
    )  # fmt: skip


@nox.session
def demo(session: nox.Session) -> None:
    """Run ``perfprim demo`` (a second way to the README's first command)."""
    install(session, extras="demo")
    session.run("perfprim", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks side by side, print ratios; ``-- --check`` enforces budgets."""
    install(session, "bench")
    check = "--check" in session.posargs
    pytest_args = [a for a in session.posargs if a != "--check"]
    results = ROOT / "benchmarks" / ".results"
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    session.env["PERFPRIM_BENCH_RESULTS"] = str(results)
    common = [
        "-p",
        "no:cacheprovider",
        "-o",
        "python_files=bench_*.py",
        "-o",
        "testpaths=",
        "--benchmark-disable-gc",
        "--benchmark-min-rounds=15",
        "--benchmark-max-time=0.5",
        "--benchmark-sort=name",
        "--benchmark-columns=median,iqr,ops,rounds",
        # A file that only records metrics runs no pytest-benchmark benchmark: fine here.
        "-W",
        "ignore::pytest_benchmark.logger.PytestBenchmarkWarning",
    ]
    session.run(
        "pytest",
        *common,
        f"--benchmark-json={results / 'bench.json'}",
        *(pytest_args or ["benchmarks"]),
    )
    session.run(
        "python",
        "benchmarks/report.py",
        "--results",
        str(results),
        *(["--check"] if check else []),
        "--pytest-args",
        *common,
    )
    if os.environ.get("CI"):
        session.log(f"raw results in {results}")
