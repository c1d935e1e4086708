"""The cached decorator: ignore=, write-through set(), and the HitPath it is built on."""

from __future__ import annotations

from typing import Any

import pytest

from perfprim.cache import MemoryTier
from perfprim.exceptions import ConfigurationError
from tests.cache.conformance import FakeClock
from tests.cache.helpers import Driver, build


class Request:
    """A framework request: no stable repr, so it can never be part of a key."""


@pytest.fixture(params=["sync", "async"])
def drv(request: pytest.FixtureRequest) -> Driver:
    """A memory-only TieredCache or AsyncTieredCache."""
    return build(str(request.param), FakeClock(), l1=MemoryTier(maxsize=100))


async def test_ignored_arguments_are_left_out_of_the_key(drv: Driver) -> None:
    """ignore=["request", "db"]: calls differing only in those share one entry."""
    calls: list[int] = []

    def profile(request: object, user_id: int, db: object = None) -> str:
        calls.append(user_id)
        return f"user {user_id}"

    fn = drv.cached(profile, "profile", ignore=["request", "db"])
    assert "user 1" == await drv.call(fn, Request(), 1, db=object())
    assert "user 1" == await drv.call(fn, Request(), user_id=1)
    assert "user 2" == await drv.call(fn, Request(), 2)
    assert [1, 2] == calls
    await drv.call(fn.invalidate, Request(), 1)
    assert "user 1" == await drv.call(fn, Request(), 1)
    assert [1, 2, 1] == calls


async def test_ignore_with_var_args(drv: Driver) -> None:
    """The generic wrapper (*args, **kwargs) honours ignore= too."""
    calls: list[tuple[Any, ...]] = []

    def search(request: object, *terms: str, **filters: str) -> int:
        calls.append((terms, tuple(sorted(filters.items()))))
        return len(terms)

    fn = drv.cached(search, "search", ignore=["request"])
    assert 2 == await drv.call(fn, Request(), "a", "b", lang="en")
    assert 2 == await drv.call(fn, Request(), "a", "b", lang="en")
    assert 2 == await drv.call(fn, Request(), "a", "b", lang="fr")
    assert 2 == len(calls)


async def test_noself_and_ignore_together(drv: Driver) -> None:
    """A method with noself=True and an ignored argument: instances and requests share."""
    calls: list[int] = []

    def find(self: object, request: object, item: int) -> int:
        calls.append(item)
        return item * 2

    fn = drv.cached(find, "find", noself=True, ignore=["request"])
    assert 4 == await drv.call(fn, object(), Request(), 2)
    assert 4 == await drv.call(fn, object(), Request(), 2)
    assert [2] == calls


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"ignore": ["nope"]}, r"ignore names 'nope', but .* has no such parameter"),
        ({"ignore": "request"}, r"write ignore=\['request'\]"),
        ({"ignore": ["request"], "key": lambda request, x: str(x)}, "no effect with key="),
    ],
)
def test_bad_ignore_fails_at_decoration(drv: Driver, options: dict[str, Any], match: str) -> None:
    """A wrong ignore= fails when the function is decorated, not on its first call."""
    with pytest.raises(ConfigurationError, match=match):
        drv.cached(lambda request, x: x, "f", **options)


async def test_write_through_set(drv: Driver) -> None:
    """fn.set(value, *args) stores the result for those arguments; the function does not run."""
    calls: list[int] = []

    def price(sku: int, *, currency: str = "EUR") -> str:
        calls.append(sku)
        return f"{sku} {currency}"

    fn = drv.cached(price, "price")
    await drv.call(fn.set, "9 USD", 9, currency="USD")
    assert "9 USD" == await drv.call(fn, 9, currency="USD")
    assert "9 EUR" == await drv.call(fn, 9)  # another key
    assert [9] == calls


def test_hit_path_is_the_decorator_s_only_handle(drv: Driver) -> None:
    """cached() reads the cache through hit_path() alone: a documented, frozen handle."""
    path = drv.cache.hit_path()
    assert drv.is_async == path.is_async
    assert path.records is drv.cache.hit_path().records
    with pytest.raises(AttributeError):
        path.clock = lambda: 0.0  # frozen
