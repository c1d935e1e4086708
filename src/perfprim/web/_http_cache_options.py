"""What the three cache adapters share: their options, the request they build, the route filter.

The decisions are the core's (:mod:`perfprim.web._http_cache_core`); this
module only turns constructor arguments into one frozen configuration and
names the headers the adapters remove from a request they forward.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from perfprim._durations import to_seconds
from perfprim.exceptions import ConfigurationError
from perfprim.web._http_cache_policy import HttpCachePolicy

__all__ = ["CONDITIONAL_FIELDS", "CacheOptions", "logger", "path_filter"]

logger = logging.getLogger("perfprim.web.http_cache")

CONDITIONAL_FIELDS = frozenset({"if-none-match", "if-modified-since"})
"""Removed from a forwarded request when the core says ``strip_conditionals``."""

PathFilter = Callable[[str], bool]


def path_filter(paths: Iterable[str] | Callable[[str], bool] | None) -> PathFilter | None:
    """The per-route form: which request paths go through the cache.

    Args:
        paths: ``None`` (every path), path prefixes (``["/products", "/api/v1/catalog"]``;
            a prefix matches itself and what is below it), or a predicate of the path.

    Returns:
        ``None`` for every path, else the predicate.

    Raises:
        ConfigurationError: If a prefix does not start with ``/``.
    """
    if paths is None:
        return None
    if callable(paths):
        return paths
    prefixes: tuple[object, ...] = tuple(paths)
    for prefix in prefixes:
        if not (isinstance(prefix, str) and prefix.startswith("/")):
            raise ConfigurationError(
                "paths must be path prefixes starting with '/', such as '/products'; "
                f"got {prefix!r}"
            )
    texts = [str(p) for p in prefixes]
    exact = frozenset(p.rstrip("/") or "/" for p in texts)
    below = tuple(p.rstrip("/") + "/" for p in texts)

    def matches(path: str) -> bool:
        return path in exact or path.startswith(below)

    return matches


@dataclasses.dataclass(frozen=True, slots=True)
class CacheOptions:
    """The adapters' configuration, validated once (see the middleware's arguments)."""

    policy: HttpCachePolicy
    paths: PathFilter | None
    clock: Callable[[], float]
    error_timeout: float | None

    @classmethod
    def build(
        cls,
        *,
        default_ttl: float | timedelta | None,
        policy: HttpCachePolicy | None,
        paths: Iterable[str] | Callable[[str], bool] | None,
        clock: Callable[[], float],
        error_timeout: float | timedelta | None,
    ) -> CacheOptions:
        """Check and combine the middleware's arguments."""
        ttl = None if default_ttl is None else to_seconds(default_ttl, name="default_ttl")
        if policy is None:
            policy = HttpCachePolicy(default_ttl=ttl)
        elif not isinstance(policy, HttpCachePolicy):
            raise ConfigurationError(
                f"policy must be a perfprim.web.HttpCachePolicy, got {type(policy).__name__}"
            )
        elif ttl is not None:
            policy = dataclasses.replace(policy, default_ttl=ttl)
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning epoch seconds")
        timeout = None if error_timeout is None else to_seconds(error_timeout, name="error_timeout")
        return cls(policy, path_filter(paths), clock, timeout)
