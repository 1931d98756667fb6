"""What the controller counts about its own work, for its metrics (ryuapp/metrics.py
turns these into Prometheus families at each scrape): plain counters and one histogram,
so the core and the Ryu layer stay free of any metrics library.

Everything here only grows, as Prometheus counters must; a switch's counts are kept
when it disconnects, so a scrape never sees a counter go backwards.
"""

from __future__ import annotations

import bisect
import collections

from .events import RECONCILED, WATCHED_KINDS

# Upper bounds (s) of the recomputation-time buckets: from a host join on a small
# fabric (~1 ms) to a cold start of a large one (seconds).
RECOMPUTE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                     5.0, 10.0, 30.0)


class Histogram:
    """Observations counted into fixed buckets (upper bounds, ascending), with their sum."""

    def __init__(self, bounds=RECOMPUTE_BUCKETS):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """[(upper bound, observations at or below it)], ending with (inf, count)."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=False):
            running += n
            out.append((bound, running))
        return out


class Telemetry:
    """The controller's own counts since it started."""

    def __init__(self):
        self.packet_ins = collections.Counter()  # (dpid, kind) -> packet-ins received
        self.packet_ins_dropped = collections.Counter()  # (dpid, port or None) -> by the meters
        self.errors = collections.Counter()  # (dpid, OpenFlow error type) -> received
        self.connections = collections.Counter()  # dpid -> times it connected
        self.disconnections = collections.Counter()  # dpid -> times it went away
        # cause (an event kind) -> recomputations; the watched causes from zero (events.py)
        self.recomputes = collections.Counter(dict.fromkeys(
            [kind for kind in WATCHED_KINDS if kind != RECONCILED] + ["periodic"], 0))
        self.recompute_seconds = Histogram()  # each recomputation, computing and sending

    def recomputed(self, seconds: float, cause_kinds) -> None:
        """One recomputation answering events of ``cause_kinds`` (none: a periodic
        rebalance or a resend); each kind counts once per recomputation."""
        self.recompute_seconds.observe(seconds)
        for kind in set(cause_kinds) or {"periodic"}:
            self.recomputes[kind] += 1

    def packet_ins_total(self) -> int:
        return sum(self.packet_ins.values())
