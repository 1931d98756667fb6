"""Rates from cumulative OpenFlow counters: smoothed, and robust to resets and gaps.

Switches report counters (bytes, packets, drops) that only grow, except when a switch
restarts or an entry is replaced.  A meter turns successive samples into per-second rates
with an exponentially weighted moving average whose time constant is a setting, so a
burst shows within a couple of polling intervals while single-sample noise is damped.
"""

from __future__ import annotations

import math

COUNTER_MAX = 2**64
# The per-port counters polled from every switch (OpenFlow port statistics names).
PORT_COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_dropped",
                 "tx_dropped")
# ... and every per-port counter polled, rated or not: the metrics export them as read.
PORT_TOTALS = PORT_COUNTERS + ("rx_errors", "tx_errors")
# A sample this much older than the previous one is not averaged across: the gap (a
# switch that did not answer, a reconnect) would smear an old rate over a long time.
MAX_GAP_INTERVALS = 10
# An average decays toward zero without reaching it: a counter that stopped growing and
# averages below one unit (byte, packet) per second reads zero, so what has gone quiet
# stops counting as traffic (adaptive places a destination whole once it has demand).
QUIET_BELOW = 1.0


class RateMeter:
    """Per-second rates of a set of named counters (e.g. tx_bytes, rx_packets)."""

    def __init__(self, time_constant: float, interval: float):
        self.time_constant = time_constant
        self.interval = interval
        self.last: dict[str, int] | None = None
        self.last_time = 0.0
        self.rates: dict[str, float] = {}
        self.latest: dict[str, float] = {}  # each counter's rate over the last interval
        self.grew: set[str] = set()  # counters that increased between the last two samples

    def update(self, counters: dict[str, int], now: float) -> None:
        if self.last is None or now - self.last_time > MAX_GAP_INTERVALS * self.interval:
            self.last, self.last_time = dict(counters), now
            return
        dt = now - self.last_time
        if dt <= 0:
            return
        deltas = {}
        for name, value in counters.items():
            prev = self.last.get(name)
            if prev is None:
                continue
            delta = value - prev
            if delta < 0:
                # A 64-bit counter near its top that wrapped, or else a reset: the
                # latter restarts the baseline without inventing a rate.
                if prev > COUNTER_MAX - 2**62:
                    delta += COUNTER_MAX
                else:
                    self.last, self.last_time = dict(counters), now
                    return
            deltas[name] = delta / dt
        self.grew = {name for name, rate in deltas.items() if rate > 0}
        self.latest = deltas
        alpha = 1.0 - math.exp(-dt / self.time_constant) if self.time_constant > 0 else 1.0
        for name, rate in deltas.items():
            old = self.rates.get(name)
            smoothed = rate if old is None else old + alpha * (rate - old)
            self.rates[name] = 0.0 if rate == 0 and smoothed < QUIET_BELOW else smoothed
        self.last, self.last_time = dict(counters), now

    def rate(self, name: str) -> float:
        return self.rates.get(name, 0.0)

    def latest_rate(self, name: str) -> float:
        """The last interval's rate, unsmoothed: ahead of ``rate`` while traffic ramps."""
        return self.latest.get(name, 0.0)


class MeterBank:
    """Meters keyed by anything (a switch port, a flow entry), created on first sight and
    dropped when their owner disappears."""

    def __init__(self, time_constant: float, interval: float):
        self.time_constant = time_constant
        self.interval = interval
        self.meters: dict = {}

    def update(self, key, counters: dict[str, int], now: float) -> RateMeter:
        meter = self.meters.get(key)
        if meter is None:
            meter = self.meters[key] = RateMeter(self.time_constant, self.interval)
        meter.update(counters, now)
        return meter

    def rate(self, key, name: str) -> float:
        meter = self.meters.get(key)
        return meter.rate(name) if meter else 0.0

    def forget(self, predicate) -> None:
        for key in [k for k in self.meters if predicate(k)]:
            del self.meters[key]
