"""The kind-preserving timing wrappers time the run, not the creation."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from perfprim._timing import timing_wrapper


class FakeClock:
    """A nanosecond clock that advances only when told to."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock at 0 ns."""
    return FakeClock()


def make(
    func: Callable[..., object], clock: FakeClock
) -> tuple[Callable[..., object], list[int], list[tuple[int, type[BaseException]]]]:
    """Wrap ``func`` and return the wrapper and the lists it reports into."""
    ok: list[int] = []
    errors: list[tuple[int, type[BaseException]]] = []
    wrapped = timing_wrapper(
        func, ok.append, lambda ns, exc: errors.append((ns, type(exc))), clock=clock
    )
    return wrapped, ok, errors


def test_function_success_and_error(clock: FakeClock) -> None:
    """A plain function reports its elapsed time, and errors are reported then re-raised."""

    def work(fail: bool) -> int:
        clock.advance(70)
        if fail:
            raise KeyError("x")
        return 5

    wrapped, ok, errors = make(work, clock)
    assert 5 == wrapped(False)
    with pytest.raises(KeyError):
        wrapped(True)
    assert [70] == ok
    assert [(70, KeyError)] == errors


async def test_coroutine_is_timed_when_awaited_not_when_created(clock: FakeClock) -> None:
    """Creating the coroutine records nothing; the await records the run's duration."""

    async def work() -> str:
        clock.advance(300)
        await asyncio.sleep(0)
        return "done"

    wrapped, ok, _ = make(work, clock)
    assert inspect.iscoroutinefunction(wrapped)
    coro = wrapped()
    clock.advance(1_000)  # time between creation and await is not the run
    assert [] == ok
    assert "done" == await coro
    assert [300] == ok


def test_generator_is_timed_until_exhausted(clock: FakeClock) -> None:
    """A generator is timed from the first next() to exhaustion, and stays a generator."""

    def work() -> Iterator[int]:
        for i in range(3):
            clock.advance(10)
            yield i

    wrapped, ok, _ = make(work, clock)
    assert inspect.isgeneratorfunction(wrapped)
    gen = wrapped()
    clock.advance(500)
    assert [] == ok
    assert [0, 1, 2] == list(gen)
    assert [30] == ok


def test_generator_closed_early_counts_as_success(clock: FakeClock) -> None:
    """Closing a generator early records the time until close()."""

    def work() -> Iterator[int]:
        while True:
            clock.advance(10)
            yield 1

    wrapped, ok, errors = make(work, clock)
    gen = wrapped()
    next(gen)
    next(gen)
    gen.close()
    assert [20] == ok
    assert [] == errors


def test_generator_send_and_return_value_pass_through(clock: FakeClock) -> None:
    """send() reaches the generator and its return value reaches ``yield from``."""

    def work() -> object:
        total = 0
        while True:
            x = yield total
            if x is None:
                return total
            total += x

    wrapped, ok, _ = make(work, clock)

    def outer() -> object:
        return (yield from wrapped())

    gen = outer()
    next(gen)
    gen.send(2)
    gen.send(3)
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    assert 5 == stop.value.value
    assert 1 == len(ok)


def test_generator_error_is_reported(clock: FakeClock) -> None:
    """An exception inside the generator is reported with its type."""

    def work() -> Iterator[int]:
        yield 1
        clock.advance(5)
        raise RuntimeError("boom")

    wrapped, _, errors = make(work, clock)
    with pytest.raises(RuntimeError):
        list(wrapped())
    assert [(5, RuntimeError)] == errors


async def test_async_generator_timed_until_exhausted(clock: FakeClock) -> None:
    """An async generator stays one and is timed over its whole iteration."""

    async def work() -> AsyncIterator[int]:
        for i in range(4):
            clock.advance(25)
            await asyncio.sleep(0)
            yield i

    wrapped, ok, _ = make(work, clock)
    assert inspect.isasyncgenfunction(wrapped)
    assert [0, 1, 2, 3] == [x async for x in wrapped()]
    assert [100] == ok


async def test_async_generator_athrow_aclose_and_asend(clock: FakeClock) -> None:
    """asend/athrow/aclose are forwarded to the wrapped async generator."""
    seen: list[object] = []

    async def work() -> AsyncIterator[int]:
        try:
            while True:
                try:
                    got = yield 1
                    seen.append(got)
                except ValueError as exc:
                    seen.append(type(exc))
                    yield 2
        finally:
            seen.append("closed")

    wrapped, ok, errors = make(work, clock)
    agen = wrapped()
    assert 1 == await agen.__anext__()
    assert 1 == await agen.asend("hello")
    assert 2 == await agen.athrow(ValueError("x"))
    await agen.aclose()
    assert ["hello", ValueError, "closed"] == seen
    assert 1 == len(ok)
    assert [] == errors


async def test_async_generator_error_is_reported(clock: FakeClock) -> None:
    """An exception raised inside the async generator reaches on_error and the caller."""

    async def work() -> AsyncIterator[int]:
        yield 1
        raise LookupError

    wrapped, _, errors = make(work, clock)
    with pytest.raises(LookupError):
        [x async for x in wrapped()]
    assert [(0, LookupError)] == errors


async def test_empty_async_generator(clock: FakeClock) -> None:
    """An async generator that yields nothing still reports one run."""

    async def work() -> AsyncIterator[int]:
        clock.advance(7)
        return
        yield  # pragma: no cover

    wrapped, ok, _ = make(work, clock)
    assert [] == [x async for x in wrapped()]
    assert [7] == ok


def test_metadata_is_preserved(clock: FakeClock) -> None:
    """Name, docstring, signature and __wrapped__ survive wrapping."""

    def documented(a: int, *, b: str = "x") -> str:
        """Doc."""
        return b * a

    wrapped, _, _ = make(documented, clock)
    assert "documented" == wrapped.__name__
    assert "Doc." == wrapped.__doc__
    assert documented is wrapped.__wrapped__  # type: ignore[attr-defined]
    assert inspect.signature(documented) == inspect.signature(wrapped)
