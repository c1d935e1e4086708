"""The ``cached`` decorator: key building done at decoration time, a lean hit path.

Everything the wrapper needs is looked up once, when the function is
decorated, from the cache's :class:`~perfprim.cache.advanced.HitPath` (and
nothing else of the cache): its ``module.qualname(`` head, the L1's records,
the clock and counters, its key scope (generation). For a function with a fixed parameter list
the wrapper is compiled with the same parameters (as ``dataclasses`` does), so
Python itself binds ``f(1)``, ``f(a=1)`` and keywords in any order alike. A
call with one ``int`` or ``str`` argument (the common case: an id) finds its
full key in a small per-function memo (one dict lookup; the key string and its
hash are reused); other calls build it with :func:`perfprim.cache._keys.body_of`.
The hit path is then one clock read, one ``dict.get``, one comparison and
one int increment: no lock, no signature binding, no Task. Functions taking
``*args``/``**kwargs`` and custom ``key=`` callables use a generic wrapper.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import (
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    overload,
)

from perfprim.cache._core import FULL_KEY_MEMO_SIZE, HitPath, KeyScope
from perfprim.cache._keys import KeyFunction, body_of, safe_body
from perfprim.exceptions import ConfigurationError

__all__ = [
    "AsyncBoundCachedMethod",
    "AsyncCachedFunction",
    "BoundCachedMethod",
    "CachedFunction",
    "KeyFunction",
    "TagsOf",
    "make_cached",
]

TagsOf = Sequence[str] | Callable[..., Sequence[str]] | None
"""``cached(tags=...)``: a list of tags, or a callable of the call's arguments returning one."""

P = ParamSpec("P")
Q = ParamSpec("Q")
S = TypeVar("S")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class BoundCachedMethod(Protocol, Generic[P, Q, R_co]):
    """A cached method read through an instance (``obj.method``).

    The call omits ``self``; ``invalidate`` is the function's own attribute,
    so it takes ``self`` explicitly: ``obj.method.invalidate(obj, x)``.
    """

    def __call__(self, *args: Q.args, **kwargs: Q.kwargs) -> R_co:
        """Return the cached result for these arguments, computing it on a miss."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the entry for these arguments (``self`` included) everywhere."""
        ...

    def invalidate_all(self) -> None:
        """Drop every entry of this method: one ``INCR`` of its generation."""
        ...

    def set(self, value: Any, *args: P.args, **kwargs: P.kwargs) -> None:
        """Store ``value`` as the result for these arguments (``self`` included)."""
        ...


class CachedFunction(Protocol, Generic[P, R_co]):
    """A function decorated by :meth:`TieredCache.cached`."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Return the cached result for these arguments, computing it on a miss."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the entry for these arguments from every tier and every process's L1."""
        ...

    def invalidate_all(self) -> None:
        """Drop every entry of this function: one ``INCR`` of its generation."""
        ...

    def set(self, value: Any, *args: P.args, **kwargs: P.kwargs) -> None:
        """Store ``value`` as the result for these arguments (write-through), everywhere."""
        ...

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> CachedFunction[P, R_co]: ...

    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, Q], R_co], instance: S, owner: type | None = None
    ) -> BoundCachedMethod[Concatenate[S, Q], Q, R_co]: ...

    def __get__(self, instance: object, owner: type | None = None) -> object:
        """Bind like a plain function (a decorated method works as a method)."""
        ...


class AsyncBoundCachedMethod(Protocol, Generic[P, Q, R_co]):
    """A cached coroutine method read through an instance (``obj.method``)."""

    def __call__(self, *args: Q.args, **kwargs: Q.kwargs) -> Awaitable[R_co]:
        """Return the cached result for these arguments, computing it on a miss."""
        ...

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the entry for these arguments (``self`` included) everywhere."""
        ...

    async def invalidate_all(self) -> None:
        """Drop every entry of this method: one ``INCR`` of its generation."""
        ...

    async def set(self, value: Any, *args: P.args, **kwargs: P.kwargs) -> None:
        """Store ``value`` as the result for these arguments (``self`` included)."""
        ...


class AsyncCachedFunction(Protocol, Generic[P, R_co]):
    """A coroutine function decorated by :meth:`AsyncTieredCache.cached`."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R_co]:
        """Return the cached result for these arguments, computing it on a miss."""
        ...

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the entry for these arguments from every tier and every process's L1."""
        ...

    async def invalidate_all(self) -> None:
        """Drop every entry of this function: one ``INCR`` of its generation."""
        ...

    async def set(self, value: Any, *args: P.args, **kwargs: P.kwargs) -> None:
        """Store ``value`` as the result for these arguments (write-through), everywhere."""
        ...

    @overload
    def __get__(
        self, instance: None, owner: type | None = None
    ) -> AsyncCachedFunction[P, R_co]: ...

    @overload
    def __get__(
        self: AsyncCachedFunction[Concatenate[S, Q], R_co], instance: S, owner: type | None = None
    ) -> AsyncBoundCachedMethod[Concatenate[S, Q], Q, R_co]: ...

    def __get__(self, instance: object, owner: type | None = None) -> object:
        """Bind like a plain function (a decorated method works as a method)."""
        ...


