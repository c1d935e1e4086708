"""Kind-preserving dispatch: pick the wrapper to run per call (for ``label_args``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

Picker = Callable[[tuple[Any, ...], dict[str, Any]], Callable[..., Any]]


def dispatching(func: Callable[..., Any], pick: Picker) -> Callable[..., Any]:
    """Return a wrapper of ``func``'s kind that runs ``pick(args, kwargs)(*args, **kwargs)``.

    The picked callable must be a wrapper of ``func`` (same kind); its result
    is awaited, delegated to (``yield from``) or forwarded item by item for
    async generators, so the outer wrapper stays a coroutine function or
    generator function like ``func``.
    """
    if inspect.isasyncgenfunction(func):

        async def dispatch_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            inner = pick(args, kwargs)(*args, **kwargs)
            to_send: Any = None
            thrown: BaseException | None = None
            while True:
                try:
                    if thrown is None:
                        item = await inner.asend(to_send)
                    else:
                        exc, thrown = thrown, None
                        item = await inner.athrow(exc)
                except StopAsyncIteration:
                    return
                try:
                    to_send = yield item
                except GeneratorExit:
                    await inner.aclose()
                    raise
                except BaseException as exc:  # thrown in by the consumer
                    thrown = exc

        wrapper: Callable[..., Any] = dispatch_async_generator
    elif inspect.iscoroutinefunction(func):

        async def dispatch_coroutine(*args: Any, **kwargs: Any) -> Any:
            return await pick(args, kwargs)(*args, **kwargs)

        wrapper = dispatch_coroutine
    elif inspect.isgeneratorfunction(func):

        def dispatch_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            return (yield from pick(args, kwargs)(*args, **kwargs))

        wrapper = dispatch_generator
    else:

        def dispatch_function(*args: Any, **kwargs: Any) -> Any:
            return pick(args, kwargs)(*args, **kwargs)

        wrapper = dispatch_function
    return functools.wraps(func)(wrapper)
