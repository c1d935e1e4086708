"""Uses the stampede API the way a user would; mypy --strict must accept it (not run by pytest)."""

from __future__ import annotations

import redis
import redis.asyncio

from perfprim.cache import MemoryTier, StampedeOptions, TieredCache
from perfprim.cache.advanced import (
    MISSING,
    AsyncRedisLock,
    AsyncSingleFlight,
    Decision,
    Entry,
    Lease,
    LockStats,
    RedisLock,
    SingleFlight,
    SingleFlightStats,
    decide,
    early_probability,
)

flight: SingleFlight[str] = SingleFlight()
user: dict[str, int] = flight.do("user:1", lambda: {"id": 1})
count: int = flight.do("n", lambda: 3, timeout=0.5)
fstats: SingleFlightStats = flight.stats()
aflight: AsyncSingleFlight[int] = AsyncSingleFlight(fail_open=False)


async def load_async() -> list[int]:
    """A coroutine loader."""
    return [1]


async def use_async_flight() -> list[int]:
    """AsyncSingleFlight.do returns the loader's result type."""
    return await aflight.do(1, load_async, timeout=1.0)


decision: Decision = decide(Entry("v", 10.0, 1.0, 10.0), 5.0, beta=1.0, rand=0.5)
probability: float = early_probability(1.0, delta=1.0, beta=1.0)

lock = RedisLock(redis.Redis(), ttl=10.0, wait_timeout=2.0)
lease: Lease | None = lock.acquire("ns:0:{k}")
value: str = lock.run("ns:0:{k}", read=lambda: MISSING, load=lambda: "v")
lstats: LockStats = lock.stats()
alock = AsyncRedisLock(redis.asyncio.Redis())


async def use_async_lock() -> str:
    """AsyncRedisLock.run returns the loader's result type."""

    async def read() -> str:
        return "cached"

    async def load() -> str:
        return "v"

    return await alock.run("ns:0:{k}", read=read, load=load)


options = StampedeOptions(stale_ttl=30.0, error_ttl=2.0, lock=False)
protected = TieredCache(MemoryTier(), ttl=60.0, stampede=options)
