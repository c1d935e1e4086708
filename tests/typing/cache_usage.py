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
load_user.set({"id": 42}, 42)
cache.set("user:42:profile", {"id": 42}, tags=["user:42"])
cache.invalidate_tags("user:42", "users")
tagged: int = cache.get_or_load("k2", lambda: 2, tags=["users"])


@cache.cached(ttl=60.0, tags=lambda user_id, request: [f"user:{user_id}"], ignore=["request"])
def load_profile(user_id: int, request: object) -> dict[str, int]:
    """A function with an argument that cannot be part of a key."""
    return {"id": user_id}


with TieredCache(MemoryTier(), ttl=5.0) as scoped:
    scoped.set("k", 1)
fn: CachedFunction[[int], dict[str, int]] = cache.cached()(lambda uid: {"id": uid})
value: int = cache.get_or_load("k", lambda: 1)
stats: CacheStats = cache.stats()
hits: int = stats.tiers[0].hits


class Repo:
    """A class with a cached method."""

    @cache.cached(noself=True)
    def find(self, item_id: int) -> str:
        """Stand-in for a query."""
        return str(item_id)

    @classmethod
    def build(cls) -> Repo:
        """Alternative constructor."""
        return cls()


repo = Repo.build()
found: str = repo.find(1)
repo.find.invalidate(repo, 1)
unbound: str = Repo.find(repo, 2)


acache = AsyncTieredCache(MemoryTier(maxsize=100), ttl=60.0)


@acache.cached()
async def price(sku: str) -> int:
    """Stand-in for an async read."""
    return 1


class AsyncRepo:
    """A class with a cached coroutine method."""

    @acache.cached(noself=True)
    async def find(self, item_id: int) -> str:
        """Stand-in for an async query."""
        return str(item_id)


async def main() -> None:
    """Use the async cache."""
    arepo = AsyncRepo()
    name: str = await arepo.find(3)
    await arepo.find.invalidate(arepo, 3)
    del name
    cents: int = await price("A")
    await price.invalidate("A")
    await price.invalidate_all()
    await price.set(5, "A")
    await acache.invalidate_tags("prices")
    async with AsyncTieredCache(MemoryTier(), ttl=5.0) as ascoped:
        await ascoped.set("k", 1, tags=["t"])
    loaded: str = await acache.get_or_load("k", _load)
    await acache.close()
    del cents, loaded


async def _load() -> str:
    """Loader."""
    return "v"


afn: AsyncCachedFunction[[str], int] = price
