"""``@timed`` and ``@instrument``: what each run records, for every function kind."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, Generator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError
from perfprim.histogram import LatencyHistogram
from perfprim.telemetry import CardinalityWarning, TelemetryRegistry, instrument, timed


class LoadError(Exception):
    """A domain error."""


def _series(registry: TelemetryRegistry, name: str) -> Any:
    (view,) = [v for v in registry.timer_views() if v.name == name]
    (series,) = view.series
    return series


def test_sync_counts_runs_and_errors() -> None:
    """Every run is one histogram value; exceptions also count under their error.type."""
    registry = TelemetryRegistry()

    @timed(name="svc.load", registry=registry)
    def load(x: int) -> int:
        if x < 0:
            raise LoadError(x)
        return x

    assert [0, 1, 2] == [load(i) for i in range(3)]
    with pytest.raises(LoadError):
        load(-1)
    series = _series(registry, "svc.load")
    assert 4 == series.histogram.count
    assert {f"{__name__}.LoadError": 1} == series.errors


async def test_coroutine_times_the_run_not_the_creation() -> None:
    """An ``async def`` stays one; nothing is recorded until the coroutine has run."""
    registry = TelemetryRegistry()

    @timed(name="svc.async", registry=registry)
    async def work() -> int:
        await asyncio.sleep(0)
        return 1

    assert inspect.iscoroutinefunction(work)
    coroutine = work()
    assert [0] == _views_counts(registry)
    assert 1 == await coroutine
    assert 1 == _series(registry, "svc.async").histogram.count


def _views_counts(registry: TelemetryRegistry) -> list[int]:
    return [s.histogram.count for v in registry.timer_views() for s in v.series]


def test_generator_is_timed_until_exhausted_or_closed() -> None:
    """A generator's run is recorded once, when exhausted or closed, never at creation."""
    registry = TelemetryRegistry()

    @timed(name="svc.gen", registry=registry)
    def numbers(n: int) -> Generator[int, None, None]:
        yield from range(n)

    assert inspect.isgeneratorfunction(numbers)
    gen = numbers(3)
    assert [0] == _views_counts(registry)
    assert [0, 1, 2] == list(gen)
    partial = numbers(5)
    next(partial)
    partial.close()
    assert 2 == _series(registry, "svc.gen").histogram.count


async def test_async_generator_is_timed() -> None:
    """An async generator stays one and is recorded when exhausted."""
    registry = TelemetryRegistry()

    @timed(name="svc.agen", registry=registry)
    async def numbers(n: int) -> AsyncGenerator[int, None]:
        for i in range(n):
            yield i

    assert inspect.isasyncgenfunction(numbers)
    assert [0, 1] == [i async for i in numbers(2)]
    assert 1 == _series(registry, "svc.agen").histogram.count


def test_given_histogram_receives_the_values() -> None:
    """``histogram=h`` records into the caller's histogram."""
    registry = TelemetryRegistry()
    histogram = LatencyHistogram(clamp=True)

    @timed(name="svc.h", histogram=histogram, registry=registry)
    def f() -> None:
        return None

    f()
    f()
    assert 2 == histogram.count
    assert 2 == _series(registry, "svc.h").histogram.count


def test_cancellation_is_timed_but_not_an_error() -> None:
    """A BaseException that is not an Exception (cancellation) is no error."""
    registry = TelemetryRegistry()

    @timed(name="svc.cancel", registry=registry)
    def f() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        f()
    series = _series(registry, "svc.cancel")
    assert 1 == series.histogram.count
    assert {} == series.errors


class Tracker:
    """A minimal SLO tracker recording good/bad events (the SLORecorder protocol)."""

    def __init__(self) -> None:
        self.events: list[bool] = []

    def record(self, good: bool) -> None:
        self.events.append(good)


def test_slo_tracker_counts_good_and_bad() -> None:
    """``slo=`` receives True for each return and False for each exception."""
    registry = TelemetryRegistry()
    tracker = Tracker()

    @timed(name="svc.slo", slo=tracker, registry=registry)
    def f(ok: bool) -> None:
        if not ok:
            raise LoadError

    f(True)
    with pytest.raises(LoadError):
        f(False)
    assert [True, False] == tracker.events


def test_same_name_shares_the_series_and_labels_split_it() -> None:
    """Two functions with one name and labels share a series; other labels make another."""
    registry = TelemetryRegistry()

    @timed(name="http.request", labels={"route": "/a"}, registry=registry)
    def a() -> None:
        return None

    @timed(name="http.request", labels={"route": "/b"}, registry=registry)
    def b() -> None:
        return None

    @timed(name="http.request", labels={"route": "/a"}, registry=registry)
    def a2() -> None:
        return None

    a()
    a2()
    b()
    (view,) = registry.timer_views()
    assert {("/a",): 2, ("/b",): 1} == {s.labels: s.histogram.count for s in view.series}


