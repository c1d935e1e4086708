"""Kind-preserving span wrappers shared by ``@traced`` and ``@instrument``.

Each wrapper, per call:

1. compares the global tracer provider with the one it saw last (identity);
2. with no SDK configured, calls ``fallback`` (the function itself for
   ``@traced``, the timed wrapper for ``@instrument``) and nothing else;
3. with an SDK, starts one span (``tracer.start_span`` + ``context.attach``,
   cheaper than the ``start_as_current_span`` context manager), runs the
   function with the span current, marks errors per the OTel conventions and
   ends the span. ``hooks`` (from ``@instrument``) also receive the elapsed
   nanoseconds and the span, for the histogram and its exemplars.

Generators and async generators get a span that starts at the first ``next()``
and ends when they are exhausted, raise or are closed; the span is current
only while the generator body runs (it is attached around each step), never
while the consumer runs between steps.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, Protocol

from perfprim.telemetry._args import ArgReader, AttributeValue
from perfprim.telemetry._conventions import error_type
from perfprim.telemetry._otelapi import OtelApi, TracerState, record_error


class SpanHooks(Protocol):
    """What ``@instrument`` plugs into a span wrapper (a timer series)."""

    def span_success(self, elapsed_ns: int, span: Any) -> None:
        """Record a run that completed, with its span (for the exemplar)."""

    def span_error(self, elapsed_ns: int, exc: BaseException, span: Any) -> None:
        """Record a run that raised."""


class SpanSpec:
    """Everything a span wrapper needs, resolved at decoration time."""

    __slots__ = ("api", "attributes", "clock", "fallback", "hooks", "name", "reader", "state")

    def __init__(
        self,
        *,
        api: OtelApi,
        state: TracerState,
        name: str,
        attributes: Mapping[str, AttributeValue],
        reader: ArgReader | None,
        fallback: Callable[..., Any],
        hooks: SpanHooks | None,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.api = api
        self.state = state
        self.name = name
        self.attributes = dict(attributes)
        self.reader = reader
        self.fallback = fallback
        self.hooks = hooks
        self.clock = clock


def span_wrapper(func: Callable[..., Any], spec: SpanSpec) -> Callable[..., Any]:
    """Return the span wrapper of the same kind as ``func``."""
    if inspect.isasyncgenfunction(func):
        wrapper = _async_generator(func, spec)
    elif inspect.iscoroutinefunction(func):
        wrapper = _coroutine(func, spec)
    elif inspect.isgeneratorfunction(func):
        wrapper = _generator(func, spec)
    else:
        wrapper = _function(func, spec)
    return functools.wraps(func)(wrapper)


def _fail(spec: SpanSpec, span: Any, exc: BaseException, elapsed_ns: int) -> None:
    hooks = spec.hooks
    if isinstance(exc, Exception):
        record_error(spec.api, span, exc, error_type(exc))
    if hooks is not None:
        hooks.span_error(elapsed_ns, exc, span)


def _function(func: Callable[..., Any], spec: SpanSpec) -> Callable[..., Any]:
    api = spec.api
    trace_mod = api.trace
    state = spec.state
    fallback = spec.fallback
    attach = api.attach
    detach = api.detach
    set_span_in_context = api.set_span_in_context
    name = spec.name
    base = spec.attributes
    reader = spec.reader
    hooks = spec.hooks
    clock = spec.clock

    def traced_function(*args: Any, **kwargs: Any) -> Any:
        provider = trace_mod._TRACER_PROVIDER
        if provider is not state.provider:
            state.refresh(provider)
        tracer = state.tracer
        if tracer is None:
            return fallback(*args, **kwargs)
        attributes = base if reader is None else {**base, **reader.read(args, kwargs)}
        span = tracer.start_span(name, attributes=attributes)
        token = attach(set_span_in_context(span))
        start = clock()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _fail(spec, span, exc, clock() - start)
            raise
        else:
            if hooks is not None:
                hooks.span_success(clock() - start, span)
            return result
        finally:
            detach(token)
            span.end()

    return traced_function


def _coroutine(func: Callable[..., Any], spec: SpanSpec) -> Callable[..., Any]:
    api = spec.api
    trace_mod = api.trace
    state = spec.state
    fallback = spec.fallback
    attach = api.attach
    detach = api.detach
    set_span_in_context = api.set_span_in_context
    name = spec.name
    base = spec.attributes
    reader = spec.reader
    hooks = spec.hooks
    clock = spec.clock

    async def traced_coroutine(*args: Any, **kwargs: Any) -> Any:
        provider = trace_mod._TRACER_PROVIDER
        if provider is not state.provider:
            state.refresh(provider)
        tracer = state.tracer
        if tracer is None:
            return await fallback(*args, **kwargs)
        attributes = base if reader is None else {**base, **reader.read(args, kwargs)}
        span = tracer.start_span(name, attributes=attributes)
        token = attach(set_span_in_context(span))
        start = clock()
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            _fail(spec, span, exc, clock() - start)
            raise
        else:
            if hooks is not None:
                hooks.span_success(clock() - start, span)
            return result
        finally:
            detach(token)
            span.end()

    return traced_coroutine


def _generator(func: Callable[..., Any], spec: SpanSpec) -> Callable[..., Any]:
    api = spec.api
    trace_mod = api.trace
    state = spec.state
    fallback = spec.fallback
    attach = api.attach
    detach = api.detach
    hooks = spec.hooks
    clock = spec.clock

    def traced_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        provider = trace_mod._TRACER_PROVIDER
        if provider is not state.provider:
            state.refresh(provider)
        tracer = state.tracer
        if tracer is None:
            return (yield from fallback(*args, **kwargs))
        attributes = (
            spec.attributes
            if spec.reader is None
            else {**spec.attributes, **spec.reader.read(args, kwargs)}
        )
        span = tracer.start_span(spec.name, attributes=attributes)
        ctx = api.set_span_in_context(span)
        start = clock()
        gen = func(*args, **kwargs)
        to_send: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = attach(ctx)
                try:
                    if thrown is None:
                        item = gen.send(to_send)
                    else:
                        exc, thrown = thrown, None
                        item = gen.throw(exc)
                except StopIteration as stop:
                    result = stop.value
                    break
                finally:
                    detach(token)
                try:
                    to_send = yield item
                except GeneratorExit:
                    token = attach(ctx)
                    try:
                        gen.close()
                    finally:
                        detach(token)
                    raise
                except BaseException as exc:  # thrown in by the consumer
                    thrown = exc
        except GeneratorExit:
            if hooks is not None:
                hooks.span_success(clock() - start, span)
            span.end()
            raise
        except BaseException as exc:
            _fail(spec, span, exc, clock() - start)
            span.end()
            raise
        if hooks is not None:
            hooks.span_success(clock() - start, span)
        span.end()
        return result

    return traced_generator


def _async_generator(func: Callable[..., Any], spec: SpanSpec) -> Callable[..., Any]:
    api = spec.api
    trace_mod = api.trace
    state = spec.state
    fallback = spec.fallback
    attach = api.attach
    detach = api.detach
    hooks = spec.hooks
    clock = spec.clock

    async def traced_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        provider = trace_mod._TRACER_PROVIDER
        if provider is not state.provider:
            state.refresh(provider)
        tracer = state.tracer
        if tracer is None:
            inner = fallback(*args, **kwargs)
            ctx = None
            span = None
        else:
            attributes = (
                spec.attributes
                if spec.reader is None
                else {**spec.attributes, **spec.reader.read(args, kwargs)}
            )
            span = tracer.start_span(spec.name, attributes=attributes)
            ctx = api.set_span_in_context(span)
            inner = func(*args, **kwargs)
        start = clock()
        to_send: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = attach(ctx) if ctx is not None else None
                try:
                    if thrown is None:
                        item = await inner.asend(to_send)
                    else:
                        exc, thrown = thrown, None
                        item = await inner.athrow(exc)
                except StopAsyncIteration:
                    break
                finally:
                    if token is not None:
                        detach(token)
                try:
                    to_send = yield item
                except GeneratorExit:
                    token = attach(ctx) if ctx is not None else None
                    try:
                        await inner.aclose()
                    finally:
                        if token is not None:
                            detach(token)
                    raise
                except BaseException as exc:  # thrown in by the consumer
                    thrown = exc
        except GeneratorExit:
            if span is not None:
                if hooks is not None:
                    hooks.span_success(clock() - start, span)
                span.end()
            raise
        except BaseException as exc:
            if span is not None:
                _fail(spec, span, exc, clock() - start)
                span.end()
            raise
        if span is not None:
            if hooks is not None:
                hooks.span_success(clock() - start, span)
            span.end()

    return traced_async_generator
