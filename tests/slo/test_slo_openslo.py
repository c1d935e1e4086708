"""OpenSLO v1 loading: supported fields map to SLOs, unsupported ones fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfprim.exceptions import ConfigurationError
from perfprim.slo import (
    SLO,
    LatencySLO,
    OpenSLODefinition,
    RatioTimeslices,
    Timeslices,
    load_openslo,
)

BASE = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-availability
  displayName: API availability
spec:
  description: Share of successful API requests
  service: api
  indicatorRef: api-success-ratio
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: good
      target: 0.999
"""


def test_occurrences_document() -> None:
    """The basic document gives a 99.9% SLO over 28 rolling days, with its names."""
    assert OpenSLODefinition(
        name="api-availability",
        display_name="API availability",
        service="api",
        description="Share of successful API requests",
        slo=SLO(target=0.999, window=28 * 86400),
        objective="good",
    ) == load_openslo(BASE)


def test_target_percent_and_path(tmp_path: Path) -> None:
    """A targetPercent of 99.5 means 0.995; a Path is read from disk."""
    path = tmp_path / "slo.yaml"
    path.write_text(BASE.replace("target: 0.999", "targetPercent: 99.5"))
    assert 0.995 == pytest.approx(load_openslo(path).slo.target)


def test_timeslices_and_ratio_timeslices() -> None:
    """Timeslices carry timeSliceTarget and timeSliceWindow; RatioTimeslices the window."""
    text = BASE.replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices").replace(
        "      target: 0.999\n",
        "      target: 0.99\n      timeSliceTarget: 0.95\n      timeSliceWindow: 1m\n",
    )
    assert Timeslices(slice_target=0.95, slice_duration=60) == load_openslo(text).slo.budgeting
    text = BASE.replace("budgetingMethod: Occurrences", "budgetingMethod: RatioTimeslices").replace(
        "      target: 0.999\n", "      target: 0.99\n      timeSliceWindow: 300\n"
    )
    assert RatioTimeslices(slice_duration=300) == load_openslo(text).slo.budgeting


def test_latency_objective() -> None:
    """op: lte with a value (seconds) gives a LatencySLO with that threshold."""
    text = BASE.replace(
        "      target: 0.999\n", "      op: lte\n      value: 0.3\n      target: 0.99\n"
    )
    slo = load_openslo(text).slo
    assert LatencySLO(threshold=0.3, target=0.99, window=28 * 86400) == slo


def test_other_kinds_are_skipped() -> None:
    """A Service document next to the SLO is skipped; the week unit is understood."""
    text = (
        "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: api\nspec: {}\n---\n"
        + BASE.replace("duration: 28d", "duration: 4w")
    )
    assert 28 * 86400 == load_openslo(text).slo.window


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (BASE.replace("openslo/v1", "openslo/v1alpha"), "apiVersion must be openslo/v1"),
        (BASE.replace("kind: SLO", "kind: Thing"), "unknown kind 'Thing'"),
        (BASE.replace("kind: SLO", "kind: Service"), "holds no document of kind SLO"),
        (BASE + "---\n" + BASE, "pass name= to pick one"),
        (
            BASE.replace("isRolling: true", "isRolling: false"),
            r"spec.timeWindow\[0\].calendar: expected a mapping",
        ),
        (BASE.replace("duration: 28d", "duration: soon"), "duration such as"),
        (BASE + "  alertPolicies: [x]\n", "alert policy 'x' is not in the source"),
        (
            BASE.replace(
                "  budgetingMethod: Occurrences\n", "  budgetingMethod: Occurrences\n  foo: 1\n"
            ),
            "unsupported field",
        ),
        (
            BASE.replace("  displayName: API", "  owner: me\n  displayName: API"),
            r"metadata: unsupported field\(s\) owner",
        ),
        (BASE.replace("target: 0.999", "target: 99.9"), "pass the ratio 0.999"),
        (
            BASE.replace("target: 0.999", "target: 0.999\n      targetPercent: 99.9"),
            "exactly one of target",
        ),
        (BASE + "    - target: 0.99\n", "holds 2 SLO objectives"),
        (BASE.replace("Occurrences", "Timeslices"), "needs timeSliceWindow"),
        (BASE.replace("Occurrences", "Cosmic"), "expected one of Occurrences.*got 'Cosmic'"),
        (
            BASE.replace("target: 0.999", "target: 0.999\n      timeSliceWindow: 1m"),
            "only applies to Timeslices",
        ),
        (
            BASE.replace("target: 0.999", "target: 0.999\n      op: above\n      value: 3"),
            "expected one of lt, lte, gt, gte",
        ),
        (
            BASE.replace("target: 0.999", "target: 0.999\n      compositeWeight: 0"),
            "compositeWeight: expected a weight > 0",
        ),
        (BASE.replace("  service: api\n", ""), "spec.service"),
        ("{unclosed", "not valid YAML"),
        ("- 1\n", "expected an OpenSLO object"),
    ],
)
def test_unsupported_or_invalid_documents(text: str, match: str) -> None:
    """Every unsupported or invalid field gives a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=match):
        load_openslo(text)
