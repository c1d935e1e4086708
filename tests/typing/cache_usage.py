"""Uses perfprim.cache the way a user would; mypy --strict checks it (not run by pytest)."""

from __future__ import annotations

from perfprim.cache import (
    AsyncCachedFunction,
    AsyncTieredCache,
    CachedFunction,
    CacheStats,
    MemoryTier,
    TieredCache,
)

cache = TieredCache(MemoryTier(maxsize=100, ttl=5.0), ttl=60.0, namespace="typing")


@cache.cached(ttl=30.0)
def load_user(user_id: int, *, full: bool = False) -> dict[str, int]:
    """Stand-in for a database read."""
    return {"id": user_id}


user: dict[str, int] = load_user(42, full=True)
load_user.invalidate(42)
load_user.invalidate_all()
fn: CachedFunction[[int], dict[str, int]] = cache.cached()(lambda uid: {"id": uid})
value: int = cache.get_or_load("k", lambda: 1)
stats: CacheStats = cache.stats()
hits: int = stats.tiers[0].hits

acache = AsyncTieredCache(MemoryTier(maxsize=100), ttl=60.0)


@acache.cached()
async def price(sku: str) -> int:
    """Stand-in for an async read."""
    return 1


async def main() -> None:
    """Use the async cache."""
    cents: int = await price("A")
    await price.invalidate("A")
    await price.invalidate_all()
    loaded: str = await acache.get_or_load("k", _load)
    await acache.close()
    del cents, loaded


async def _load() -> str:
    """Loader."""
    return "v"


afn: AsyncCachedFunction[[str], int] = price
