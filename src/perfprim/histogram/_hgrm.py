"""HdrHistogram's percentile distribution text (the ``.hgrm`` format), written here.

The layout follows Java HdrHistogram's ``outputPercentileDistribution`` and its
``PercentileIterator``: percentile levels advance by ``100 / ticks`` where
``ticks = ticks_per_half_distance * 2 ** (floor(log2(100 / (100 - level))) + 1)``,
so every halving of the distance to 100% gets the same number of lines, and a
last line reports 100%. The hdrhistogram package's version of this iterator
advances geometrically and its footer prints the standard deviation unscaled,
so it is not used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import compress

from perfprim.histogram._layout import Layout

__all__ = ["percentile_distribution"]


def _ticks(level: float, ticks_per_half_distance: int) -> int:
    halvings = int(math.log(100.0 / (100.0 - level)) / math.log(2))
    return ticks_per_half_distance << (halvings + 1)


def percentile_distribution(
    layout: Layout,
    counts: Sequence[int],
    *,
    scale: float,
    mean: float,
    stdev: float,
    max_value: float,
    ticks_per_half_distance: int,
) -> str:
    """Render the ``.hgrm`` table.

    Args:
        layout: The counts' layout.
        counts: The counts array.
        scale: Divide integer values by this to get output units.
        mean: Mean in output units.
        stdev: Standard deviation in output units.
        max_value: Max in output units.
        ticks_per_half_distance: Lines per halving of the distance to 100%.

    Returns:
        The text, ending with the ``#[Mean ...]``, ``#[Max ...]`` and
        ``#[Buckets ...]`` footer lines.
    """
    digits = layout.significant_figures
    line = f"{{:12.{digits}f}} {{:2.12f}} {{:10d}} {{:14.2f}}\n"
    last_line = f"{{:12.{digits}f}} {{:2.12f}} {{:10d}}\n"
    out = [
        "{:>12} {:>14} {:>10} {:>14}\n\n".format(
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        )
    ]
    total = sum(counts)
    if total:
        cumulative = 0
        level = 0.0
        value = 0.0
        for index in compress(range(len(counts)), counts):
            cumulative += counts[index]
            value = layout.highest_equivalent(index) / scale
            while 100.0 * cumulative / total >= level:
                out.append(
                    line.format(value, level / 100.0, cumulative, 1.0 / (1.0 - level / 100.0))
                )
                if cumulative == total:
                    break
                level += 100.0 / _ticks(level, ticks_per_half_distance)
                if level >= 100.0:  # pragma: no cover - needs ~2**50 values
                    break
        out.append(last_line.format(value, 1.0, total))
    out.append(f"#[Mean    = {mean:12.{digits}f}, StdDeviation   = {stdev:12.{digits}f}]\n")
    out.append(f"#[Max     = {max_value:12.{digits}f}, Total count    = {total:12d}]\n")
    out.append(
        f"#[Buckets = {layout.bucket_count:12d}, SubBuckets     = {layout.sub_bucket_count:12d}]\n"
    )
    return "".join(out)
