"""``@traced``: spans per the OTel conventions, kind preservation, the no-SDK fast path."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from typing import Any

import pytest

from perfprim.exceptions import ConfigurationError
from perfprim.telemetry import traced


class BoomError(Exception):
    """A domain error with a module-qualified type name."""


def _only_span(exporter: Any) -> Any:
    spans = exporter.get_finished_spans()
    assert 1 == len(spans)
    return spans[0]


def test_span_carries_conventions_on_success(tracer_provider: Any, span_exporter: Any) -> None:
    """A successful call gives one span named after the function, status unset."""
    from opentelemetry.trace import StatusCode

    @traced(tracer_provider=tracer_provider)
    def load_user(user_id: int) -> int:
        return user_id * 2

    assert 42 == load_user(21)
    span = _only_span(span_exporter)
    qualified = f"{__name__}.test_span_carries_conventions_on_success.<locals>.load_user"
    assert qualified == span.name
    assert qualified == span.attributes["code.function.name"]
    assert StatusCode.UNSET == span.status.status_code
    assert "error.type" not in span.attributes
    assert "user_id" not in span.attributes  # no argument values unless asked for


def test_span_records_error_per_conventions(tracer_provider: Any, span_exporter: Any) -> None:
    """An exception sets error.type, an exception event and status ERROR with a description."""
    from opentelemetry.trace import StatusCode

    @traced(
        name="db.load_user", attributes={"db.system": "postgresql"}, tracer_provider=tracer_provider
    )
    def load_user() -> None:
        raise BoomError("no such user")

    with pytest.raises(BoomError):
        load_user()
    span = _only_span(span_exporter)
    assert "db.load_user" == span.name
    assert "postgresql" == span.attributes["db.system"]
    assert f"{__name__}.BoomError" == span.attributes["error.type"]
    assert StatusCode.ERROR == span.status.status_code
    assert "BoomError: no such user" == span.status.description
    assert ["exception"] == [event.name for event in span.events]
    assert f"{__name__}.BoomError" == span.events[0].attributes["exception.type"]


def test_builtin_error_type_is_unqualified(tracer_provider: Any, span_exporter: Any) -> None:
    """Builtin exceptions are named without the ``builtins.`` prefix."""

    @traced(tracer_provider=tracer_provider)
    def fail() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        fail()
    assert "KeyError" == _only_span(span_exporter).attributes["error.type"]


def test_record_args_by_name_only(tracer_provider: Any, span_exporter: Any) -> None:
    """Only the named arguments become attributes; a mapping renames them."""

    @traced(record_args={"tenant": "app.tenant"}, tracer_provider=tracer_provider)
    def handle(tenant: str, password: str, *, obj: object = None) -> str:
        return tenant

    handle("acme", "secret")
    handle(password="x", tenant="globex")
    spans = span_exporter.get_finished_spans()
    assert ["acme", "globex"] == [s.attributes["app.tenant"] for s in spans]
    assert all("password" not in s.attributes for s in spans)


def test_record_args_stringifies_other_values(tracer_provider: Any, span_exporter: Any) -> None:
    """A non-primitive argument value is recorded as its ``str``; defaults are used."""

    @traced(record_args=("items", "limit"), tracer_provider=tracer_provider)
    def handle(items: list[int], limit: int = 10) -> None:
        return None

    handle([1, 2])
    span = _only_span(span_exporter)
    assert "[1, 2]" == span.attributes["items"]
    assert 10 == span.attributes["limit"]


def test_unknown_record_arg_fails_fast() -> None:
    """Naming a parameter the function does not have is a ConfigurationError naming the choices."""
    with pytest.raises(ConfigurationError, match="choose among: a, b"):

        @traced(record_args=("c",))
        def f(a: int, b: int) -> None:
            return None


@pytest.mark.parametrize(
    "options",
    [
        {"record_args": "tenant"},
        {"attributes": {"k": [1, 2]}},
        {"attributes": [("k", "v")]},
        {"name": ""},
    ],
)
def test_bad_options_fail_fast(options: dict[str, Any]) -> None:
    """Invalid options raise ConfigurationError at decoration time."""
    with pytest.raises(ConfigurationError):

        @traced(**options)
        def tenant_fn(tenant: str) -> None:
            return None


def test_wrapper_keeps_name_signature_and_wrapped() -> None:
    """The wrapper is functools.wraps-compatible and keeps the signature."""

    def original(a: int, *, b: str = "x") -> str:
        """Doc."""
        return f"{a}{b}"

    wrapped = traced(original)
    assert original is wrapped.__wrapped__  # type: ignore[attr-defined]
    assert "original" == wrapped.__name__
    assert "Doc." == wrapped.__doc__
    assert inspect.signature(original) == inspect.signature(wrapped)


async def test_coroutine_span_times_the_run(tracer_provider: Any, span_exporter: Any) -> None:
    """An ``async def`` stays a coroutine function; the span is current inside the run."""
    from opentelemetry import trace

    seen: list[str] = []

    @traced(tracer_provider=tracer_provider)
    async def work() -> int:
        await asyncio.sleep(0)
        seen.append(trace.get_current_span().name)  # type: ignore[attr-defined]
        return 7

    assert inspect.iscoroutinefunction(work)
    coroutine = work()
    assert () == tuple(span_exporter.get_finished_spans())  # creation starts no span
    assert 7 == await coroutine
    span = _only_span(span_exporter)
    assert [span.name] == seen


async def test_coroutine_error(tracer_provider: Any, span_exporter: Any) -> None:
    """An ``async def`` that raises gives an ERROR span."""
    from opentelemetry.trace import StatusCode

    @traced(tracer_provider=tracer_provider)
    async def work() -> None:
        raise BoomError("x")

    with pytest.raises(BoomError):
        await work()
    assert StatusCode.ERROR == _only_span(span_exporter).status.status_code


def test_generator_span_covers_the_run_not_the_consumer(
    tracer_provider: Any, span_exporter: Any
) -> None:
    """A generator's span starts at the first next() and is current only inside the body."""
    from opentelemetry import trace

    inside: list[bool] = []

    @traced(tracer_provider=tracer_provider)
    def numbers(n: int) -> Generator[int, Any, Any]:
        for i in range(n):
            inside.append(trace.get_current_span().is_recording())
            received = yield i
            if received is not None:
                yield received

    assert inspect.isgeneratorfunction(numbers)
    gen = numbers(3)
    assert () == tuple(span_exporter.get_finished_spans())
    outside = []
    values = []
    for value in gen:
        values.append(value)
        outside.append(trace.get_current_span().is_recording())
    assert [0, 1, 2] == values
    assert [True, True, True] == inside
    assert [False, False, False] == outside
    _only_span(span_exporter)
    gen2 = numbers(2)
    assert 0 == next(gen2)
    assert 99 == gen2.send(99)


