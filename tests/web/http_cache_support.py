"""Test support for the HTTP caching core.

Test support for the HTTP caching core: requests, a fake clock, and a dict "cache"
that carries out the core's decisions the way an adapter will.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import http_sf

from perfprim.cache import JsonSerializer
from perfprim.web._http_cache_core import (
    CacheRequest,
    ReadAction,
    ReadDecision,
    RequestPlan,
    StoreDecision,
    decide_read,
    decide_store,
    plan_request,
)
from perfprim.web._http_cache_policy import HttpCachePolicy

T0 = 1_780_000_000.0  # 2026-05-28, a wall-clock instant: HTTP dates need a real epoch
JSON = JsonSerializer()


def request(
    method: str = "GET",
    path: str = "/r",
    query: str = "",
    headers: dict[str, str] | None = None,
    *,
    host: str = "api.example",
    scheme: str = "https",
) -> CacheRequest:
    """A request with text header pairs (what WSGI hands over)."""
    return CacheRequest.build(
        method,
        scheme=scheme,
        host=host,
        path=path,
        query=query,
        headers=list((headers or {}).items()),
    )


def header(lines: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The value of the first line named ``name``, else ``None``."""
    return next((value for line_name, value in lines if line_name == name), None)


def names(lines: tuple[tuple[str, str], ...]) -> list[str]:
    """The field names of ``lines``, in order."""
    return [name for name, _ in lines]


def cache_status_params(lines: tuple[tuple[str, str], ...]) -> dict[str, object]:
    """The ``Cache-Status`` member's parameters, parsed by an independent SF parser."""
    value = header(lines, "cache-status")
    assert value is not None, "every response carries Cache-Status"
    members = http_sf.parse(value.encode(), tltype="list")
    assert 1 == len(members)
    token, params = members[0]
    assert "perfprim" == str(token)
    return {k: (str(v) if isinstance(v, http_sf.Token) else v) for k, v in params.items()}


@dataclass
class FakeCache:
    """A dict store with TTLs on a fake clock.

    A dict store with TTLs on a fake clock; values go through the JSON serializer, as
    they would through a Redis tier.
    """

    now: float = T0
    data: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    reads: int = 0

    def get(self, key: str) -> object:
        """The stored value while its TTL lasts, else ``None``."""
        self.reads += 1
        item = self.data.get(key)
        if item is None or self.now >= item[1]:
            return None
        return JSON.loads(item[0])

    def apply(self, result: StoreDecision) -> None:
        """Carry out a store decision's writes and deletes."""
        for write in result.writes:
            self.data[write.key] = (JSON.dumps(write.value), self.now + write.ttl)
        for key in result.deletes:
            self.data.pop(key, None)


def read(cache: FakeCache, plan: RequestPlan, policy: HttpCachePolicy) -> ReadDecision:
    """The adapter's read path: one read, a second for a variant."""
    decision = decide_read(plan, cache.get(plan.key), now=cache.now, policy=policy)
    if decision.action is ReadAction.LOOKUP_VARIANT:
        assert decision.key is not None
        index = decision.vary_index
        decision = decide_read(
            plan, cache.get(decision.key), now=cache.now, policy=policy, vary_index=index
        )
    return decision


App = Callable[[CacheRequest], tuple[int, list[tuple[str, str]], bytes]]


@dataclass
class Outcome:
    """What the client got, and what the application saw."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    app_called: bool
    decision: ReadDecision | None
    stored: StoreDecision | None


def serve(
    cache: FakeCache, req: CacheRequest, app: App, policy: HttpCachePolicy | None = None
) -> Outcome:
    """Run one request through the core the way an adapter would (synchronously)."""
    policy = policy or HttpCachePolicy()
    plan = plan_request(req, policy)
    decision = read(cache, plan, policy) if plan.lookup else None
    if decision is not None and decision.action is not ReadAction.FORWARD:
        return Outcome(decision.status, decision.headers, decision.body, False, decision, None)
    forwarded = req
    if decision is not None and decision.strip_conditionals:
        forwarded = CacheRequest(
            req.method,
            req.scheme,
            req.host,
            req.path,
            req.query,
            {
                k: v
                for k, v in req.headers.items()
                if k not in ("if-none-match", "if-modified-since")
            },
        )
    status, headers, body = app(forwarded)
    result = decide_store(
        plan, decision, status=status, headers=headers, body=body, now=cache.now, policy=policy
    )
    cache.apply(result)
    return Outcome(
        result.status,
        result.headers,
        body if result.send_body else b"",
        True,
        decision,
        result,
    )
