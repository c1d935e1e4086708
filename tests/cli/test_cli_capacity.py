"""``perfprim capacity``: USL fit from a CSV, Erlang C staffing, growth runway."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.cli.conftest import run_cli


def _usl(n: float, sigma: float = 0.05, kappa: float = 0.0005, lam: float = 1000.0) -> float:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def test_usl_recovers_a_known_model(tmp_path: Path) -> None:
    """Exact USL points (sigma 0.05, kappa 0.0005): the fit, the peak sqrt((1-s)/k), the knee."""
    levels = [1, 2, 4, 8, 16, 32, 64]
    (tmp_path / "steps.csv").write_text(
        "users,rps\n" + "".join(f"{n},{_usl(n):.6f}\n" for n in levels)
    )
    result = run_cli(
        "capacity",
        "usl",
        "steps.csv",
        "--predict",
        "128",
        "--plot",
        "usl.svg",
        "--json",
        cwd=tmp_path,
    )
    assert 0 == result.code, result.err
    data = result.json()["result"]
    assert 0.05 == pytest.approx(data["sigma"], rel=1e-4)
    assert 0.0005 == pytest.approx(data["kappa"], rel=1e-4)
    assert math.sqrt(0.95 / 0.0005) == pytest.approx(data["peak_concurrency"], rel=1e-4)
    # the knee maximises X(N)^2 / N: found here by a fine grid search
    grid = max((n / 1000 for n in range(1000, 100_000)), key=lambda n: _usl(n) ** 2 / n)
    assert grid == pytest.approx(data["knee_concurrency"], abs=2e-3)
    assert [1, 2, 4, 8, 16, 32, 64, 128] == [p["concurrency"] for p in data["predictions"]]
    assert None is data["predictions"][-1]["measured"]
    assert _usl(128) == pytest.approx(data["predictions"][-1]["fitted"], rel=1e-4)
    assert b"<svg" in (tmp_path / "usl.svg").read_bytes()[:400]
    human = run_cli("capacity", "usl", "steps.csv", cwd=tmp_path)
    assert "knee (run below)" in human.out


def test_usl_without_header(tmp_path: Path) -> None:
    """A CSV without a header: the first two columns."""
    (tmp_path / "s.csv").write_text("".join(f"{n},{_usl(n)}\n" for n in (1, 2, 3, 4, 6, 8)))
    result = run_cli("capacity", "usl", "s.csv", "--json", cwd=tmp_path)
    assert 6 == result.json()["result"]["points"]


def _erlang_c(servers: int, load: float) -> float:
    """Erlang C by its textbook closed form (Kleinrock 1975, eq. 3.40)."""
    top = load**servers / math.factorial(servers) * servers / (servers - load)
    bottom = sum(load**k / math.factorial(k) for k in range(servers)) + top
    return top / bottom


def test_erlang_staffing_matches_the_closed_form() -> None:
    """100/s x 180 ms = 18 Erlangs; 80% within 20 ms needs the first c meeting 1 - C e^-(c-A)t/S."""
    result = run_cli(
        "capacity",
        "erlang",
        "--rate",
        "6000/min",
        "--aht",
        "180ms",
        "--target-wait",
        "20ms",
        "--service-level",
        "80%",
        "--json",
    )
    assert 0 == result.code, result.err
    data = result.json()["result"]
    assert 18.0 == pytest.approx(data["offered_load"])

    def level(c: int) -> float:
        return 1 - _erlang_c(c, 18.0) * math.exp(-(c - 18.0) * 0.02 / 0.18)

    needed = next(c for c in range(19, 60) if level(c) >= 0.8)
    assert needed == data["servers_needed"]
    by_servers = {o["servers"]: o for o in data["options"]}
    assert level(needed) == pytest.approx(by_servers[needed]["service_level"])
    assert _erlang_c(needed, 18.0) == pytest.approx(by_servers[needed]["probability_of_waiting"])
    assert [False, True] == [
        by_servers[needed - 1]["meets_target"],
        by_servers[needed]["meets_target"],
    ]


def test_project_compound_and_linear() -> None:
    """15%/month from 1200 to 5000: ln(5000/1200)/ln(1.15) months; +150/month: 3800/150."""
    compound = run_cli(
        "capacity",
        "project",
        "--now",
        "1200",
        "--growth",
        "15%/month",
        "--capacity",
        "5000",
        "--json",
    ).json()["result"]
    assert math.log(5000 / 1200) / math.log(1.15) == pytest.approx(
        compound["periods_until_exhausted"]
    )
    assert 1200 * 1.15**3 == pytest.approx(compound["schedule"][3]["load"])
    linear = run_cli(
        "capacity",
        "project",
        "--now",
        "1200",
        "--growth",
        "+150/month",
        "--capacity",
        "5000",
        "--periods",
        "3",
        "--json",
    ).json()["result"]
    assert 3800 / 150 == pytest.approx(linear["periods_until_exhausted"])
    assert [0, 1, 2, 3] == [row["period"] for row in linear["schedule"]]
    human = run_cli(
        "capacity", "project", "--now", "1200", "--growth", "15%/month", "--capacity", "5000"
    )
    assert "reached after 10.2 months" in human.out