def test_conflicting_definitions_fail_fast() -> None:
    """One metric name with different label names or buckets is a ConfigurationError."""
    registry = TelemetryRegistry()
    registry.timer("x", label_names=("route",))
    with pytest.raises(ConfigurationError, match="one metric name needs one definition"):
        registry.timer("x", label_names=("method",))
    with pytest.raises(ConfigurationError, match="one metric name needs one definition"):
        registry.timer("x", label_names=("route",), buckets=(1.0,))


@pytest.mark.parametrize(
    "options",
    [
        {"name": "bad name!"},
        {"buckets": ()},
        {"buckets": (1.0, 0.5)},
        {"buckets": (float("inf"),)},
        {"quantiles": (1.5,)},
        {"labels": {"error_type": "x"}},
        {"labels": {"1bad": "x"}},
        {"labels": [("route", "/")]},
        {"slo": object()},
        {"histogram": object()},
    ],
)
def test_bad_options_fail_fast(options: dict[str, Any]) -> None:
    """Invalid options raise ConfigurationError with the valid form."""
    with pytest.raises(ConfigurationError):

        @timed(registry=TelemetryRegistry(), **options)
        def f() -> None:
            return None


def test_default_name_is_the_qualified_function_name() -> None:
    """Without ``name`` the metric is named after the module and qualified name."""
    registry = TelemetryRegistry()

    @timed(registry=registry)
    def handler() -> None:
        return None

    (view,) = registry.timer_views()
    assert (
        f"{__name__}.test_default_name_is_the_qualified_function_name._locals_.handler" == view.name
    )


def test_slow_call_is_clamped_not_raised() -> None:
    """A run longer than the histogram's range is clamped: the decorator never raises."""
    registry = TelemetryRegistry()
    timer = registry.timer("svc.slow", highest=1.0)
    series = timer.series()
    series.record_ns(5_000_000_000)
    assert 1 == series.histogram.count
    assert 1 == series.histogram.clamped


def test_label_guard_folds_runaway_error_types() -> None:
    """Past the limit, new error types are folded into 'other' with one CardinalityWarning."""
    registry = TelemetryRegistry()
    timer = registry.timer("svc.errors", max_label_values=2)
    series = timer.series()
    series.count_error("A")
    series.count_error("B")
    with pytest.warns(CardinalityWarning, match="error_type"):
        series.count_error("C")
    series.count_error("D")  # no second warning: -W error would fail here
    series.count_error("A")
    assert {"A": 2, "B": 1, "other": 2} == series.view().errors


def test_label_guard_folds_runaway_label_values() -> None:
    """Label values past the limit share the 'other' series."""
    registry = TelemetryRegistry()
    timer = registry.timer("svc.tenant", label_names=("tenant",), max_label_values=3)
    for i in range(3):
        timer.series({"tenant": f"t{i}"}).record_ns(1000)
    with pytest.warns(CardinalityWarning, match="tenant"):
        timer.series({"tenant": "t3"}).record_ns(1000)
    for i in range(4, 10):
        timer.series({"tenant": f"t{i}"}).record_ns(1000)
    counts = {s.labels: s.histogram.count for s in timer.view().series}
    assert {("t0",): 1, ("t1",): 1, ("t2",): 1, ("other",): 7} == counts


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), max_size=30))
def test_count_is_runs_and_errors_are_failures(outcomes: list[bool]) -> None:
    """Invariant: histogram count = number of runs; error count = number of failures."""
    registry = TelemetryRegistry()

    @timed(name="inv", registry=registry)
    def f(ok: bool) -> None:
        if not ok:
            raise LoadError

    for ok in outcomes:
        with contextlib.suppress(LoadError):
            f(ok)
    views = registry.timer_views()
    series = views[0].series
    assert len(outcomes) == sum(s.histogram.count for s in series)
    assert outcomes.count(False) == sum(sum(s.errors.values()) for s in series)


def test_instrument_records_span_histogram_and_exemplar(
    tracer_provider: Any, span_exporter: Any
) -> None:
    """``@instrument`` makes one span and one histogram value, the span being the exemplar."""
    registry = TelemetryRegistry()

    @instrument(name="db.query", registry=registry, tracer_provider=tracer_provider)
    def query() -> int:
        return 1

    assert 1 == query()
    (span,) = span_exporter.get_finished_spans()
    assert "db.query" == span.name
    series = _series(registry, "db.query")
    assert 1 == series.histogram.count
    (exemplar,) = [e for e in series.exemplars if e is not None]
    assert format(span.context.trace_id, "032x") == exemplar.trace_id
    assert format(span.context.span_id, "016x") == exemplar.span_id


