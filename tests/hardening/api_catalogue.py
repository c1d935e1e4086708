"""Every public function, constructor and method of slo, capacity, histogram, with valid arguments.

One entry per callable: a name, a function taking keyword arguments, and a
valid value for each argument. The bad-input sweep
(``benchmarks/bad_input_sweep.py``) and the Hypothesis property test
(``test_bad_input_property.py``) replace one argument at a time with a bad
value and check what happens. Only the public API is used, so the same
catalogue runs against an older checkout of the package (the sweep's
"before" figures).

A method entry builds a fresh instance for every call, so one bad call
cannot poison the next.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BAD_VALUES", "CATALOGUE", "Entry", "bad_calls", "is_sane"]


@dataclass(frozen=True)
class Entry:
    """One public callable and a valid value for each of its arguments."""

    name: str
    call: Callable[..., Any]
    valid: dict[str, Any]
    sequences: frozenset[str] = field(default_factory=frozenset)
    """Arguments that are sequences of numbers: their elements are swept too."""


class _Object:
    def __repr__(self) -> str:
        return "object()"


BAD_VALUES: tuple[tuple[str, Any], ...] = (
    ("None", None),
    ("True", True),
    ("False", False),
    ("'1'", "1"),
    ("''", ""),
    ("[]", []),
    ("{}", {}),
    ("object()", _Object()),
    ("nan", math.nan),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("-1", -1),
    ("-1.5", -1.5),
    ("0", 0),
    ("1e308", 1e308),
    ("2**63", 2**63),
    ("10**400", 10**400),
    ("-10**400", -(10**400)),
)
"""Bad (or at least suspicious) values: wrong types, bool, NaN, infinities, signs, huge ints."""

_BAD_ELEMENTS: tuple[tuple[str, Any], ...] = (
    ("None", None),
    ("True", True),
    ("'1'", "1"),
    ("nan", math.nan),
    ("inf", math.inf),
    ("-1", -1),
    ("1e300", 1e300),
    ("10**400", 10**400),
)


def _slo() -> Any:
    from perfprim.slo import SLO

    return SLO(target=0.999)


def _latency_slo() -> Any:
    from perfprim.slo import LatencySLO

    return LatencySLO(threshold=0.3, target=0.99)


def _tracker(latency: bool = False) -> Any:
    from perfprim.slo import SLOTracker

    now = [0.0]
    return SLOTracker(_latency_slo() if latency else _slo(), clock=lambda: now[0])


def _histogram() -> Any:
    from perfprim.histogram import LatencyHistogram

    h = LatencyHistogram()
    h.record(0.01)
    return h


def _erlang() -> Any:
    from perfprim.capacity import ErlangC

    return ErlangC(servers=10, arrival_rate=8.0, service_time=1.0)


def _usl() -> Any:
    from perfprim.capacity import USLModel

    return USLModel(sigma=0.05, kappa=0.001, lambda_=100.0)


def _projection() -> Any:
    from perfprim.capacity import project_growth

    return project_growth(capacity=100.0, current=10.0, rate=0.1)


_OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api
spec:
  service: api
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
"""

_USL_POINTS = [(1, 100.0), (2, 190.0), (4, 340.0), (8, 530.0), (16, 640.0), (32, 600.0)]


