"""Print perfprim / anchor ratios from a benchmark run and check them against budgets.

Usage (``nox -s bench`` does this for you)::

    python benchmarks/report.py --results benchmarks/.results [--check] [--pytest-args ...]

With ``--check`` a ratio over its budget, or a metric outside its limits, is
re-measured once (only the benchmarks behind it, in a fresh pytest run) before
the check fails, so that noise alone does not fail it. Budgets live in
``benchmarks/budgets/*.toml``::

    [[ratio]]                    # median(perfprim) / median(anchor) <= max
    group = "import"
    perfprim = "perfprim"
    anchor = "cachetools"
    max = 3.0

    [[limit]]                    # a recorded metric within [min, max]
    metric = "cache.stampede.threads.loads"
    max = 1
    min = 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Row:
    group: str
    perfprim: str
    anchor: str
    perfprim_ns: float
    anchor_ns: float
    budget: float | None

    @property
    def ratio(self) -> float:
        return self.perfprim_ns / self.anchor_ns

    @property
    def ok(self) -> bool:
        return self.budget is None or self.ratio <= self.budget


def load_medians(path: Path) -> dict[str, dict[str, tuple[float, str]]]:
    """Map group -> candidate -> (median ns per operation, pytest node id)."""
    if not path.exists():  # the files run recorded metrics only
        return {}
    data = json.loads(path.read_text())
    groups: dict[str, dict[str, tuple[float, str]]] = {}
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info", {})
        candidate = extra.get("candidate", bench["name"])
        inner = extra.get("inner", 1)
        median_ns = bench["stats"]["median"] * 1e9 / inner
        groups.setdefault(bench["group"] or bench["name"], {})[candidate] = (
            median_ns,
            bench["fullname"],
        )
    return groups


def load_budgets(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ratios: list[dict[str, Any]] = []
    limits: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        ratios.extend(data.get("ratio", []))
        limits.extend(data.get("limit", []))
    return ratios, limits


def build_rows(
    groups: dict[str, dict[str, tuple[float, str]]], budgets: list[dict[str, Any]]
) -> list[Row]:
    budget_of = {(b["group"], b["perfprim"], b["anchor"]): float(b["max"]) for b in budgets}
    rows = []
    for group, candidates in groups.items():
        ours = [c for c in candidates if c.startswith("perfprim")]
        theirs = [c for c in candidates if not c.startswith("perfprim")]
        for mine in ours:
            for anchor in theirs:
                rows.append(
                    Row(
                        group,
                        mine,
                        anchor,
                        candidates[mine][0],
                        candidates[anchor][0],
                        budget_of.get((group, mine, anchor)),
                    )
                )
    return rows


def format_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:,.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:,.2f} us"
    return f"{ns:,.0f} ns"


def render(rows: list[Row], metrics: dict[str, Any], limits: list[dict[str, Any]]) -> str:
    lines = [
        "| group | perfprim | anchor | perfprim median | anchor median | ratio | budget | |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        budget = f"<= {r.budget:g}" if r.budget is not None else ""
        status = "" if r.budget is None else ("ok" if r.ok else "OVER")
        lines.append(
            f"| {r.group} | {r.perfprim} | {r.anchor} | {format_ns(r.perfprim_ns)} | "
            f"{format_ns(r.anchor_ns)} | {r.ratio:.3f}x | {budget} | {status} |"
        )
    if metrics:
        limit_of = {lim["metric"]: lim for lim in limits}
        lines += ["", "| metric | value | unit | limit | | note |", "|---|---:|---|---|---|---|"]
        for name in sorted(metrics):
            m = metrics[name]
            lim = limit_of.get(name)
            bound = ""
            status = ""
            if lim is not None:
                bound = f"[{lim.get('min', '')}, {lim.get('max', '')}]"
                status = "ok" if metric_ok(m["value"], lim) else "OVER"
            lines.append(
                f"| {name} | {m['value']:.6g} | {m['unit']} | {bound} | {status} | {m['note']} |"
            )
    return "\n".join(lines)


def metric_ok(value: float, limit: dict[str, Any]) -> bool:
    if "max" in limit and value > limit["max"]:
        return False
    return not ("min" in limit and value < limit["min"])


def rerun(nodeids: list[str], results: Path, pytest_args: list[str]) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={results / 'rerun.json'}",
        *pytest_args,
        *sorted(set(nodeids)),
    ]
    print("re-measuring:", " ".join(sorted(set(nodeids))), flush=True)
    subprocess.run(cmd, check=True, cwd=HERE.parent, env=_merge_env())


def _merge_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PERFPRIM_BENCH_MERGE_METRICS"] = "1"
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / ".results")
    parser.add_argument("--budgets", type=Path, default=HERE / "budgets")
    parser.add_argument("--check", action="store_true", help="fail when a budget is exceeded")
    parser.add_argument("--pytest-args", nargs=argparse.REMAINDER, default=[])
    args = parser.parse_args(argv)

    ratio_budgets, limits = load_budgets(args.budgets)
    groups = load_medians(args.results / "bench.json")
    metrics_path = args.results / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    rows = build_rows(groups, ratio_budgets)

    if args.check:
        failing = [r for r in rows if not r.ok]
        failing_metrics = [
            lim
            for lim in limits
            if lim["metric"] in metrics and not metric_ok(metrics[lim["metric"]]["value"], lim)
        ]
        if failing or failing_metrics:
            # Re-measure only what failed: the failing ratios' benchmarks and the
            # tests that recorded the failing metrics; then only those are replaced
            # (a noisy re-run must not fail a ratio that held in the full run).
            nodeids = [nodeid for r in failing for _, nodeid in groups[r.group].values()]
            nodeids += [
                metrics[lim["metric"]]["nodeid"]
                for lim in failing_metrics
                if "nodeid" in metrics[lim["metric"]]
            ]
            rerun(nodeids, args.results, args.pytest_args)
            fresh = load_medians(args.results / "rerun.json")
            failing_groups = {r.group for r in failing}
            for group, cands in fresh.items():
                if group in failing_groups:
                    groups[group].update(cands)
            metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
            rows = build_rows(groups, ratio_budgets)

    print(render(rows, metrics, limits))
    (args.results / "ratios.json").write_text(
        json.dumps(
            [
                {
                    "group": r.group,
                    "perfprim": r.perfprim,
                    "anchor": r.anchor,
                    "perfprim_ns": r.perfprim_ns,
                    "anchor_ns": r.anchor_ns,
                    "ratio": r.ratio,
                    "budget": r.budget,
                }
                for r in rows
            ],
            indent=2,
        )
    )
    missing = [
        b
        for b in ratio_budgets
        if not any(
            (r.group, r.perfprim, r.anchor) == (b["group"], b["perfprim"], b["anchor"])
            for r in rows
        )
    ]
    for b in missing:
        print(
            f"warning: budget for {b['group']!r} {b['perfprim']} vs {b['anchor']} was not measured"
        )
    if args.check:
        over = [r for r in rows if not r.ok]
        over_metrics = [
            lim["metric"]
            for lim in limits
            if lim["metric"] in metrics and not metric_ok(metrics[lim["metric"]]["value"], lim)
        ]
        unmeasured = [lim["metric"] for lim in limits if lim["metric"] not in metrics]
        for r in over:
            print(f"OVER BUDGET: {r.group}: {r.perfprim} / {r.anchor} = {r.ratio:.3f} > {r.budget}")
        for name in over_metrics:
            print(f"OVER LIMIT: {name}")
        for name in unmeasured:
            print(f"NOT MEASURED: {name}")
        if over or over_metrics or missing or unmeasured:
            return 1
        print("all budgets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