async def test_instrument_async_error(tracer_provider: Any, span_exporter: Any) -> None:
    """An async failure is an ERROR span and an error count under the same error.type."""
    registry = TelemetryRegistry()
    tracker = Tracker()

    @instrument(name="db.aquery", registry=registry, slo=tracker, tracer_provider=tracer_provider)
    async def query() -> None:
        raise LoadError("down")

    with pytest.raises(LoadError):
        await query()
    (span,) = span_exporter.get_finished_spans()
    series = _series(registry, "db.aquery")
    assert {span.attributes["error.type"]: 1} == series.errors
    assert [False] == tracker.events


def test_instrument_generator(tracer_provider: Any, span_exporter: Any) -> None:
    """A generator under ``@instrument`` gives one span and one value after exhaustion."""
    registry = TelemetryRegistry()

    @instrument(name="gen.items", registry=registry, tracer_provider=tracer_provider)
    def items() -> Generator[int, None, None]:
        yield 1
        yield 2

    assert [1, 2] == list(items())
    assert 1 == len(span_exporter.get_finished_spans())
    assert 1 == _series(registry, "gen.items").histogram.count


def test_instrument_without_sdk_still_times() -> None:
    """With no SDK, ``@instrument`` records like ``@timed`` (no exemplar, no span)."""
    from opentelemetry.trace import NoOpTracerProvider

    registry = TelemetryRegistry()

    @instrument(name="nosdk", registry=registry, tracer_provider=NoOpTracerProvider())
    def f() -> None:
        return None

    f()
    series = _series(registry, "nosdk")
    assert 1 == series.histogram.count
    assert all(e is None for e in series.exemplars)


def test_timed_exemplars_from_the_active_span(tracer_provider: Any) -> None:
    """``@timed(exemplars=True)`` keeps the active sampled span as the exemplar."""
    registry = TelemetryRegistry()
    tracer = tracer_provider.get_tracer("test")

    @timed(name="ex", registry=registry, exemplars=True)
    def f() -> None:
        return None

    f()  # no active span: no exemplar
    assert all(e is None for e in _series(registry, "ex").exemplars)
    with tracer.start_as_current_span("parent") as parent:
        f()
    (exemplar,) = [e for e in _series(registry, "ex").exemplars if e is not None]
    assert format(parent.get_span_context().trace_id, "032x") == exemplar.trace_id


def _counts(registry: TelemetryRegistry, name: str) -> dict[tuple[str, ...], int]:
    (view,) = [v for v in registry.timer_views() if v.name == name]
    return {s.labels: s.histogram.count for s in view.series}


def test_label_args_choose_the_series_per_call() -> None:
    """``label_args`` reads the named argument (positional or keyword) into a label."""
    registry = TelemetryRegistry()

    @timed(name="api", labels={"route": "/q"}, label_args={"tier": "plan"}, registry=registry)
    def handle(user: str, tier: str = "free") -> str:
        return user

    handle("a", "pro")
    handle("b", tier="pro")
    handle("c")
    assert {("free", "/q"): 1, ("pro", "/q"): 2} == _counts(registry, "api")
    (view,) = registry.timer_views()
    assert ("plan", "route") == view.label_names


async def test_label_args_keep_every_kind() -> None:
    """Coroutines, generators and async generators stay what they are under ``label_args``."""
    registry = TelemetryRegistry()

    @timed(name="k.co", label_args=("kind",), registry=registry)
    async def co(kind: str) -> str:
        await asyncio.sleep(0)
        return kind

    @timed(name="k.gen", label_args=("kind",), registry=registry)
    def gen(kind: str) -> Generator[str, str, str]:
        got = yield kind
        return got

    @timed(name="k.agen", label_args=("kind",), registry=registry)
    async def agen(kind: str) -> AsyncGenerator[str, str]:
        got = yield kind
        yield got

    assert inspect.iscoroutinefunction(co)
    assert inspect.isgeneratorfunction(gen)
    assert inspect.isasyncgenfunction(agen)
    assert "x" == await co("x")
    g = gen("y")
    assert "y" == next(g)
    with pytest.raises(StopIteration) as stop:
        g.send("back")
    assert "back" == stop.value.value
    a = agen("z")
    assert "z" == await a.__anext__()
    assert "sent" == await a.asend("sent")
    await a.aclose()
    assert {("x",): 1} == _counts(registry, "k.co")
    assert {("y",): 1} == _counts(registry, "k.gen")
    assert {("z",): 1} == _counts(registry, "k.agen")


def test_label_args_runaway_values_are_folded_with_one_warning() -> None:
    """Past max_label_values, argument values share the 'other' series; one warning."""
    registry = TelemetryRegistry()
    registry.timer("ids", label_names=("user",), max_label_values=2)

    @timed(name="ids", label_args=("user",), registry=registry)
    def f(user: int) -> None:
        return None

    f(1)
    f(2)
    with pytest.warns(CardinalityWarning, match="user"):
        f(3)
    for i in range(4, 50):
        f(i)
    assert {("1",): 1, ("2",): 1, ("other",): 47} == _counts(registry, "ids")


