"""Thresholds: k6's grammar, its errors, round trips, and evaluation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfprim.exceptions import ConfigurationError, ThresholdError
from perfprim.histogram import LatencyHistogram
from perfprim.load import parse_threshold
from perfprim.load._thresholds import Measurements, Threshold, evaluate


@pytest.mark.parametrize(
    ("text", "value", "window"),
    [
        ("p(95) < 200ms", 0.2, None),
        ("p(99.9)<1s", 1.0, None),
        ("avg <= 1.5ms", 0.0015, None),
        ("med == 250us", 0.00025, None),
        ("min > 0.5ms", 0.0005, None),
        ("max < 2m", 120.0, None),
        ("error_rate < 0.01", 0.01, None),
        ("error_rate < 1%", 0.01, None),
        ("rate > 500", 500.0, None),
        ("count >= 1000", 1000.0, None),
        ("p(99) < 500ms over 10s abort", 0.5, 10.0),
        ("error_rate < 5% over 1m", 0.05, 60.0),
    ],
)
def test_grammar(text: str, value: float, window: float | None) -> None:
    """Each form parses to its bound in base units (seconds, fraction, req/s, count)."""
    t = parse_threshold(text)
    assert value == pytest.approx(t.value)
    assert window == t.window_seconds


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("p(95) < 200", "write 200ms or 0.2s"),
        ("avg < 3", "write 3ms or 0.003s"),
        ("p(95) < 200 ms", None),
        ("p(95) < 200 sec", "use one of us, ms, s, m"),
        ("rate > 5ms", "takes a number"),
        ("count > 10%", "takes a number"),
        ("error_rate < 2", "fraction in \\[0, 1\\] or a percentage"),
        ("p(101) < 1s", "must be in \\[0, 100\\]"),
        ("p95 < 1s", "cannot read threshold"),
        ("p(95) != 1s", "cannot read threshold"),
        ("p(95) < 1s abort", "'abort' needs a window"),
        ("p(95) < 1s over 10", "the window .* needs a time unit"),
        ("p(95) < 1s over 0s", "longer than 0"),
    ],
)
def test_grammar_errors_say_what_to_write(text: str, words: str | None) -> None:
    """Wrong thresholds raise ThresholdError (a ConfigurationError) with the valid form."""
    if words is None:  # a space before the unit is fine
        assert 0.2 == parse_threshold(text).value
        return
    with pytest.raises(ThresholdError, match=words) as info:
        parse_threshold(text)
    assert isinstance(info.value, ConfigurationError)


def test_non_string_is_refused() -> None:
    """Only strings (or Threshold objects) are thresholds."""
    with pytest.raises(ThresholdError, match="a string such as"):
        parse_threshold(200)  # type: ignore[arg-type]


numbers = st.one_of(
    st.integers(0, 10**6).map(float),
    st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False),
)


@st.composite
def thresholds(draw: st.DrawFn) -> Threshold:
    """Any threshold the grammar can express."""
    agg = draw(st.sampled_from(["p", "avg", "med", "min", "max", "error_rate", "rate", "count"]))
    percentile = draw(st.floats(0.0, 100.0)) if agg == "p" else None
    if agg in ("p", "avg", "med", "min", "max"):
        unit = draw(st.sampled_from(["us", "ms", "s", "m"]))
        amount = draw(numbers)
    elif agg == "error_rate":
        unit = draw(st.sampled_from(["", "%"]))
        amount = draw(st.floats(0.0, 1.0 if unit == "" else 100.0))
    else:
        unit, amount = "", draw(numbers)
    window = draw(st.none() | st.floats(1e-3, 1e4))
    return Threshold(
        aggregation=agg,
        percentile=percentile,
        operator=draw(st.sampled_from(["<", "<=", ">", ">=", "=="])),
        amount=amount,
        unit=unit,
        window=window,
        window_unit=draw(st.sampled_from(["ms", "s", "m"])) if window is not None else "s",
        abort_on_fail=draw(st.booleans()) if window is not None else False,
    )


@given(thresholds())
def test_format_then_parse_is_the_identity(t: Threshold) -> None:
    """str() writes the grammar back; parsing it gives the same threshold."""
    assert t == parse_threshold(str(t))


def measurements(values: list[float], errors: int = 0, seconds: float = 10.0) -> Measurements:
    """Measurements over these latencies."""
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    return Measurements(h, len(values), errors, seconds)


def test_evaluation_uses_the_histogram_and_counts() -> None:
    """Observed values: HDR percentiles, exact mean, error fraction, completions per second."""
    m = measurements([0.001] * 90 + [0.5] * 10, errors=3, seconds=4.0)
    assert evaluate(parse_threshold("p(90) < 2ms"), m).passed
    p99 = evaluate(parse_threshold("p(99) < 200ms"), m)
    assert not p99.passed
    assert 0.5 == pytest.approx(p99.observed, rel=1e-3)
    assert 0.0509 == pytest.approx(evaluate(parse_threshold("avg < 1s"), m).observed, rel=1e-3)
    assert 0.03 == evaluate(parse_threshold("error_rate < 1%"), m).observed
    assert 25.0 == evaluate(parse_threshold("rate >= 25"), m).observed
    assert evaluate(parse_threshold("rate >= 25"), m).passed
    assert evaluate(parse_threshold("count == 100"), m).passed
    assert 0.001 == pytest.approx(evaluate(parse_threshold("min > 0s"), m).observed, rel=1e-3)


def test_no_data_fails_a_latency_threshold() -> None:
    """A CI gate must not pass on nothing: an empty latency histogram gives NaN and FAIL."""
    result = evaluate(parse_threshold("p(95) < 1s"), measurements([]))
    assert math.isnan(result.observed)
    assert not result.passed
    assert "no data" in result.describe()


def test_describe_shows_the_observed_value_in_the_thresholds_unit() -> None:
    """The report line names the verdict, the expression and the value in its own unit."""
    line = evaluate(parse_threshold("p(50) < 2ms"), measurements([0.0015])).describe()
    assert line.startswith("PASS  p(50) < 2ms")
    assert "observed 1.5ms" in line