def _entries() -> list[Entry]:
    from perfprim import capacity, histogram, slo

    e: list[Entry] = []

    def add(
        label: str, call: Callable[..., Any], sequences: Iterable[str] = (), /, **valid: Any
    ) -> None:
        e.append(Entry(label, call, valid, frozenset(sequences)))

    # -- slo ----------------------------------------------------------------
    add("SLO", slo.SLO, target=0.999, window=86400.0)
    add("SLO.budgeting", lambda b: slo.SLO(target=0.999, budgeting=b), b=slo.Occurrences())
    add("SLO.policy", lambda p: slo.SLO(target=0.999, policy=p), p=list(slo.DEFAULT_POLICY))
    add("LatencySLO", slo.LatencySLO, threshold=0.3, target=0.99, window=86400.0)
    add(
        "AlertRule",
        slo.AlertRule,
        severity="page",
        budget_fraction=0.02,
        long_window=3600.0,
        short_window=300.0,
    )
    add("Timeslices", slo.Timeslices, slice_target=0.95, slice_duration=60.0)
    add("RatioTimeslices", slo.RatioTimeslices, slice_duration=60.0)
    add("Occurrences.sli", lambda s: slo.Occurrences().sli(s), ("s",), s=[(9, 10)])
    add(
        "Timeslices.sli",
        lambda s: slo.Timeslices(slice_target=0.9, slice_duration=60).sli(s),
        ("s",),
        s=[(9, 10)],
    )
    add(
        "Timeslices.slice_value",
        lambda good, total: slo.Timeslices(slice_target=0.9, slice_duration=60).slice_value(
            good, total
        ),
        good=9,
        total=10,
    )
    add(
        "RatioTimeslices.slice_value",
        lambda good, total: slo.RatioTimeslices(slice_duration=60).slice_value(good, total),
        good=9,
        total=10,
    )
    add("SLO.allowed_bad_events", lambda total: _slo().allowed_bad_events(total), total=1000)
    add("SLO.sli", lambda good, total: _slo().sli(good, total), good=9, total=10)
    add(
        "SLO.budget_consumed_from_sli",
        lambda sli: _slo().budget_consumed_from_sli(sli),
        sli=0.9995,
    )
    add(
        "SLO.budget_consumed",
        lambda good, total: _slo().budget_consumed(good, total),
        good=999,
        total=1000,
    )
    add(
        "SLO.budget_remaining",
        lambda good, total: _slo().budget_remaining(good, total),
        good=999,
        total=1000,
    )
    add("SLO.sli_from_slices", lambda s: _slo().sli_from_slices(s), ("s",), s=[(9, 10)])
    add("SLO.burn_rate", lambda r: _slo().burn_rate(r), r=0.01)
    add(
        "SLO.time_to_exhaustion",
        lambda burn_rate, remaining: _slo().time_to_exhaustion(burn_rate, remaining),
        burn_rate=10.0,
        remaining=0.5,
    )
    add(
        "SLO.budget_consumed_at",
        lambda burn_rate, duration: _slo().budget_consumed_at(burn_rate, duration),
        burn_rate=14.4,
        duration=3600.0,
    )
    add(
        "SLO.burn_rate_for",
        lambda fraction, duration: _slo().burn_rate_for(fraction, duration),
        fraction=0.02,
        duration=3600.0,
    )
    add(
        "SLO.detection_time",
        lambda ratio, window, threshold: _slo().detection_time(ratio, window, threshold),
        ratio=0.5,
        window=3600.0,
        threshold=14.4,
    )
    add(
        "SLO.evaluate",
        lambda ratios: _slo().evaluate(ratios),
        ratios=dict.fromkeys(slo.SLO(target=0.999).policy_windows(), 0.0),
    )
    add(
        "SLO.prometheus_rules",
        lambda **k: _slo().prometheus_rules(**k),
        service="api",
        total="http_requests_total",
        errors='http_requests_total{code=~"5.."}',
        name="availability",
        labels={"team": "core"},
    )
    add("LatencySLO.is_good", lambda latency: _latency_slo().is_good(latency), latency=0.1)
    add(
        "LatencySLO.sli_from_buckets",
        lambda b: _latency_slo().sli_from_buckets(b),
        b={"0.3": 9, "+Inf": 10},
    )
    add(
        "LatencySLO.counts_from_buckets",
        lambda b: _latency_slo().counts_from_buckets(b),
        b=[("0.3", 9), ("+Inf", 10)],
    )
    add(
        "LatencySLO.sli_from_histogram",
        lambda h: _latency_slo().sli_from_histogram(h),
        h=_histogram(),
    )
    add(
        "SLOTracker",
        lambda **k: slo.SLOTracker(_slo(), **k),
        resolution=30.0,
        budget_resolution=3600.0,
    )
    add("SLOTracker.slo", slo.SLOTracker, slo=_slo())
    add("SLOTracker.clock", lambda c: slo.SLOTracker(_slo(), clock=c).burn_rate(300), c=lambda: 0)
    add("SLOTracker.record", lambda good: _tracker().record(good), good=True)
    add(
        "SLOTracker.record_latency",
        lambda latency: _tracker(latency=True).record_latency(latency),
        latency=0.1,
    )
    add(
        "SLOTracker.record_counts",
        lambda good, total: _tracker().record_counts(good=good, total=total),
        good=9,
        total=10,
    )
    add("SLOTracker.track", lambda exclude: _tracker().track(exclude=exclude)(abs), exclude=())
    add("SLOTracker.window_status", lambda w: _tracker().window_status(w), w=300.0)
    add("SLOTracker.error_ratio", lambda w: _tracker().error_ratio(w), w=300.0)
    add("SLOTracker.burn_rate", lambda w: _tracker().burn_rate(w), w=3600.0)
    add("SLOSnapshot.window", lambda w: _tracker().snapshot().window(w), w=300.0)
    add("load_openslo", slo.load_openslo, source=_OPENSLO)

    # -- capacity -----------------------------------------------------------
    add("erlang_b", capacity.erlang_b, servers=10, offered_load=8.0)
    add(
        "erlang_c",
        capacity.erlang_c,
        servers=10,
        arrival_rate=8.0,
        service_time=1.0,
    )
    add(
        "ErlangC",
        capacity.ErlangC,
        servers=10,
        arrival_rate=8.0,
        service_time=1.0,
    )
    add("ErlangC.service_level", lambda t: _erlang().service_level(t), t=1.0)
    add("ErlangC.wait_quantile", lambda q: _erlang().wait_quantile(q), q=0.95)
    add(
        "ErlangC.servers_needed",
        capacity.ErlangC.servers_needed,
        arrival_rate=8.0,
        service_time=1.0,
        target_wait=20.0,
        service_level=0.8,
        max_occupancy=0.9,
    )
    add(
        "response_time_at_utilization",
        capacity.response_time_at_utilization,
        utilization=0.5,
        servers=2,
        service_time=1.0,
    )
    add("knee_utilization", capacity.knee_utilization, servers=4)
    add(
        "headroom",
        capacity.headroom,
        current_load=1000.0,
        current_utilization=0.5,
        ceiling=0.7,
    )
    add(
        "littles_law(rate, latency)",
        capacity.littles_law,
        arrival_rate=100.0,
        latency=0.1,
    )
    add(
        "littles_law(concurrency, latency)",
        capacity.littles_law,
        concurrency=10.0,
        latency=0.1,
    )
    add(
        "littles_law(concurrency, rate)",
        capacity.littles_law,
        concurrency=10.0,
        arrival_rate=100.0,
    )
    add(
        "project_growth",
        capacity.project_growth,
        capacity=100.0,
        current=10.0,
        rate=0.1,
        model="compound",
        periods=12,
    )
    add(
        "project_growth(history)",
        capacity.project_growth,
        ("history",),
        capacity=100.0,
        history=[10.0, 11.0, 12.1, 13.3],
        model="compound",
    )
    add(
        "fit_trend",
        capacity.fit_trend,
        ("history",),
        history=[10.0, 11.0, 12.1, 13.3],
        model="compound",
    )
    add(
        "fit_trend(linear)",
        lambda history: capacity.fit_trend(history, model="linear"),
        ("history",),
        history=[10.0, 12.0, 14.0, 16.0],
    )
    add("GrowthProjection.load_at", lambda p: _projection().load_at(p), p=3.0)
    add("USLModel", capacity.USLModel, sigma=0.05, kappa=0.001, lambda_=100.0)
    add("USLModel.throughput", lambda n: _usl().throughput(n), n=8.0)
    add("USLModel.latency", lambda n: _usl().latency(n), n=8.0)
    add("USLModel.efficiency", lambda n: _usl().efficiency(n), n=8.0)
    add("USLModel.concurrency_at_latency", lambda x: _usl().concurrency_at_latency(x), x=0.1)
    add("USLModel.throughput_at_latency", lambda x: _usl().throughput_at_latency(x), x=0.1)
    add(
        "USLModel.concurrency_at_throughput",
        lambda x: _usl().concurrency_at_throughput(x),
        x=300.0,
    )
    add("USLModel.latency_at_throughput", lambda x: _usl().latency_at_throughput(x), x=300.0)
    add(
        "amdahl_speedup",
        capacity.amdahl_speedup,
        n=8.0,
        serial_fraction=0.05,
    )
    add(
        "fit_usl",
        capacity.fit_usl,
        max_iterations=200,
        points=_USL_POINTS,
    )
    add(
        "fit_usl(points)",
        capacity.fit_usl,
        ("points",),
        points=[p[1] for p in _USL_POINTS],
    )

    # -- histogram ------------------------------------------------------------
    lh = histogram.LatencyHistogram
    add(
        "LatencyHistogram",
        lh,
        lowest=1e-6,
        highest=3600.0,
        significant_figures=3,
        unit=1e-6,
        clamp=False,
    )
    add(
        "LatencyHistogram.record+encode",
        _record_encode,
        seconds=0.01,
        count=3,
    )
    add("LatencyHistogram.record_ns", lambda ns: _histogram().record_ns(ns), ns=1_000_000)
    add(
        "LatencyHistogram.record_corrected",
        lambda seconds, interval, count: _histogram().record_corrected(
            seconds, expected_interval=interval, count=count
        ),
        seconds=0.05,
        interval=0.01,
        count=1,
    )
    add("LatencyHistogram.percentile", lambda p: _histogram().percentile(p), p=99.0)
    add("LatencyHistogram.percentiles", lambda ps: _histogram().percentiles(ps), ("ps",), ps=[50])
    add(
        "LatencyHistogram.cumulative_counts",
        lambda bounds: _histogram().cumulative_counts(bounds),
        ("bounds",),
        bounds=[0.1],
    )
    add("LatencyHistogram.merge", lambda other: _histogram().merge(other), other=_histogram())
    add(
        "LatencyHistogram.percentile_distribution",
        lambda **k: _histogram().percentile_distribution(**k),
        output_unit=1e-3,
        ticks_per_half_distance=5,
    )
    add(
        "LatencyHistogram.decode",
        lh.decode,
        text=_histogram().encode(),
        unit=1e-6,
        clamp=False,
    )
    add(
        "IntervalRecorder",
        lambda **k: histogram.IntervalRecorder(**k).interval(),
        lowest=1e-6,
        highest=3600.0,
        significant_figures=3,
        unit=1e-6,
        clamp=False,
        tag="api",
    )
    add(
        "HistogramLogWriter",
        histogram.HistogramLogWriter,
        out=io.StringIO(),
        max_value_unit=1e-3,
    )
    add(
        "HistogramLogWriter.write_header",
        lambda **k: histogram.HistogramLogWriter(io.StringIO()).write_header(**k),
        start_time=1_700_000_000.0,
        base_time=1_700_000_000.0,
    )
    add(
        "HistogramLogWriter.write_comment",
        lambda text: histogram.HistogramLogWriter(io.StringIO()).write_comment(text),
        text="hello",
    )
    add(
        "HistogramLogWriter.write_interval",
        _write_interval,
        histogram=_histogram(),
        start_time=1_700_000_000.0,
        end_time=1_700_000_001.0,
        tag="api",
    )
    add("HistogramLogReader", lambda **k: list(histogram.HistogramLogReader(**k)), **_reader())
    return e


