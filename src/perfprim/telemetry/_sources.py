"""Adapters from snapshots (cache stats, SLO trackers, any dataclass) to metric points.

A source is a name plus a callable returning a snapshot; an adapter turns the
snapshot into :class:`MetricPoint` values at collection time. The adapters
read the snapshots' public fields only (duck typing), so this module imports
neither :mod:`perfprim.cache` nor :mod:`perfprim.slo`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from perfprim.exceptions import ConfigurationError
from perfprim.telemetry._registry import MetricPoint

CIRCUIT_STATES = ("closed", "open", "half_open")


def window_label(seconds: float) -> str:
    """Format a window for a label: ``300 -> "5m"``, ``3600 -> "1h"``, ``90 -> "90s"``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def cache_stats_points(name: str, stats: Any) -> list[MetricPoint]:
    """Metric points of a cache's ``stats()`` snapshot (``CacheStats``).

    =====================================  =======  ====================
    point                                  kind     labels
    =====================================  =======  ====================
    ``<name>.hits``                        counter  ``tier``, ``backend``
    ``<name>.misses``                      counter  ``tier``, ``backend``
    ``<name>.backend_errors``              counter  ``tier``, ``backend``
    ``<name>.decode_errors``               counter  ``tier``, ``backend``
    ``<name>.circuit_state``               gauge    ``tier``, ``backend``, ``state``
    ``<name>.loads``                       counter
    ``<name>.load_errors``                 counter
    =====================================  =======  ====================

    ``tier`` is the level (``l1`` first), ``backend`` the tier's name
    (``memory``, ``redis``); ``circuit_state`` is 1 for the current state of
    the tier's breaker (``closed``, ``open``, ``half_open``), 0 for the others.

    Args:
        name: The source's name, e.g. ``"cache.users"``.
        stats: A ``CacheStats`` (``tiers`` of ``TierStats``, ``loads``, ``load_errors``).

    Returns:
        The points.
    """
    points: list[MetricPoint] = []
    for level, tier in enumerate(stats.tiers, start=1):
        # Two tiers may share a backend name (two memory tiers): the level keeps
        # their series apart.
        labels = (("tier", f"l{level}"), ("backend", str(tier.name)))
        points += [
            MetricPoint(f"{name}.hits", "counter", tier.hits, labels, "", "Cache hits per tier."),
            MetricPoint(
                f"{name}.misses", "counter", tier.misses, labels, "", "Cache misses per tier."
            ),
            MetricPoint(
                f"{name}.backend_errors",
                "counter",
                tier.errors,
                labels,
                "",
                "Tier failures the cache degraded past.",
            ),
            MetricPoint(
                f"{name}.decode_errors",
                "counter",
                tier.decode_errors,
                labels,
                "",
                "Payloads a tier could not decode.",
            ),
        ]
        if tier.circuit_state is not None:
            points += [
                MetricPoint(
                    f"{name}.circuit_state",
                    "gauge",
                    1.0 if tier.circuit_state == state else 0.0,
                    (*labels, ("state", state)),
                    "",
                    "Circuit breaker state of the tier (1 for the current state).",
                )
                for state in CIRCUIT_STATES
            ]
    points += [
        MetricPoint(f"{name}.loads", "counter", stats.loads, (), "", "Loader calls that returned."),
        MetricPoint(
            f"{name}.load_errors", "counter", stats.load_errors, (), "", "Loader calls that raised."
        ),
    ]
    return points


