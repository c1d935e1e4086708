"""Key building: stable across processes and runs, distinct per argument, bounded length.

The full key a tier sees is ``f"{namespace}:{generation}:{{{body}}}"``. The body
sits in a Redis Cluster hash tag, so the key and any suffix appended to it
(``key + ":lock"``) land on the same cluster slot. A body that contains ``{``
or ``}``, or is longer than the bound, is replaced by a readable prefix plus a
BLAKE2b digest of the whole body (never the builtin ``hash()``, which is
salted per process).

Arguments are encoded by ``repr`` for the builtin scalar types, which keeps
``1``, ``1.0``, ``"1"`` and ``True`` apart (their reprs differ), recursively
for tuples, lists, dicts and sets (dicts and sets sorted, so order does not
matter), by qualified name for enum members, and by type name plus ``repr``
for other objects that define their own ``__repr__``. An object with only the
default ``repr`` (which contains a memory address) cannot make a stable key:
that raises :class:`~perfprim.exceptions.ConfigurationError`.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from perfprim.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_MAX_BODY_LENGTH",
    "body_of",
    "counter_key",
    "encode_arg",
    "function_counter_key",
    "key_prefix",
    "safe_body",
    "tag_counter_key",
]

DEFAULT_MAX_BODY_LENGTH = 200
"""Bodies longer than this many characters are digested."""

_DIGEST_PREFIX_LENGTH = 48

_REPR_TYPES: frozenset[type] = frozenset({int, float, str, bool, bytes, complex, type(None)})


def safe_body(body: str, max_length: int = DEFAULT_MAX_BODY_LENGTH) -> str:
    """Return ``body`` if it can sit in a hash tag as is, else a bounded digest of it.

    Args:
        body: The key body.
        max_length: The longest body kept verbatim.

    Returns:
        ``body`` itself, or ``prefix#digest`` where ``prefix`` is the start of
        the body without braces and ``digest`` a 128-bit BLAKE2b hex digest.
    """
    if len(body) <= max_length and "{" not in body and "}" not in body:
        return body
    readable = body[:_DIGEST_PREFIX_LENGTH].replace("{", "").replace("}", "")
    digest = hashlib.blake2b(body.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"{readable}#{digest}"


def key_prefix(namespace: str, generation: str) -> str:
    """The part of every full key before the body: ``namespace:generation:{``."""
    return f"{namespace}:{generation}:{{"


def counter_key(namespace: str) -> str:
    """The namespace's generation counter (bumped by ``clear()``)."""
    return f"{namespace}:#gen"


def function_counter_key(namespace: str, qualname: str) -> str:
    """A cached function's generation counter (bumped by ``invalidate_all()``)."""
    return f"{namespace}:#gen:{safe_body(qualname)}"


def tag_counter_key(namespace: str, tag: str) -> str:
    """A tag's version counter (bumped by ``invalidate_tags``), in the tag's own cluster slot.

    >>> tag_counter_key("shop", "user:42")
    'shop:#tag:{user:42}'
    """
    return f"{namespace}:#tag:{{{safe_body(tag)}}}"


def encode_arg(value: object) -> str:
    """Encode one argument as a stable string (see the module docstring).

    Raises:
        ConfigurationError: If the value has no stable representation.
    """
    cls = type(value)
    if cls in _REPR_TYPES:
        return repr(value)
    if cls is tuple:
        return "(" + "".join(encode_arg(item) + "," for item in value) + ")"  # type: ignore[attr-defined]
    if cls is list:
        return "[" + ",".join(encode_arg(item) for item in value) + "]"  # type: ignore[attr-defined]
    if cls is dict:
        items = sorted(
            encode_arg(k) + ":" + encode_arg(v)
            for k, v in value.items()  # type: ignore[attr-defined]
        )
        return "dict(" + ",".join(items) + ")"
    if cls is set or cls is frozenset:
        return cls.__name__ + "(" + ",".join(sorted(encode_arg(v) for v in value)) + ")"  # type: ignore[attr-defined]
    name = f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(value, enum.Enum):
        return f"{name}.{value.name}"
    if cls.__repr__ is object.__repr__:
        raise ConfigurationError(
            f"cannot build a stable cache key from an argument of type {name}: its repr "
            "contains a memory address. Give the class a __repr__ that identifies its "
            "value, pass key=callable to cached(), or noself=True for a method's self/cls."
        )
    return f"{name}:{value!r}"


def body_of(head: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], max_length: int) -> str:
    """The key body for a call: ``head`` + encoded positional and sorted keyword arguments.

    Args:
        head: The function's ``module.qualname(``.
        args: Positional arguments (``self``/``cls`` already removed).
        kwargs: Keyword arguments; their order does not matter.
        max_length: The bound passed to :func:`safe_body`.

    Returns:
        The safe body, without the closing brace of the hash tag.
    """
    parts = [encode_arg(a) for a in args]
    if kwargs:
        parts.append(";")
        parts.extend(f"{k}={encode_arg(kwargs[k])}" for k in sorted(kwargs))
    return safe_body(head + ",".join(parts) + ")", max_length)


KeyFunction = Callable[..., str]
"""A user ``key=`` callable: receives the call's arguments, returns the key body."""