def _record_encode(seconds: Any, count: Any) -> str:
    h = _histogram()
    h.record(seconds, count)
    text: str = h.encode()
    return text


def _write_interval(**kwargs: Any) -> str:
    from perfprim.histogram import HistogramLogWriter

    out = io.StringIO()
    log = HistogramLogWriter(out)
    log.write_header(start_time=1_700_000_000.0)
    log.write_interval(**kwargs)
    return out.getvalue()


def _reader() -> dict[str, Any]:
    text = _write_interval(histogram=_histogram(), start_time=1_700_000_000.0, end_time=1.7e9 + 1)
    return {"source": io.StringIO(text), "unit": 1e-6}


_CATALOGUE: list[Entry] | None = None


def catalogue() -> list[Entry]:
    """Return the entries (built once: they import perfprim)."""
    global _CATALOGUE  # noqa: PLW0603 - a cache of the entries, built on first use
    if _CATALOGUE is None:
        _CATALOGUE = _entries()
    return _CATALOGUE


CATALOGUE = catalogue


def _fresh(value: Any) -> Any:
    """A fresh copy of a valid value that a call may consume (a stream)."""
    if isinstance(value, io.StringIO):
        return io.StringIO(value.getvalue())
    return value


def bad_calls() -> list[tuple[str, Callable[[], Any]]]:
    """Every generated bad call: ``(description, thunk)``, one argument bad at a time."""
    calls: list[tuple[str, Callable[[], Any]]] = []
    for entry in catalogue():
        for arg in entry.valid:
            variants = list(BAD_VALUES)
            if arg in entry.sequences:
                good = entry.valid[arg]
                for label, bad in _BAD_ELEMENTS:
                    variants.append((f"[{label}]", [bad]))
                    if good and isinstance(good[0], tuple):
                        variants.append((f"[(9, {label})]", [*good, (9, bad)]))
                    else:
                        variants.append((f"[..., {label}]", [*good, bad]))
            for label, bad in variants:

                def thunk(entry: Entry = entry, arg: str = arg, bad: Any = bad) -> Any:
                    kwargs = {k: _fresh(v) for k, v in entry.valid.items()}
                    kwargs[arg] = bad
                    return entry.call(**kwargs)

                calls.append((f"{entry.name}({arg}={label})", thunk))
    calls.extend(_special_calls())
    return calls


