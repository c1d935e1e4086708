"""LoadResult's verdicts and warnings, built from known counts (pure)."""

from __future__ import annotations

import math

from perfprim.load import LoadResult, parse_threshold
from perfprim.load._monitor import new_histogram
from perfprim.load._thresholds import ThresholdResult


def result(**counts: int) -> LoadResult:
    """A result of 100 planned requests over 10 s with these counts."""
    lateness = new_histogram()
    lateness.record(0.5, count=max(counts.get("late", 0), 1))
    fields: dict[str, int] = {"planned": 100, "sent": 100, "completed": 100, "errors": 0,
                              "late": 0, "waited": 0}  # fmt: skip
    fields.update(counts)
    return LoadResult(
        latency=new_histogram(),
        lateness=lateness,
        duration=10.0,
        planned_duration=10.0,
        thresholds=(),
        aborted_by=None,
        error_kinds={},
        late_after=0.01,
        max_in_flight=64,
        workers=1,
        **fields,
    )


def test_a_healthy_run_has_no_warning() -> None:
    """Nothing late, nothing waited, everything sent: no warning, not overloaded."""
    r = result(late=1)
    assert () == r.warnings
    assert not r.driver_overloaded
    assert 10.0 == r.throughput == r.offered_rate


def test_late_sends_say_the_driver_could_not_keep_up() -> None:
    """More than 1% late sends: the driver is named as the limit, with what to do."""
    r = result(late=5)
    assert r.driver_overloaded
    (warning,) = r.warnings
    assert warning.startswith("the driver could not keep up: 5.0% of requests")
    assert "Add workers=" in warning


def test_waits_for_slots_explain_the_lateness() -> None:
    """With max_in_flight reached, the late sends are attributed to the waits."""
    r = result(late=30, waited=30)
    first, second = r.warnings
    assert first.startswith("max_in_flight=64 was reached: 30 sends waited")
    assert "waiting for a free slot" in second


def test_unsent_and_aborted() -> None:
    """Unsent requests are a warning, unless a threshold aborted the run on purpose."""
    assert "20 planned requests were never sent" in result(sent=80, completed=80).warnings[0]
    t = parse_threshold("p(99) < 1ms over 1s abort")
    aborted = LoadResult(
        **{**_fields(result(sent=80, completed=80)), "aborted_by": ThresholdResult(t, 0.5, False)}
    )
    assert not aborted.passed
    assert aborted.warnings[0].startswith("aborted: FAIL  p(99) < 1ms over 1s abort")
    assert not any("never sent" in w for w in aborted.warnings)


def test_error_rate_and_empty_run() -> None:
    """error_rate is errors / completed, 0.0 when nothing completed."""
    assert 0.25 == result(errors=25).error_rate
    empty = result(sent=0, completed=0)
    assert 0.0 == empty.error_rate == empty.late_fraction
    assert math.isfinite(empty.throughput)


def _fields(r: LoadResult) -> dict[str, object]:
    return {name: getattr(r, name) for name in LoadResult.__dataclass_fields__}