def _without(
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    ignored: frozenset[str],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Bind a call and drop the ignored arguments (the generic wrapper's slow path)."""
    bound = signature.bind(*args, **kwargs)
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if name in ignored:
            continue
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            positional.extend(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            keywords.update(value)
        elif kind is inspect.Parameter.KEYWORD_ONLY:
            keywords[name] = value
        else:
            positional.append(value)
    return tuple(positional), keywords


def _body_builder(
    fn: Callable[..., Any],
    key: KeyFunction | None,
    noself: bool,
    max_len: int,
    *,
    signature: inspect.Signature | None,
    ignored: frozenset[str],
) -> Callable[[tuple[Any, ...], dict[str, Any]], str]:
    """Return ``build(args, kwargs) -> body + "}"`` for the slow path."""
    if key is not None:
        if not callable(key):
            raise ConfigurationError("key must be a callable returning the key body (a str)")

        def custom(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            body = key(*args, **kwargs)
            if type(body) is not str:
                raise ConfigurationError(
                    f"the key= callable of {fn.__qualname__} returned {type(body).__name__}; "
                    "it must return a str"
                )
            return safe_body(body, max_len) + "}"

        return custom

    head = f"{fn.__module__}.{fn.__qualname__}("
    skip = 1 if noself else 0
    drop = ignored
    if ignored and noself and signature is not None and signature.parameters:
        # noself is "ignore the first parameter": one binding handles both.
        drop = ignored | {next(iter(signature.parameters))}
        skip = 0

    def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if signature is not None and drop:
            args, kwargs = _without(signature, args, kwargs, drop)
        elif kwargs and signature is not None:
            # Normalize f(1, b=2) and f(b=2, a=1) alike; only calls with keywords pay this.
            bound = signature.bind(*args, **kwargs)
            args, kwargs = bound.args, bound.kwargs
        if skip:
            if not args:
                raise ConfigurationError(
                    f"{fn.__qualname__} was decorated with noself=True but called "
                    "without a first argument"
                )
            args = args[1:]
        return body_of(head, args, kwargs, max_len) + "}"

    return build


def _check_kind(fn: Callable[..., Any], *, want_async: bool) -> None:
    if not callable(fn):
        raise ConfigurationError(f"cached() decorates functions, got {fn!r}")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise ConfigurationError(
            f"{fn.__qualname__} is a generator function: cache a function returning a list"
        )
    is_async = inspect.iscoroutinefunction(fn)
    if is_async and not want_async:
        raise ConfigurationError(
            f"{fn.__qualname__} is async: decorate it with AsyncTieredCache.cached()"
        )
    if want_async and not is_async:
        raise ConfigurationError(
            f"{fn.__qualname__} is not async: decorate it with TieredCache.cached()"
        )


def _check_ignore(
    fn: Callable[..., Any],
    ignore: Iterable[str],
    signature: inspect.Signature | None,
    key: KeyFunction | None,
) -> frozenset[str]:
    """Validate ``ignore=`` at decoration time: names of ``fn``'s parameters."""
    if isinstance(ignore, str):
        raise ConfigurationError(f"ignore is a list of parameter names: write ignore=[{ignore!r}]")
    ignored = frozenset(ignore)
    if not ignored:
        return ignored
    if key is not None:
        raise ConfigurationError(
            "ignore= has no effect with key=, which builds the whole key: leave the "
            "argument out of what key= returns instead"
        )
    if signature is None:
        raise ConfigurationError(
            f"{fn.__qualname__} has no inspectable signature: pass key= instead of ignore="
        )
    unknown = sorted(ignored - set(signature.parameters))
    if unknown:
        raise ConfigurationError(
            f"ignore names {', '.join(map(repr, unknown))}, but {fn.__qualname__} has no such "
            f"parameter; its parameters are {', '.join(signature.parameters)}"
        )
    return ignored


def _tags_function(fn: Callable[..., Any], tags: TagsOf) -> Callable[..., Sequence[str]] | None:
    """``tags=`` as a callable of the call's arguments (``None``: untagged)."""
    if tags is None:
        return None
    if callable(tags):
        return tags
    if isinstance(tags, str):
        raise ConfigurationError(
            f"tags is a list of str, got the str {tags!r}: write tags=[{tags!r}]"
        )
    fixed = tuple(tags)
    for tag in fixed:
        if type(tag) is not str or not tag:
            raise ConfigurationError(
                f"tags of {fn.__qualname__} must be non-empty strs (or a callable returning "
                f"them), got {tag!r}"
            )

    def static(*args: Any, **kwargs: Any) -> Sequence[str]:
        return fixed

    return static


_FAST_TEMPLATE = """
{async_}def wrapper({params}):
    now = _pp_clock()
    if now >= _pp_scope.check_at:
        {await_}_pp_refresh(_pp_scope, now)
{key_code}
    record = _pp_records.get(fk)
    if record is not None and now < record[0]:
        _pp_counters.l1_hits += 1
        return record[1]
    return {await_}_pp_miss(fk, now, record, lambda: _pp_fn({call}), _pp_ttl{tags})
"""

_MEMO_KEY = """    if {condition}:
        fk = _pp_scope.full_keys.get({memo_key})
        if fk is None:
            fk = _pp_remember(_pp_scope, {memo_key}, ({values}))
    else:
        fk = _pp_scope.prefix + _pp_body(({values}))"""


def _key_code(names: list[str]) -> str:
    """The generated key lines: a memo hit when every argument is exactly an int or a str.

    Only exact ``int``/``str`` arguments use the memo, because ``1``, ``1.0``
    and ``True`` are equal dict keys but must be different cache keys.
    """
    checks = [f"((_pp_type := type({n})) is int or _pp_type is str)" for n in names]
    values = "".join(f"{n}, " for n in names)
    memo_key = names[0] if len(names) == 1 else f"({values})"
    return _MEMO_KEY.format(
        condition=" and ".join(checks) or "True", memo_key=memo_key, values=values
    )


def _generated_wrapper(
    fn: Callable[..., Any],
    signature: inspect.Signature | None,
    namespace: dict[str, Any],
    *,
    noself: bool,
    ignored: frozenset[str],
    is_async: bool,
    tagged: bool,
) -> Callable[..., Any] | None:
    """Compile a wrapper with ``fn``'s own parameters, or ``None`` if it takes ``*args``/``**kw``.

    A wrapper that declares the function's parameters lets Python do the
    argument binding (``f(1)``, ``f(a=1)`` and keyword order all bind alike)
    and costs about half a ``*args, **kwargs`` wrapper's call; this is how
    ``dataclasses`` builds its methods, for the same reason.
    """
    if signature is None:
        return None
    params: list[str] = []
    call: list[str] = []
    names: list[str] = []
    seen_kw_only = False
    last_positional_only = False
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            return None
        if not param.name.isidentifier() or param.name.startswith("_pp_"):
            return None
        if last_positional_only and param.kind is not param.POSITIONAL_ONLY:
            params.append("/")
            last_positional_only = False
        if param.kind is param.KEYWORD_ONLY and not seen_kw_only:
            params.append("*")
            seen_kw_only = True
        text = param.name
        if param.default is not param.empty:
            namespace[f"_pp_default_{index}"] = param.default
            text += f"=_pp_default_{index}"
        params.append(text)
        if param.kind is param.POSITIONAL_ONLY:
            last_positional_only = True
        call.append(
            f"{param.name}={param.name}" if param.kind is param.KEYWORD_ONLY else param.name
        )
        if not (noself and index == 0) and param.name not in ignored:
            names.append(param.name)
    if last_positional_only:
        params.append("/")
    if noself and not signature.parameters:
        return None  # noself on a function without parameters: let the generic path complain
    arguments = ", ".join(call)
    source = _FAST_TEMPLATE.format(
        async_="async " if is_async else "",
        await_="await " if is_async else "",
        params=", ".join(params),
        key_code=_key_code(names),
        call=arguments,
        tags=f", tags=_pp_tags({arguments})" if tagged else "",
    )
    exec(compile(source, f"<perfprim.cache.cached {fn.__qualname__}>", "exec"), namespace)  # noqa: S102
    return namespace["wrapper"]  # type: ignore[no-any-return]


def _key_parts(
    signature: inspect.Signature, noself: bool, ignored: frozenset[str]
) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]:
    """For a generated wrapper: map an ``invalidate(*args, **kwargs)`` call to its key values."""
    names = [
        name
        for index, name in enumerate(signature.parameters)
        if not (noself and index == 0) and name not in ignored
    ]

    def parts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.arguments[name] for name in names)

    return parts


def make_cached(
    path: HitPath,
    fn: Callable[..., Any],
    *,
    ttl: float | None,
    key: KeyFunction | None,
    noself: bool,
    ignore: Iterable[str] = (),
    tags: TagsOf = None,
) -> Any:
    """Build the wrapper of ``cached`` on a cache's :class:`HitPath` (sync or asyncio alike).

    Raises:
        ConfigurationError: At decoration time, for a function of the wrong
            kind, ``ignore=`` naming an unknown parameter, or bad ``tags=``.
    """
    is_async = path.is_async
    _check_kind(fn, want_async=is_async)
    max_len = path.max_key_length
    qualname = f"{fn.__module__}.{fn.__qualname__}"
    head = qualname + "("
    scope = path.scope(qualname)
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no signature
        signature = None
    ignored = _check_ignore(fn, ignore, signature, key)
    tags_of = _tags_function(fn, tags)
    clock = path.clock
    records = path.records
    counters = path.counters
    refresh = path.refresh
    miss = path.miss

    def body(values: tuple[Any, ...]) -> str:
        return body_of(head, values, {}, max_len) + "}"

    def remember(scope: KeyScope, memo_key: object, values: tuple[Any, ...]) -> str:
        # Memo before prefix, as in CacheCore._remember_key (see there).
        memo = scope.full_keys
        fk = scope.prefix + body(values)
        if len(memo) >= FULL_KEY_MEMO_SIZE:
            memo.clear()
        memo[memo_key] = fk
        return fk

    namespace: dict[str, Any] = {
        "_pp_clock": clock,
        "_pp_scope": scope,
        "_pp_refresh": refresh,
        "_pp_records": records,
        "_pp_counters": counters,
        "_pp_miss": miss,
        "_pp_fn": fn,
        "_pp_ttl": ttl,
        "_pp_body": body,
        "_pp_remember": remember,
        "_pp_tags": tags_of,
    }
    generated = None
    if key is None:
        generated = _generated_wrapper(
            fn,
            signature,
            namespace,
            noself=noself,
            ignored=ignored,
            is_async=is_async,
            tagged=tags_of is not None,
        )
    key_of: Callable[[tuple[Any, ...], dict[str, Any]], str]
    if generated is not None and signature is not None:
        parts = _key_parts(signature, noself, ignored)

        def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            return body(parts(args, kwargs))

    else:
        key_of = _body_builder(fn, key, noself, max_len, signature=signature, ignored=ignored)

    def tags_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sequence[str] | None:
        return None if tags_of is None else tags_of(*args, **kwargs)

    wrapper: Any
    if generated is not None:
        wrapper = generated
    elif is_async:

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            now = clock()
            if now >= scope.check_at:
                await refresh(scope, now)
            fk = scope.prefix + key_of(args, kwargs)
            record = records.get(fk)
            if record is not None and now < record[0]:
                counters.l1_hits += 1
                return record[1]
            return await miss(
                fk, now, record, lambda: fn(*args, **kwargs), ttl, tags=tags_for(args, kwargs)
            )

        wrapper = async_wrapper
    else:

        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            now = clock()
            if now >= scope.check_at:
                refresh(scope, now)
            fk = scope.prefix + key_of(args, kwargs)
            record = records.get(fk)
            if record is not None and now < record[0]:
                counters.l1_hits += 1
                return record[1]
            return miss(
                fk, now, record, lambda: fn(*args, **kwargs), ttl, tags=tags_for(args, kwargs)
            )

        wrapper = sync_wrapper
    functools.update_wrapper(wrapper, fn)

    delete, bump, store = path.delete, path.bump, path.store
    if is_async:

        async def full_key_async(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            now = clock()
            if now >= scope.check_at:
                await refresh(scope, now)
            return scope.prefix + key_of(args, kwargs)

        async def ainvalidate(*args: Any, **kwargs: Any) -> None:
            await delete([await full_key_async(args, kwargs)])

        async def ainvalidate_all() -> None:
            await bump(scope)

        async def aset(value: Any, *args: Any, **kwargs: Any) -> None:
            await store(await full_key_async(args, kwargs), value, ttl, tags_for(args, kwargs))

        wrapper.invalidate = ainvalidate
        wrapper.invalidate_all = ainvalidate_all
        wrapper.set = aset
    else:

        def full_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            now = clock()
            if now >= scope.check_at:
                refresh(scope, now)
            return scope.prefix + key_of(args, kwargs)

        def invalidate(*args: Any, **kwargs: Any) -> None:
            delete([full_key(args, kwargs)])

        def invalidate_all() -> None:
            bump(scope)

        def set_(value: Any, *args: Any, **kwargs: Any) -> None:
            store(full_key(args, kwargs), value, ttl, tags_for(args, kwargs))

        wrapper.invalidate = invalidate
        wrapper.invalidate_all = invalidate_all
        wrapper.set = set_
    return wrapper