def _special_calls() -> list[tuple[str, Callable[[], Any]]]:
    """Calls named in issue 16 that the one-argument sweep does not generate."""
    from perfprim import capacity, histogram, slo

    def merge_huge() -> Any:
        a = histogram.LatencyHistogram()
        a.record(0.01, 2**62)
        b = histogram.LatencyHistogram()
        b.record(0.01, 2**62)
        a.merge(b)
        return a.encode()

    def merge_class() -> Any:
        return histogram.LatencyHistogram().merge(histogram.LatencyHistogram)  # type: ignore[arg-type]

    return [
        ("record(0.01, count=2**62)+encode", lambda: _record_encode(0.01, 2**62)),
        ("merge two 2**62 counts", merge_huge),
        ("merge(the class)", merge_class),
        ("SLOTracker(the class)", lambda: slo.SLOTracker(slo.SLO)),  # type: ignore[arg-type]
        (
            "ErlangC.servers_needed(1e308, 1)",
            lambda: capacity.ErlangC.servers_needed(arrival_rate=1e308, service_time=1),
        ),
        ("knee_utilization(10**6)", lambda: capacity.knee_utilization(servers=10**6)),
        ("erlang_b(10**7, 1)", lambda: capacity.erlang_b(servers=10**7, offered_load=1)),
        (
            "project_growth(7500 periods)",
            lambda: capacity.project_growth(capacity=1e9, current=1, rate=0.1, periods=7500),
        ),
        ("fit_trend(spiky)", lambda: capacity.fit_trend([1e-6, 5e5, 1e-6, 5e5, 7e5])),
        (
            "fit_usl(1e300)",
            lambda: capacity.fit_usl([(n, 1e300 * n) for n in (1, 2, 3, 4, 5, 6)]),
        ),
        (
            "Timeslices.slice_value(0, 0)",
            lambda: slo.Timeslices(slice_target=0.9, slice_duration=60).slice_value(0, 0),
        ),
        (
            "RatioTimeslices.slice_value(-1, nan)",
            lambda: slo.RatioTimeslices(slice_duration=60).slice_value(-1, math.nan),
        ),
        ("load_openslo(missing path)", lambda: slo.load_openslo(Path("/nonexistent/slo.yaml"))),
        (
            "load_openslo(budgetingMethod: [])",
            lambda: slo.load_openslo(
                _OPENSLO.replace("budgetingMethod: Occurrences", "budgetingMethod: []")
            ),
        ),
        ("load_openslo(targetPercent: 150)", lambda: _openslo_target("targetPercent: 150")),
        ("load_openslo(top-level list)", _openslo_list),
    ]


def _openslo_target(line: str) -> Any:
    from perfprim.slo import load_openslo

    return load_openslo(_OPENSLO.replace("target: 0.999", line))


def _openslo_list() -> Any:
    from perfprim.slo import load_openslo

    body = "".join("  " + line + "\n" for line in _OPENSLO.splitlines())
    return load_openslo("-" + body[1:])


def is_sane(result: Any, depth: int = 0) -> bool:
    """Whether a returned value is finite and sane: no NaN anywhere inside it.

    Infinity is allowed where the API documents it (a burn rate with no
    budget, a crossing that never comes); NaN never is.
    """
    if depth > 4:
        return True
    if isinstance(result, float):
        return not math.isnan(result)
    if isinstance(result, dict):
        return all(is_sane(k, depth + 1) and is_sane(v, depth + 1) for k, v in result.items())
    if isinstance(result, (list, tuple)):
        return all(is_sane(v, depth + 1) for v in result)
    slots = getattr(type(result), "__slots__", None)
    if slots and type(result).__module__.startswith("perfprim"):
        return all(
            is_sane(getattr(result, name), depth + 1)
            for name in slots
            if isinstance(name, str) and not name.startswith("_") and hasattr(result, name)
        )
    return True
