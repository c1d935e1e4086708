"""``MemoryTier``: the in-process L1, a dict read without a lock, sized on the write path.

Why not read through ``cachetools.TTLCache``: its ``__getitem__``/``get`` are
written in Python (``__missing__``, timer links) and cost 0.6-2 us per hit,
more than the whole budget of a cached call. So the records live in a plain
dict that the hit path reads with one ``dict.get`` (atomic under the GIL and
internally locked on free-threaded builds), and an ``OrderedDict`` of the
same keys does the size bookkeeping on the write path, under a lock: when it
evicts a key, the key leaves the dict too. (Until issue 11 that bookkeeping
was a ``cachetools.LRUCache``, whose Python-level ``__setitem__`` was the
largest cost of an L1 write after the load; ``OrderedDict.move_to_end`` and
``popitem`` are C.) Freshness is checked by the cache against each record's
own deadline, so no timer list is needed.

Eviction order is least recently *written* (back-fills and sets count as
writes): the lock-free hit path does not reorder keys, which is what keeps it
cheap. Expired records stay until they are overwritten, read through
:meth:`MemoryTier.get`, or evicted by size: memory is bounded by ``maxsize``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from perfprim._durations import to_seconds
from perfprim.cache._decisions import l1_fresh_until, l1_keep_until
from perfprim.cache._entry import Entry
from perfprim.exceptions import ConfigurationError

__all__ = ["MemoryTier", "Record"]

_ABSENT = object()

Record = tuple[float, object, Entry, float, float]
"""``(serve_until, value, entry, keep_until, fresh_until)``: what the L1 dict holds per key.

