"""``@traced``: one OpenTelemetry span per call, nearly free when no SDK is configured."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, overload

from perfprim.exceptions import ConfigurationError
from perfprim.telemetry._args import ArgReader, AttributeValue, name_map
from perfprim.telemetry._conventions import CODE_FUNCTION_NAME, function_name
from perfprim.telemetry._otelapi import TracerState, otel_api
from perfprim.telemetry._spans import SpanSpec, span_wrapper

P = ParamSpec("P")
R = TypeVar("R")


def check_attributes(attributes: object) -> dict[str, AttributeValue]:
    """Validate static span attributes (str keys; str, bool, int or float values).

    Raises:
        ConfigurationError: If a key or a value has another type.
    """
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        msg = "attributes must be a mapping, e.g. attributes={'db.system': 'postgresql'}"
        raise ConfigurationError(msg)
    for key, value in attributes.items():
        if not isinstance(key, str) or not isinstance(value, (str, bool, int, float)):
            msg = (
                f"span attribute {key!r}: {value!r} is not allowed; keys are str and "
                "values are str, bool, int or float"
            )
            raise ConfigurationError(msg)
    return {str(key): value for key, value in attributes.items()}


def build_span_spec(
    func: Callable[..., Any],
    *,
    name: str | None,
    attributes: Mapping[str, AttributeValue] | None,
    record_args: Sequence[str] | Mapping[str, str],
    tracer_provider: object | None,
    fallback: Callable[..., Any],
    hooks: Any,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> SpanSpec:
    """Resolve a span wrapper's configuration at decoration time."""
    if name is not None and (not isinstance(name, str) or not name):  # type: ignore[redundant-expr,unused-ignore]
        msg = f"name must be a non-empty string (got {name!r}), e.g. name='db.load_user'"
        raise ConfigurationError(msg)
    qualified = function_name(func)
    base: dict[str, AttributeValue] = {CODE_FUNCTION_NAME: qualified}
    base.update(check_attributes(attributes))
    names = name_map(record_args, option="record_args")
    reader = ArgReader(func, names) if names else None
    api = otel_api()
    state = TracerState(api, tracer_provider)
    return SpanSpec(
        api=api,
        state=state,
        name=name or qualified,
        attributes=base,
        reader=reader,
        fallback=fallback,
        hooks=hooks,
        clock=clock,
    )


@overload
def traced(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced(
    *,
    name: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    record_args: Sequence[str] | Mapping[str, str] = (),
    tracer_provider: object | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    record_args: Sequence[str] | Mapping[str, str] = (),
    tracer_provider: object | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Wrap a function so that every run is one OpenTelemetry span.

    Works on ``def``, ``async def``, generator and async generator functions
    and methods; the wrapper keeps the function's kind, name, signature and
    ``__wrapped__``. The span covers the real run (for generators: until
    exhausted, failed or closed) and carries ``code.function.name``. On an
    exception (an ``Exception``; cancellation is not an error) the span gets
    ``error.type``, an ``exception`` event and status ERROR with a
    description; on success the status is left unset. Argument values are
    never recorded unless named in ``record_args``.

    With no OpenTelemetry SDK configured (no global tracer provider, or the
    no-op one) the wrapper only calls the function; it notices a provider set
    later on the next call.

    Args:
        func: The function, when used as ``@traced`` without parentheses.
        name: The span name; defaults to the qualified function name.
        attributes: Static span attributes, e.g. ``{"db.system": "postgresql"}``.
        record_args: Parameter names whose values become span attributes
            (a sequence: the attribute is the parameter name; a mapping:
            parameter name -> attribute key). Values that are not
            str/bool/int/float are recorded as ``str(value)``.
        tracer_provider: A tracer provider to use instead of the global one.

    Returns:
        The wrapper, or a decorator when called with options only.

    Raises:
        ConfigurationError: If an option is invalid (unknown parameter name in
            ``record_args``, an attribute value of an unsupported type, ...).
        MissingDependencyError: If ``opentelemetry-api`` is not installed.

    Example:
        >>> from perfprim.telemetry import traced
        >>> @traced(name="demo.add", attributes={"demo.kind": "math"})
        ... def add(a: int, b: int) -> int:
        ...     return a + b
        >>> add(2, 3)
        5
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        spec = build_span_spec(
            fn,
            name=name,
            attributes=attributes,
            record_args=record_args,
            tracer_provider=tracer_provider,
            fallback=fn,
            hooks=None,
        )
        return span_wrapper(fn, spec)

    if func is not None:
        return decorate(func)
    return decorate
