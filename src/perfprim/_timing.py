"""Kind-preserving timing wrappers shared by the histogram and telemetry decorators.

A decorator that times a call must time its *run*, not the creation of the
object the call returns: calling an ``async def`` only creates a coroutine, and
calling a generator function only creates a generator (prometheus_client issue
#48 is that bug). :func:`timing_wrapper` picks the wrapper at decoration time
from the function's kind, so the wrapper is the same kind as the function:

- ``def``: timed from the call until it returns or raises;
- ``async def``: from the first ``await`` of the coroutine until it completes;
- generator function: from the first ``next()`` until it is exhausted, raises
  or is closed;
- async generator function: the same, for ``__anext__``.

The hot path is one clock read before, one after and one callback: no lock, no
allocation beyond the call itself.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar

__all__ = ["ErrorCallback", "SuccessCallback", "timing_wrapper"]

F = TypeVar("F", bound=Callable[..., Any])

SuccessCallback = Callable[[int], object]
"""Called with the elapsed nanoseconds of a run that returned (or was closed)."""

ErrorCallback = Callable[[int, BaseException], object]
"""Called with the elapsed nanoseconds and the exception of a run that raised."""


def timing_wrapper(
    func: F,
    on_success: SuccessCallback,
    on_error: ErrorCallback,
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> F:
    """Wrap ``func`` so that every run reports its duration.

    Args:
        func: A function, coroutine function, generator function or async
            generator function.
        on_success: Receives the elapsed nanoseconds of each run that completed
            (for generators: exhausted or closed early by the consumer).
        on_error: Receives the elapsed nanoseconds and the exception of each
            run that raised; the exception is re-raised afterwards.
        clock: A nanosecond clock; injectable for tests.

    Returns:
        A wrapper of the same kind as ``func``, with its name, docstring,
        signature and ``__wrapped__``.
    """
    if inspect.isasyncgenfunction(func):
        return _wrap_async_generator(func, on_success, on_error, clock)
    if inspect.iscoroutinefunction(func):
        return _wrap_coroutine(func, on_success, on_error, clock)
    if inspect.isgeneratorfunction(func):
        return _wrap_generator(func, on_success, on_error, clock)
    return _wrap_function(func, on_success, on_error, clock)


def _wrap_function(
    func: F, on_success: SuccessCallback, on_error: ErrorCallback, clock: Callable[[], int]
) -> F:
    @functools.wraps(func)
    def timed_function(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            on_error(clock() - start, exc)
            raise
        on_success(clock() - start)
        return result

    return timed_function  # type: ignore[return-value]


def _wrap_coroutine(
    func: F, on_success: SuccessCallback, on_error: ErrorCallback, clock: Callable[[], int]
) -> F:
    @functools.wraps(func)
    async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            on_error(clock() - start, exc)
            raise
        on_success(clock() - start)
        return result

    return timed_coroutine  # type: ignore[return-value]


def _wrap_generator(
    func: F, on_success: SuccessCallback, on_error: ErrorCallback, clock: Callable[[], int]
) -> F:
    @functools.wraps(func)
    def timed_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        start = clock()
        try:
            # ``yield from`` forwards send(), throw() and close() unchanged.
            result = yield from func(*args, **kwargs)
        except GeneratorExit:
            on_success(clock() - start)
            raise
        except BaseException as exc:
            on_error(clock() - start, exc)
            raise
        on_success(clock() - start)
        return result

    return timed_generator  # type: ignore[return-value]


def _wrap_async_generator(
    func: F, on_success: SuccessCallback, on_error: ErrorCallback, clock: Callable[[], int]
) -> F:
    @functools.wraps(func)
    async def timed_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        start = clock()
        agen = func(*args, **kwargs)
        try:
            # There is no ``yield from`` for async generators: forward
            # asend()/athrow()/aclose() by hand.
            try:
                value = await agen.__anext__()
            except StopAsyncIteration:
                on_success(clock() - start)
                return
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as exc:  # thrown in by the consumer
                    try:
                        value = await agen.athrow(exc)
                    except StopAsyncIteration:
                        break
                else:
                    try:
                        value = await agen.asend(sent)
                    except StopAsyncIteration:
                        break
        except GeneratorExit:
            on_success(clock() - start)
            raise
        except BaseException as exc:
            on_error(clock() - start, exc)
            raise
        on_success(clock() - start)

    return timed_async_generator  # type: ignore[return-value]