``fresh_until`` is when this L1 copy stops being valid (``min(now + ttl,
expires_at)``); ``serve_until`` is when the hit path stops serving it without
a second look: ``fresh_until``, or earlier when XFetch may refresh the entry
before it expires (``expires_at - delta * early_scale``).
"""


class MemoryTier:
    """An in-process cache tier (the L1), usable alone or in front of Redis.

    Implements :class:`~perfprim.cache.Tier`. Thread-safe: writes take a lock,
    reads do not.

    Args:
        maxsize: Most entries kept; the least recently written is evicted.
        ttl: Optional cap on how long a copy is served from this tier, in
            seconds (or a ``timedelta``): a copy back-filled from L2 lives
            ``min(ttl, entry's remaining life)``. With an L2 shared by several
            processes this bounds how long a missed invalidation can go unseen.
        timer: Wall clock used by the :class:`~perfprim.cache.Tier` methods
            (``get``, ``get_many``); the caches pass their own clock instead.

    Raises:
        ConfigurationError: If ``maxsize`` is not a positive int or ``ttl`` is
            not a positive duration.
    """

    name: str = "memory"

    def __init__(
        self,
        maxsize: int = 10_000,
        *,
        ttl: float | timedelta | None = None,
        timer: Callable[[], float] = time.time,
    ) -> None:
        size: object = maxsize  # checked at runtime: callers may not be type-checked
        if type(size) is not int or maxsize < 1:
            raise ConfigurationError(f"maxsize must be a positive int, got {maxsize!r}")
        self.maxsize = maxsize
        self.ttl: float | None = None if ttl is None else to_seconds(ttl, name="ttl")
        self.timer = timer
        self._records: dict[str, Record] = {}
        # The keys, least recently written first (the records dict keeps no order we
        # may rewrite: the hit path reads it without a lock).
        self._order: OrderedDict[str, None] = OrderedDict()
        self._counters: dict[str, int] = {}
        # tag counter key -> the keys whose entries carry that tag (tagged entries only)
        self._tagged: dict[str, set[str]] = {}
        self.tag_epoch = 0
        """Bumped by every :meth:`drop_tags`: a writer that read it before computing a tagged
        value passes it to :meth:`set`, which then refuses the value if a tag was
        invalidated meanwhile."""
        self._lock = threading.Lock()
        self.early_scale = 0.0
        """``beta * 36.7`` of the cache that owns this tier (XFetch, set by the cache)."""

    def __repr__(self) -> str:
        return f"MemoryTier(maxsize={self.maxsize}, ttl={self.ttl}, size={len(self._records)})"

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> Mapping[str, Record]:
        """The live ``key -> Record`` mapping, for a cache's hit path (read it, never write it).

        A lookup is one ``dict.get`` without a lock (atomic under the GIL, and
        internally locked on free-threaded builds); see :data:`Record` for the
        fields and :class:`~perfprim.cache.advanced.HitPath` for how a
        decorator uses it.
        """
        return self._records

    # -- reads -----------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """Return the entry under ``key`` while this tier keeps it, else ``None``.

        A tagged entry is returned only while its stamps match this tier's
        counters (see :meth:`read_counters`).
        """
        record = self._records.get(key)
        if record is None:
            return None
        entry = record[2]
        if self.timer() < record[3] and (not entry.tags or self._tags_current(entry)):
            return entry
        self.delete([key])
        return None

    def _tags_current(self, entry: Entry) -> bool:
        counters = self._counters
        return all(counters.get(tag, 0) == version for tag, version in entry.tags)

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """Return the entries for ``keys``, in order."""
        return [self.get(key) for key in keys]

    def lookup(self, key: str, now: float) -> Record | None:
        """The raw record for ``key`` if still kept at ``now`` (the caches' read path)."""
        record = self._records.get(key)
        if record is not None and now < record[3]:
            return record
        return None

    # -- writes ----------------------------------------------------------------------------

    def _record(self, entry: Entry, now: float) -> Record:
        fresh_until = l1_fresh_until(entry, now, self.ttl)
        serve_until = fresh_until
        scale = entry.delta * self.early_scale
        if scale > 0.0:
            # Past this point a read may refresh early (XFetch): take the slow path and draw.
            serve_until = min(fresh_until, entry.expires_at - scale)
        return (serve_until, entry.value, entry, l1_keep_until(entry, fresh_until), fresh_until)

    def set(self, key: str, entry: Entry, *, now: float, tag_epoch: int | None = None) -> None:
        """Store ``entry``, served until ``min(now + ttl, entry.expires_at)``.

        With ``tag_epoch`` (the :attr:`tag_epoch` read before the value was
        computed) nothing is stored, and an older copy is dropped, if a tag
        was invalidated since: checked under the tier's lock, so an
        invalidation cannot slip between the check and the store.
        """
        record = self._record(entry, now)
        with self._lock:
            order = self._order
            if record[3] <= now or (tag_epoch is not None and tag_epoch != self.tag_epoch):
                if order.pop(key, _ABSENT) is not _ABSENT:
                    self._forget(key)
                return
            order[key] = None
            order.move_to_end(key)
            if len(order) > self.maxsize:
                self._forget(order.popitem(last=False)[0])
            previous = self._records.get(key)
            self._records[key] = record
            if previous is not None and previous[2].tags:
                self._untag(key, previous[2])
            if entry.tags:
                for tag, _ in entry.tags:
                    self._tagged.setdefault(tag, set()).add(key)

    def _forget(self, key: str) -> None:
        """Drop ``key``'s record and index entries (the lock is held)."""
        record = self._records.pop(key, None)
        if record is not None and record[2].tags:
            self._untag(key, record[2])

    def _untag(self, key: str, entry: Entry) -> None:
        for tag, _ in entry.tags:
            keys = self._tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tagged[tag]

    def drop_tags(self, tags: Sequence[str]) -> int:
        """Remove every entry carrying one of ``tags`` (tag counter keys); return how many.

        The cache calls it when a tag is invalidated, here or (through the
        invalidation bus) in another process; the hit path then misses.
        """
        with self._lock:
            self.tag_epoch += 1
            keys = {key for tag in tags for key in self._tagged.get(tag, ())}
            for key in keys:
                self._order.pop(key, None)
                self._forget(key)
            return len(keys)

    def set_many(self, entries: Mapping[str, Entry], *, now: float) -> None:
        """Store several entries."""
        for key, entry in entries.items():
            self.set(key, entry, now=now)

    def delete(self, keys: Sequence[str]) -> None:
        """Remove ``keys``; missing keys are ignored."""
        with self._lock:
            for key in keys:
                if self._order.pop(key, _ABSENT) is not _ABSENT:
                    self._forget(key)

    def clear(self) -> None:
        """Remove every entry (counters are kept)."""
        with self._lock:
            self._order.clear()
            self._records.clear()
            self._tagged.clear()

    # -- counters --------------------------------------------------------------------------

    def incr(self, key: str) -> int:
        """Increment the counter ``key`` (never evicted) and return its new value."""
        with self._lock:
            value = self._counters.get(key, 0) + 1
            self._counters[key] = value
            return value

    def read_counter(self, key: str) -> int:
        """Return the counter ``key`` (0 if absent)."""
        return self._counters.get(key, 0)

    def read_counters(self, keys: Sequence[str]) -> list[int]:
        """Return the counters ``keys`` in order (0 for an absent one)."""
        counters = self._counters
        return [counters.get(key, 0) for key in keys]

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it in the parent)."""
        self._lock = threading.Lock()

    def close(self) -> None:
        """Nothing to release; present for the :class:`~perfprim.cache.Tier` protocol."""