def slo_points(name: str, snapshot: Any) -> list[MetricPoint]:
    """Metric points of an ``SLOTracker.snapshot()`` (``SLOSnapshot``).

    ==========================================  =====  =====================================
    point                                       kind   labels
    ==========================================  =====  =====================================
    ``<name>.objective`` (ratio)                gauge
    ``<name>.sli`` (ratio)                      gauge  (absent without traffic)
    ``<name>.error_budget_remaining`` (ratio)   gauge
    ``<name>.error_budget_consumed`` (ratio)    gauge
    ``<name>.error`` (ratio)                    gauge  ``window`` (absent without traffic)
    ``<name>.burn_rate``                        gauge  ``window``
    ``<name>.window_events``                    gauge  ``window``
    ``<name>.window_good_events``               gauge  ``window``
    ``<name>.alert_firing``                     gauge  ``severity``, ``long_window``,
                                                       ``short_window`` (1 firing, 0 not)
    ``<name>.events``                           count  (since the tracker started)
    ``<name>.bad_events``                       count  (since the tracker started)
    ==========================================  =====  =====================================

    The two counters (Prometheus ``<name>_events_total`` and
    ``<name>_bad_events_total``) are what Prometheus rules read
    (``SLO.prometheus_rules(total=..., errors=...)``).

    Args:
        name: The source's name, e.g. ``"slo.checkout"``.
        snapshot: An ``SLOSnapshot``.

    Returns:
        The points.
    """
    slo = snapshot.slo
    points = [
        MetricPoint(f"{name}.objective", "gauge", slo.target, (), "ratio", "The SLO target."),
        MetricPoint(
            f"{name}.error_budget_remaining",
            "gauge",
            snapshot.budget_remaining,
            (),
            "ratio",
            "Share of the SLO window's error budget left (negative once missed).",
        ),
        MetricPoint(
            f"{name}.error_budget_consumed",
            "gauge",
            snapshot.budget_consumed,
            (),
            "ratio",
            "Share of the SLO window's error budget used.",
        ),
    ]
    if snapshot.sli is not None:
        points.append(
            MetricPoint(f"{name}.sli", "gauge", snapshot.sli, (), "ratio", "SLI over the window.")
        )
    for status in snapshot.windows:
        labels = (("window", window_label(status.window)),)
        if status.error_ratio is not None:
            points.append(
                MetricPoint(
                    f"{name}.error",
                    "gauge",
                    status.error_ratio,
                    labels,
                    "ratio",
                    "Bad events / all events over the window.",
                )
            )
        if status.burn_rate is not None:
            points.append(
                MetricPoint(
                    f"{name}.burn_rate",
                    "gauge",
                    status.burn_rate,
                    labels,
                    "",
                    "Error ratio / error budget over the window.",
                )
            )
        points += [
            MetricPoint(
                f"{name}.window_events", "gauge", status.total, labels, "", "Events in the window."
            ),
            MetricPoint(
                f"{name}.window_good_events",
                "gauge",
                status.good,
                labels,
                "",
                "Good events in the window.",
            ),
        ]
    points += [
        MetricPoint(
            f"{name}.events",
            "counter",
            getattr(snapshot, "events", 0),
            (),
            "",
            "Events counted since the tracker started.",
        ),
        MetricPoint(
            f"{name}.bad_events",
            "counter",
            getattr(snapshot, "bad_events", 0),
            (),
            "",
            "Bad events counted since the tracker started.",
        ),
    ]
    firing = set(snapshot.firing)
    for row in slo.alert_windows():
        points.append(
            MetricPoint(
                f"{name}.alert_firing",
                "gauge",
                1.0 if row in firing else 0.0,
                (
                    ("severity", str(row.severity)),
                    ("long_window", window_label(row.long_window)),
                    ("short_window", window_label(row.short_window)),
                ),
                "",
                "1 while the multiwindow burn-rate alert fires.",
            )
        )
    return points


def dataclass_points(
    name: str, snapshot: Any, *, counters: Collection[str] = ()
) -> list[MetricPoint]:
    """Metric points of any dataclass snapshot: one per int/float field.

    Fields named in ``counters`` are counters, the others gauges; bools,
    strings and nested values are skipped.

    Args:
        name: The source's name.
        snapshot: A dataclass instance.
        counters: Field names that are monotonic counters.

    Returns:
        The points.

    Raises:
        ConfigurationError: If ``snapshot`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(snapshot) or isinstance(snapshot, type):
        msg = f"dataclass_points needs a dataclass instance, got {type(snapshot).__name__}"
        raise ConfigurationError(msg)
    points = []
    for f in dataclasses.fields(snapshot):
        value = getattr(snapshot, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if f.name in counters:
            points.append(MetricPoint(f"{name}.{f.name}", "counter", value))
        else:
            points.append(MetricPoint(f"{name}.{f.name}", "gauge", value))
    return points
