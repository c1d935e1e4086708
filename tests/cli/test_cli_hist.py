"""``perfprim hist``: the three formats, lossless merge, diff with intervals, plots."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from perfprim.histogram import LatencyHistogram
from tests.cli.conftest import run_cli
from tests.cli.data import lognormal_run, merged, write_log


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, list[LatencyHistogram]]:
    """base.hlog, same.hlog (same distribution, other seed), slow.hlog (+22% median)."""
    made = {
        "base": lognormal_run(-4.0, seed=1),
        "same": lognormal_run(-4.0, seed=2),
        "slow": lognormal_run(-3.8, seed=3),
    }
    for name, histograms in made.items():
        write_log(tmp_path / f"{name}.hlog", histograms)
    return made


def test_show_reads_a_log_a_histoblob_and_a_table(
    tmp_path: Path, runs: dict[str, list[LatencyHistogram]]
) -> None:
    """The same histogram as .hlog, histoblob and .hgrm gives the same count and percentiles."""
    whole = merged(runs["base"])
    (tmp_path / "base.txt").write_text(whole.encode() + "\n")
    (tmp_path / "base.hgrm").write_text(whole.percentile_distribution(output_unit=1e-3))
    expected = whole.percentiles([50.0, 99.0])
    for name, fmt in (("base.hlog", "hlog"), ("base.txt", "histoblob")):
        data = run_cli(
            "hist", "show", name, "--percentiles", "50,99", "--json", cwd=tmp_path
        ).json()["result"]
        assert (fmt, 20_000, False) == (data["format"], data["count"], data["lossy"])
        assert [expected[50.0], expected[99.0]] == [p["seconds"] for p in data["percentiles"]]
    table = run_cli(
        "hist", "show", "base.hgrm", "--percentiles", "50,99", "--json", cwd=tmp_path
    ).json()["result"]
    assert ("hgrm", 20_000, True) == (table["format"], table["count"], table["lossy"])
    # a table is read at its rows: the first row holding the rank's value (the table's own value)
    rows = [line.split() for line in (tmp_path / "base.hgrm").read_text().splitlines()[2:]]
    rows = [(float(r[0]) / 1e3, int(r[2])) for r in rows if r and not r[0].startswith("#")]
    for row, p in zip(table["percentiles"], (50.0, 99.0), strict=True):
        rank = round(p / 100 * 20_000)
        at_row = next(value for value, cumulative in rows if cumulative >= rank)
        assert at_row == pytest.approx(row["seconds"], rel=1e-3)
        assert expected[p] <= row["seconds"] * (1 + 1e-3)
    log = run_cli("hist", "show", "base.hlog", cwd=tmp_path)
    assert "interval log, 4 interval(s)" in log.out
    assert "p99.999" in log.out


def test_unit_option_reads_nanosecond_histoblobs(tmp_path: Path) -> None:
    """--unit ns: a histoblob recorded in nanoseconds reads back in seconds."""
    h = LatencyHistogram(unit=1e-9, lowest=1e-9, highest=10.0)
    h.record(0.002, count=10)
    (tmp_path / "ns.txt").write_text(h.encode())
    data = run_cli("hist", "show", "ns.txt", "--unit", "ns", "--json", cwd=tmp_path).json()
    assert 0.002 == pytest.approx(data["result"]["max_seconds"], rel=1e-3)


def test_merge_is_lossless(tmp_path: Path, runs: dict[str, list[LatencyHistogram]]) -> None:
    """Merging two logs equals recording everything in one histogram: same V2 encoding."""
    expected = merged(runs["base"] + runs["same"])
    result = run_cli(
        "hist", "merge", "base.hlog", "same.hlog", "-o", "all.txt", "--json", cwd=tmp_path
    )
    assert 0 == result.code
    assert 40_000 == result.json()["result"]["count"]
    written = LatencyHistogram.decode((tmp_path / "all.txt").read_text().strip())
    assert expected.encode() == written.encode()
    result = run_cli("hist", "merge", "base.hlog", "same.hlog", "-o", "all.hlog", cwd=tmp_path)
    assert 0 == result.code
    again = run_cli("hist", "show", "all.hlog", "--json", cwd=tmp_path).json()["result"]
    assert (1, 40_000) == (again["intervals"], again["count"])
    assert expected.percentile(99.9) == again["percentiles"][-3]["seconds"]
    run_cli("hist", "merge", "base.hlog", "-o", "all.hgrm", cwd=tmp_path)
    assert (tmp_path / "all.hgrm").read_text().startswith("       Value     Percentile")


def test_merge_refuses_what_would_lose_values(tmp_path: Path) -> None:
    """Different precision, or a .hgrm summary: exit 2 with the reason."""
    a = LatencyHistogram(significant_figures=3)
    b = LatencyHistogram(significant_figures=2)
    a.record(0.01)
    b.record(0.01)
    (tmp_path / "a.txt").write_text(a.encode())
    (tmp_path / "b.txt").write_text(b.encode())
    (tmp_path / "a.hgrm").write_text(a.percentile_distribution())
    layouts = run_cli("hist", "merge", "a.txt", "b.txt", "-o", "m.txt", cwd=tmp_path)
    assert 2 == layouts.code
    assert "not lossless" in layouts.err
    table = run_cli("hist", "merge", "a.txt", "a.hgrm", "-o", "m.txt", cwd=tmp_path)
    assert 2 == table.code
    assert "cannot be merged losslessly" in table.err
    assert not (tmp_path / "m.txt").exists()


def test_diff_flags_a_real_regression(
    tmp_path: Path, runs: dict[str, list[LatencyHistogram]]
) -> None:
    """+22% at every percentile: exit 1, each interval of the change excludes 0."""
    result = run_cli("hist", "diff", "base.hlog", "slow.hlog", "--json", cwd=tmp_path)
    assert 1 == result.code
    document = result.json()
    assert (False, True) == (document["ok"], document["result"]["regressed"])
    rows = document["result"]["percentiles"]
    assert [50.0, 90.0, 99.0, 99.9] == [r["percentile"] for r in rows]
    for row in rows:
        assert "regressed" == row["verdict"]
        assert 0 < row["change_low_seconds"] <= row["new_seconds"] - row["base_seconds"]
        assert row["new_seconds"] - row["base_seconds"] <= row["change_high_seconds"]
    assert "slow.hlog regressed against base.hlog: p50 +" in result.err
    reverse = run_cli("hist", "diff", "slow.hlog", "base.hlog", "--json", cwd=tmp_path)
    assert 0 == reverse.code
    assert {"improved"} == {r["verdict"] for r in reverse.json()["result"]["percentiles"]}


def test_diff_same_distribution_is_no_change(
    tmp_path: Path, runs: dict[str, list[LatencyHistogram]]
) -> None:
    """Two samples of one distribution: exit 0, 'no change detected' everywhere."""
    result = run_cli("hist", "diff", "base.hlog", "same.hlog", cwd=tmp_path)
    assert 0 == result.code
    assert 4 == result.out.count("no change detected")
    assert "" == result.err


def test_diff_tolerance_and_too_few_values(
    tmp_path: Path, runs: dict[str, list[LatencyHistogram]]
) -> None:
    """A 25% tolerance hides a +22% move; p99.999 of 20,000 values cannot be bounded."""
    tolerant = run_cli(
        "hist",
        "diff",
        "base.hlog",
        "slow.hlog",
        "--tolerance",
        "25%",
        "--percentiles",
        "50,99.999",
        "--json",
        cwd=tmp_path,
    )
    assert 0 == tolerant.code
    verdicts = [r["verdict"] for r in tolerant.json()["result"]["percentiles"]]
    assert ["no change detected", "too few values"] == verdicts
    high = tolerant.json()["result"]["percentiles"][1]["change_high_seconds"]
    assert "inf" == high


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot_writes_the_image_and_reports_breaches(
    tmp_path: Path, runs: dict[str, list[LatencyHistogram]], suffix: str
) -> None:
    """The image is written (PNG or SVG signature); runs over a limit are reported."""
    result = run_cli(
        "hist",
        "plot",
        "base.hlog",
        "slow.hlog",
        "-o",
        f"p.{suffix}",
        "--slo",
        "60ms@99",
        "--json",
        cwd=tmp_path,
    )
    assert 0 == result.code, result.err
    data = result.json()["result"]
    assert suffix == data["format"]
    head = (tmp_path / f"p.{suffix}").read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if suffix == "png" else b"<svg" in head
    slow_p99 = merged(runs["slow"]).percentile(99)
    assert slow_p99 > 0.06  # the slow run misses 60ms@99, the base run meets it
    assert [("slow.hlog", slow_p99)] == [(b["file"], b["seconds"]) for b in data["breaches"]]
    assert math.isclose(0.06, data["slos"][0]["seconds"])
