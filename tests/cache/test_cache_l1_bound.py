"""The L1 TTL bounds how long a process serves a copy another process invalidated, outages included.

Found by the chaos soak (issue 17): while Redis was unreachable, a worker
whose L1 copy had passed its L1 TTL served it anyway, as long as the
*entry's* TTL allowed (60 s there): the copy was handed to the read path as
the fallback "stale" entry and, its own ``expires_at`` being far off, judged
fresh. Another worker had meanwhile written the database and deleted the key
(the delete could not reach Redis either), so readers got the old version for
the whole outage (up to 4 s in the soak, against an L1 TTL of 1 s).
"""

from __future__ import annotations

import pytest

from perfprim.cache import MemoryTier
from tests.cache.conformance import FakeClock
from tests.cache.helpers import FailingTier, build


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """TieredCache or AsyncTieredCache."""
    return str(request.param)


async def test_an_expired_l1_copy_is_not_served_while_the_lower_tier_is_down(kind: str) -> None:
    """Past its L1 TTL, a copy is not served when L2 cannot be read: the loader answers."""
    clock = FakeClock()
    shared = FailingTier(MemoryTier())
    shared.down = False
    reader = build(kind, clock, l1=MemoryTier(ttl=1.0), l2=shared, ttl=60.0)
    writer = build(kind, clock, l1=MemoryTier(ttl=1.0), l2=shared, ttl=60.0)
    database = {"k": "v1"}
    load = reader.loader(lambda: database["k"])
    assert "v1" == await reader("get_or_load", "k", load)
    shared.down = True  # Redis unreachable from now on, for both processes
    database["k"] = "v2"
    await writer("delete", "k")  # cannot reach L2: queued as a pending repair
    clock.advance(2.0)  # past the reader's L1 TTL, far from the entry's 60 s
    assert "v2" == await reader("get_or_load", "k", load)
    assert "v2" == await reader("get_or_load", "k", load)  # L1 holds the loaded value


async def test_an_expired_l1_copy_is_not_served_when_the_lower_tier_lost_the_key(
    kind: str,
) -> None:
    """Past its L1 TTL, a copy whose key L2 no longer has (deleted elsewhere) is not served."""
    clock = FakeClock()
    shared = MemoryTier()
    reader = build(kind, clock, l1=MemoryTier(ttl=1.0), l2=shared, ttl=60.0)
    writer = build(kind, clock, l1=MemoryTier(ttl=1.0), l2=shared, ttl=60.0)
    database = {"k": "v1"}
    load = reader.loader(lambda: database["k"])
    assert "v1" == await reader("get_or_load", "k", load)
    database["k"] = "v2"
    await writer("delete", "k")  # reaches L2; the reader's invalidation message is "lost"
    clock.advance(2.0)
    assert "v2" == await reader("get_or_load", "k", load)
