"""Fixtures for the telemetry tests: a real OTel SDK tracer provider with an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def span_exporter() -> Iterator[Any]:
    """A real SDK ``InMemorySpanExporter`` (``tracer_provider`` feeds it synchronously)."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def tracer_provider(span_exporter: Any) -> Iterator[Any]:
    """A real SDK ``TracerProvider`` exporting to ``span_exporter`` (not the global one)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()