def test_label_args_errors() -> None:
    """Unknown parameters, label clashes and histogram= with label_args fail fast."""
    registry = TelemetryRegistry()
    with pytest.raises(ConfigurationError, match="no named parameter"):

        @timed(label_args=("nope",), registry=registry)
        def a(x: int) -> None:
            return None

    with pytest.raises(ConfigurationError, match="one source"):

        @timed(labels={"x": "1"}, label_args=("x",), registry=registry)
        def b(x: int) -> None:
            return None

    with pytest.raises(ConfigurationError, match="single series"):

        @timed(label_args=("x",), histogram=LatencyHistogram(), registry=registry)
        def c(x: int) -> None:
            return None


def test_instrument_label_args(tracer_provider: Any, span_exporter: Any) -> None:
    """``@instrument(label_args=...)`` labels the metric; the span still gets one per call."""
    registry = TelemetryRegistry()

    @instrument(
        name="inst", label_args=("method",), registry=registry, tracer_provider=tracer_provider
    )
    def call(method: str) -> None:
        return None

    call("GET")
    call("POST")
    call("GET")
    assert {("GET",): 2, ("POST",): 1} == _counts(registry, "inst")
    assert 3 == len(span_exporter.get_finished_spans())
    assert all("method" not in s.attributes for s in span_exporter.get_finished_spans())


def test_threads_count_exactly() -> None:
    """8 threads x 2,000 calls: the merged count and error count are exact."""
    import threading

    registry = TelemetryRegistry()

    @timed(name="mt", registry=registry)
    def f(i: int) -> None:
        if i % 10 == 0:
            raise LoadError

    def run() -> None:
        for i in range(2000):
            with contextlib.suppress(LoadError):
                f(i)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    series = _series(registry, "mt")
    assert 16_000 == series.histogram.count
    assert {f"{__name__}.LoadError": 1_600} == series.errors


def test_timed_exemplars_false_never_looks(tracer_provider: Any) -> None:
    """By default (``exemplars=False``) no exemplar is kept, even inside a sampled span."""
    registry = TelemetryRegistry()

    @timed(name="noex", registry=registry)  # the default: exemplars=False
    def f() -> None:
        return None

    with tracer_provider.get_tracer("t").start_as_current_span("parent"):
        f()
    assert all(e is None for e in _series(registry, "noex").exemplars)


def test_timed_auto_exemplars_follow_the_global_provider() -> None:
    """``exemplars=None`` keeps exemplars once a global SDK provider is set (fresh interpreter)."""
    import json
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from perfprim.telemetry import TelemetryRegistry, timed

        registry = TelemetryRegistry()

        @timed(name="auto", registry=registry, exemplars=None)
        def f():
            return None

        f()
        before = [e for e in registry.timer_views()[0].series[0].exemplars if e]
        trace.set_tracer_provider(TracerProvider())
        with trace.get_tracer("t").start_as_current_span("request") as span:
            f()
        after = [e for e in registry.timer_views()[0].series[0].exemplars if e]
        print(json.dumps([len(before), [e.trace_id for e in after],
                          format(span.get_span_context().trace_id, "032x")]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    before, after, trace_id = json.loads(out)
    assert 0 == before
    assert [trace_id] == after


class StepClock:
    """A nanosecond clock that advances by a fixed step at every read."""

    def __init__(self, step_ns: int) -> None:
        self.now = 0
        self.step_ns = step_ns

    def __call__(self) -> int:
        self.now += self.step_ns
        return self.now


def test_injected_clock_sets_the_recorded_durations(tracer_provider: Any) -> None:
    """With an injected clock the recorded durations are exact, for @timed and @instrument."""
    registry = TelemetryRegistry()

    @timed(name="clk.timed", registry=registry, clock=StepClock(3_000_000))
    def a() -> None:
        return None

    @instrument(
        name="clk.inst",
        registry=registry,
        clock=StepClock(40_000_000),
        tracer_provider=tracer_provider,
    )
    def b() -> None:
        return None

    a()
    b()
    b()
    assert pytest.approx(0.003) == _series(registry, "clk.timed").total
    inst = _series(registry, "clk.inst")
    assert pytest.approx(0.08) == inst.total
    assert [0, 0, 0, 0, 0, 2] == inst.histogram.cumulative_counts(
        [0.001, 0.005, 0.01, 0.02, 0.03, 0.05]
    )
    (exemplar,) = [e for e in inst.exemplars if e is not None]
    assert pytest.approx(0.04) == exemplar.value
