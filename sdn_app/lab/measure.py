"""The one percentile definition every report of ours uses, so "p99" means the same in
the probe's, the VR analysis' and the benchmarks' figures."""

from __future__ import annotations

import math


def percentile(values: list[float], p: float):
    """Nearest-rank percentile of sorted ``values``: the smallest value with at least
    p% of the values at or below it (p=100 is the maximum); None if empty."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds, to the microsecond, as our reports print them."""
    return None if seconds is None else round(1000 * seconds, 3)