def test_generator_closed_early_is_not_an_error(tracer_provider: Any, span_exporter: Any) -> None:
    """Closing a generator early ends its span without error status."""
    from opentelemetry.trace import StatusCode

    @traced(tracer_provider=tracer_provider)
    def numbers() -> Generator[int, Any, Any]:
        yield from range(10)

    gen = numbers()
    next(gen)
    gen.close()
    assert StatusCode.UNSET == _only_span(span_exporter).status.status_code


def test_generator_throw_and_return_value(tracer_provider: Any, span_exporter: Any) -> None:
    """throw() reaches the generator; an unhandled one marks the span failed."""
    from opentelemetry.trace import StatusCode

    @traced(tracer_provider=tracer_provider)
    def numbers() -> Generator[int, Any, Any]:
        try:
            yield 1
        except KeyError:
            yield 2
        yield 3

    gen = numbers()
    assert 1 == next(gen)
    assert 2 == gen.throw(KeyError("k"))
    with pytest.raises(BoomError):
        gen.throw(BoomError("stop"))
    assert StatusCode.ERROR == _only_span(span_exporter).status.status_code

    @traced(tracer_provider=tracer_provider)
    def delegate() -> Generator[int, Any, Any]:
        yield 1
        return None

    assert [1] == list(delegate())


async def test_async_generator_span(tracer_provider: Any, span_exporter: Any) -> None:
    """An async generator stays one; its span covers the run; errors are recorded."""
    from opentelemetry.trace import StatusCode

    @traced(tracer_provider=tracer_provider)
    async def numbers(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i
        if n == 1:
            raise BoomError("late")

    assert inspect.isasyncgenfunction(numbers)
    assert [0, 1] == [i async for i in numbers(2)]
    assert StatusCode.UNSET == _only_span(span_exporter).status.status_code
    span_exporter.clear()
    with pytest.raises(BoomError):
        _ = [i async for i in numbers(1)]
    assert StatusCode.ERROR == _only_span(span_exporter).status.status_code
    span_exporter.clear()
    agen = numbers(5)
    assert 0 == await agen.__anext__()
    await agen.aclose()
    assert StatusCode.UNSET == _only_span(span_exporter).status.status_code


async def test_async_generator_without_sdk_forwards_everything() -> None:
    """With no provider, an async generator still forwards asend/athrow."""

    @traced
    async def echo() -> AsyncGenerator[int, int]:
        value = 0
        while True:
            try:
                value = yield value + 1
            except KeyError:
                value = 100

    agen = echo()
    assert 1 == await agen.__anext__()
    assert 6 == await agen.asend(5)
    assert 101 == await agen.athrow(KeyError("k"))
    await agen.aclose()


def test_method_name_is_qualified(tracer_provider: Any, span_exporter: Any) -> None:
    """Methods are spanned with their class in ``code.function.name``."""

    class Repo:
        @traced(tracer_provider=tracer_provider)
        def get(self, key: str) -> str:
            return key

    assert "k" == Repo().get("k")
    assert _only_span(span_exporter).name.endswith("<locals>.Repo.get")


def test_nested_spans_are_parented(tracer_provider: Any, span_exporter: Any) -> None:
    """A traced call inside another is its child."""

    @traced(tracer_provider=tracer_provider)
    def inner() -> None:
        return None

    @traced(tracer_provider=tracer_provider)
    def outer() -> None:
        inner()

    outer()
    child, parent = span_exporter.get_finished_spans()
    assert parent.context.span_id == child.parent.span_id


def test_tracer_provider_global_is_the_one_the_fast_path_reads() -> None:
    """The no-SDK fast path reads ``opentelemetry.trace._TRACER_PROVIDER``: it must exist."""
    from opentelemetry import trace

    assert hasattr(trace, "_TRACER_PROVIDER")


def test_fast_path_then_provider_set_later() -> None:
    """With no SDK no span is made; a global provider set later is noticed on the next call."""
    code = textwrap.dedent(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from perfprim.telemetry import traced

        @traced
        def f():
            return trace.get_current_span().is_recording()

        before = f()
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        after = f()
        print(json.dumps([before, after, [s.name for s in exporter.get_finished_spans()]]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    before, after, names = json.loads(out)
    assert [False, True] == [before, after]
    assert 1 == len(names)
    assert names[0].endswith(".f")


def test_noop_provider_takes_the_fast_path() -> None:
    """An explicit NoOpTracerProvider gives no span and the function still runs."""
    from opentelemetry.trace import NoOpTracerProvider, get_current_span

    @traced(tracer_provider=NoOpTracerProvider())
    def f() -> bool:
        return get_current_span().is_recording()

    assert False is f()
