"""HdrHistogram bucket math: where an integer value goes and what an index stands for.

The layout is HdrHistogram's (Gil Tene, https://github.com/HdrHistogram): the
value range is split into buckets that each cover a power of two; every bucket
holds ``sub_bucket_half_count`` linear sub-buckets (the first bucket holds
``sub_bucket_count``). A value's index needs only its bit length:

    t     = bit_length(v | sub_bucket_mask) - (sub_bucket_half_count_magnitude + 1)
    index = (t << sub_bucket_half_count_magnitude) + (v >> t)
            - (unit_magnitude << sub_bucket_half_count_magnitude)

which is the reference ``(bucket_index + 1) * half_count + sub_bucket_index -
half_count`` with ``bucket_index = t - unit_magnitude`` folded in. The numbers
computed here match the hdrhistogram package (and the Java and C libraries)
exactly, so the counts arrays are interchangeable on the wire.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["Layout", "layout_for"]

# The wire format stores counts and values as signed 64-bit integers.
_MAX_VALUE = (1 << 62) - 1


@dataclass(frozen=True, slots=True)
class Layout:
    """The shape of an HdrHistogram counts array, in integer value units.

    Attributes:
        lowest: Lowest discernible value (>= 1).
        highest: Highest trackable value (>= 2 * lowest).
        significant_figures: Decimal digits of precision kept (1..5).
        unit_magnitude: ``floor(log2(lowest))``.
        sub_bucket_half_count_magnitude: ``log2(sub_bucket_count) - 1``.
        sub_bucket_count: Linear sub-buckets of the first bucket.
        bucket_count: Power-of-two buckets needed to reach ``highest``.
        counts_len: Length of the counts array.
    """

    lowest: int
    highest: int
    significant_figures: int
    unit_magnitude: int
    sub_bucket_half_count_magnitude: int
    sub_bucket_count: int
    bucket_count: int
    counts_len: int

    @property
    def sub_bucket_half_count(self) -> int:
        """Sub-buckets per bucket after the first."""
        return self.sub_bucket_count >> 1

    @property
    def sub_bucket_mask(self) -> int:
        """``(sub_bucket_count - 1) << unit_magnitude``."""
        return (self.sub_bucket_count - 1) << self.unit_magnitude

    def index_of(self, value: int) -> int:
        """Return the counts index of a non-negative integer ``value``."""
        h = self.sub_bucket_half_count_magnitude
        t = (value | self.sub_bucket_mask).bit_length() - (h + 1)
        return (t << h) + (value >> t) - (self.unit_magnitude << h)

    def _bucket_of(self, index: int) -> tuple[int, int]:
        h = self.sub_bucket_half_count_magnitude
        half = 1 << h
        bucket = (index >> h) - 1
        sub = (index & (half - 1)) + half
        if bucket < 0:
            sub -= half
            bucket = 0
        return bucket, sub

    def lowest_equivalent(self, index: int) -> int:
        """Return the smallest value that lands in ``index``."""
        bucket, sub = self._bucket_of(index)
        return sub << (bucket + self.unit_magnitude)

    def highest_equivalent(self, index: int) -> int:
        """Return the largest value that lands in ``index``."""
        bucket, sub = self._bucket_of(index)
        return (sub << (bucket + self.unit_magnitude)) + (1 << (bucket + self.unit_magnitude)) - 1

    def median_equivalent(self, index: int) -> int:
        """Return the middle of ``index``'s value range (HdrHistogram's mean/stdev convention)."""
        bucket, sub = self._bucket_of(index)
        shift = bucket + self.unit_magnitude
        return (sub << shift) + ((1 << shift) >> 1)

    @property
    def max_index(self) -> int:
        """Index of ``highest``."""
        return self.index_of(self.highest)


@functools.lru_cache(maxsize=64)
def layout_for(lowest: int, highest: int, significant_figures: int) -> Layout:
    """Compute (and cache) the layout for an integer range and precision.

    Args:
        lowest: Lowest discernible integer value, >= 1.
        highest: Highest trackable integer value, >= 2 * lowest.
        significant_figures: 1..5.

    Returns:
        The layout, identical to the one HdrHistogram computes.

    Raises:
        ValueError: If the arguments are outside the ranges above (callers
            turn this into a ``ConfigurationError`` with advice).
    """
    if not 1 <= significant_figures <= 5:
        msg = f"significant_figures must be 1..5, got {significant_figures}"
        raise ValueError(msg)
    if lowest < 1:
        msg = f"lowest must be >= 1 unit, got {lowest}"
        raise ValueError(msg)
    if highest < 2 * lowest or highest > _MAX_VALUE:
        msg = f"highest must be in [2 * lowest, 2**62), got {highest} (lowest {lowest})"
        raise ValueError(msg)
    unit_magnitude = lowest.bit_length() - 1
    # smallest power of two >= 2 * 10**digits: the sub-buckets that give one-unit
    # resolution up to 10**digits (HdrHistogram's largestValueWithSingleUnitResolution).
    single_unit = 2 * 10**significant_figures
    sub_bucket_count_magnitude = (single_unit - 1).bit_length()
    half_magnitude = max(sub_bucket_count_magnitude - 1, 0)
    sub_bucket_count = 1 << (half_magnitude + 1)
    smallest_untrackable = sub_bucket_count << unit_magnitude
    bucket_count = 1
    while smallest_untrackable <= highest:
        smallest_untrackable <<= 1
        bucket_count += 1
    counts_len = (bucket_count + 1) * (sub_bucket_count >> 1)
    return Layout(
        lowest=lowest,
        highest=highest,
        significant_figures=significant_figures,
        unit_magnitude=unit_magnitude,
        sub_bucket_half_count_magnitude=half_magnitude,
        sub_bucket_count=sub_bucket_count,
        bucket_count=bucket_count,
        counts_len=counts_len,
    )


@functools.lru_cache(maxsize=16)
def median_values(layout: Layout) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Return the median equivalent value of every index and its square (cached per layout)."""
    mids = tuple(layout.median_equivalent(i) for i in range(layout.counts_len))
    return mids, tuple(m * m for m in mids)
