"""Pool scaling: how many backends a service should have, from the load the switches
measure (``metric``): its backends' connection entries (``connections``: open ones and
those closed within the last second), the new connections per second its
new-connection entry counts (``requests``), the bits/s toward its backends (``bps``), or
the figures its backends' load agents report (``reported``: the health check's
``agent_port``).

Two policies, per service (``ScalingSpec``):

* ``reactive``, Kubernetes HPA's rule: desired = ceil(load / target per backend), left
  alone while the load per backend is within ``tolerance`` of the target; a smaller
  pool only once the highest recommendation of the last ``scale_down_window_s`` says
  so (HPA's stabilization window), so a dip does not shrink the pool it is about to need.
* ``predictive``: the same rule on the highest load forecast from now to ``startup_s``
  ahead, plus the time its health checks take to pass (a backend started now serves only
  then), plus one sampling interval (what is measured now is that old): Holt's linear
  trend on the measured series, which follows a ramp and, on a step, over-reaches
  briefly rather than lagging; with ``season_s``, Holt-Winters' seasonality on top,
  which after one whole season forecasts a recurring rise (a crowd at the same time of
  day) before it comes, and a fall too: once a season is learned, the pool shrinks as
  soon as the current load and the forecast for the next ``scale_down_window_s`` both
  fit a smaller pool.  The reactive recommendation is the floor, so a forecast that is
  wrong low cannot starve the service.

Both keep within ``min_backends`` and ``max_backends`` and wait ``hold_s`` between two
changes of the pool, except an increase right after an increase (more is needed: that
is not flapping, and waiting would only starve the service).  Pure: time is passed in;
the Ryu layer measures, asks ``Scaler`` and acts (start a standby backend, drain one).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from .fields import choice, fail, keys

POLICIES = ("off", "reactive", "predictive")
METRICS = ("connections", "requests", "bps", "reported")
HISTORY_S = 300.0  # how much of the measured series and forecast is kept (REST)
MAX_SEASON_BINS = 100_000  # a seasonal profile's size (a day in seconds fits)
SEEN_STARTS = 5  # measured start-ups kept: the look-ahead covers the slowest of them
SEEN_MAX_FACTOR, SEEN_MAX_EXTRA_S = 3.0, 10.0  # a longer one is an outlier, not kept


@dataclass(frozen=True)
class ScalingSpec:
    policy: str = "off"
    min_backends: int = 1
    max_backends: int = 1
    metric: str = "connections"
    target: float = 100.0  # load per backend the pool is sized for
    tolerance: float = 0.1
    scale_down_window_s: float = 60.0
    hold_s: float = 3.0
    startup_s: float = 3.0  # how long a started backend takes to serve (forecast horizon)
    alpha: float = 0.5  # Holt's smoothing of the level ...
    beta: float = 0.3  # ... and of the trend
    season_s: float = 0.0  # the period of a recurring pattern (0: none), e.g. 86400
    season_bin_s: float = 1.0  # the seasonal profile's resolution (60 for a day)
    gamma: float = 0.3  # the profile's smoothing once learned
    standby: tuple = ()  # BackendSpec of the hosts that may run a backend when needed

    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in (
            "policy", "min_backends", "max_backends", "metric", "target", "tolerance",
            "scale_down_window_s", "hold_s", "startup_s", "alpha", "beta", "season_s",
            "season_bin_s", "gamma")}
        out["standby"] = [{"ip": b.ip, "port": b.port, "weight": b.weight}
                          for b in self.standby]
        return out


def parse_scaling(obj, where: str, parse_backend, default_port: int,
                  current: ScalingSpec | None = None) -> ScalingSpec:
    """A ScalingSpec from JSON; ``current`` gives the values of fields left out (a PUT
    that changes only some).  ValueError naming the field that is wrong."""
    base = current or ScalingSpec()
    obj = keys(obj, where, set(), set(ScalingSpec.__dataclass_fields__))

    def number(name, low, high, integer=False):
        value = obj.get(name, getattr(base, name))
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) \
                or not low <= value <= high:
            fail(where + "." + name, "must be %s from %s to %s, got %r" % (
                "an integer" if integer else "a number", low, high, value))
        return value
    standby = base.standby
    if "standby" in obj:
        if not isinstance(obj["standby"], list):
            fail(where + ".standby", "must be a list")
        standby = tuple(parse_backend(b, "%s.standby[%d]" % (where, i), default_port)
                        for i, b in enumerate(obj["standby"]))
    spec = ScalingSpec(
        policy=choice(obj.get("policy", base.policy), where + ".policy", POLICIES),
        min_backends=number("min_backends", 0, 1000, True),
        max_backends=number("max_backends", 0, 1000, True),
        metric=choice(obj.get("metric", base.metric), where + ".metric", METRICS),
        target=number("target", 1e-3, 1e12), tolerance=number("tolerance", 0, 1),
        scale_down_window_s=number("scale_down_window_s", 0, 86400),
        hold_s=number("hold_s", 0, 3600), startup_s=number("startup_s", 0, 3600),
        alpha=number("alpha", 0.01, 1), beta=number("beta", 0, 1),
        season_s=number("season_s", 0, 7 * 86400),
        season_bin_s=number("season_bin_s", 0.1, 86400), gamma=number("gamma", 0, 1),
        standby=standby)
    if spec.max_backends < spec.min_backends:
        fail(where + ".max_backends", "is below min_backends (%d)" % spec.min_backends)
    if spec.season_s and not 2 <= spec.season_s / spec.season_bin_s <= MAX_SEASON_BINS:
        fail(where + ".season_bin_s", "must divide season_s into 2 to %d bins" %
             MAX_SEASON_BINS)
    return spec


class Holt:
    """Holt's linear trend (double exponential smoothing) on samples at any spacing: a
    level and a trend per second; with a season (``season_s`` > 0), Holt-Winters'
    additive seasonality on top: a profile of ``season_s / bin_s`` bins, learned from
    the first whole season (each bin's mean less the season's mean) and then smoothed
    by ``gamma``, so a pattern that recurs (a daily peak, a crowd at the same hour) is
    forecast before it arrives.  Until the first season is complete it forecasts as
    plain Holt."""

    def __init__(self, alpha: float, beta: float, gamma: float = 0.0,
                 season_s: float = 0.0, bin_s: float = 1.0):
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.bin_s = bin_s
        self.bins = int(round(season_s / bin_s)) if season_s > 0 else 0
        self.level: float | None = None
        self.trend = 0.0
        self.at: float | None = None
        self.seasonal: list | None = None  # per bin, once the first season is learned
        self._first: dict = {}  # bin -> [sum, samples] while the first season runs
        self._began: float | None = None

    def _bin(self, t: float) -> int:
        return int(math.floor(t / self.bin_s + 1e-9)) % self.bins

    def _learn_first_season(self, t: float, value: float) -> None:
        if self._began is None:
            self._began = t
        acc = self._first.setdefault(self._bin(t), [0.0, 0])
        acc[0] += value
        acc[1] += 1
        if t - self._began < self.bins * self.bin_s:
            return
        means = {b: total / n for b, (total, n) in self._first.items()}
        mean = sum(means.values()) / len(means)
        profile = []
        for b in range(self.bins):  # a bin without samples takes its nearest neighbour's
            near = min(means, key=lambda m: min((m - b) % self.bins, (b - m) % self.bins))
            profile.append(means[near] - mean)
        self.seasonal, self._first = profile, {}
        self.level, self.trend = value - profile[self._bin(t)], 0.0

    def update(self, t: float, value: float) -> None:
        if self.bins and self.seasonal is None:
            self._learn_first_season(t, value)
            if self.seasonal is not None:
                self.at = t
                return
        season = self.seasonal[self._bin(t)] if self.seasonal else 0.0
        if self.level is None or self.at is None or t <= self.at:
            if self.level is None:
                self.level = value - season
            self.at = t if self.at is None else max(self.at, t)
            return
        dt = t - self.at
        predicted = self.level + self.trend * dt
        level = self.alpha * (value - season) + (1 - self.alpha) * predicted
        self.trend = self.beta * (level - self.level) / dt + (1 - self.beta) * self.trend
        self.level, self.at = level, t
        if self.seasonal:
            b = self._bin(t)
            self.seasonal[b] += self.gamma * (value - level - self.seasonal[b])

    def forecast(self, ahead: float) -> float:
        if self.level is None:
            return 0.0
        season = self.seasonal[self._bin(self.at + ahead)] if self.seasonal else 0.0
        return max(0.0, self.level + self.trend * ahead + season)

    def peak(self, ahead: float) -> float:
        """The highest forecast from now to ``ahead`` seconds on: what a pool sized now
        must carry until a backend started now serves (a seasonal rise may come and go
        within the horizon)."""
        steps = int(math.ceil(ahead / self.bin_s - 1e-9)) if self.seasonal else 0
        return max(self.forecast(min(ahead, k * self.bin_s)) for k in range(steps + 1)) \
            if steps else self.forecast(ahead)


@dataclass
class Decision:
    at: float
    size: int  # the pool size wanted
    reason: str


@dataclass
class Scaler:
    """One service's scaling state: the measured series, the forecaster, recent
    recommendations (for the scale-down window) and the decisions taken."""

    spec: ScalingSpec
    ready_after_s: float = 0.0  # after its start-up, how long a backend's checks take
    series: deque = field(default_factory=deque)  # (t, load)
    forecasts: deque = field(default_factory=deque)  # (t, peak forecast to the horizon)
    recommendations: deque = field(default_factory=deque)  # (t, size)
    decisions: deque = field(default_factory=lambda: deque(maxlen=50))
    changed_at: float = float("-inf")
    grew_last: bool = False  # the last change was an increase (another may follow it)
    # how long the last scale-outs took from being asked for to serving, measured
    seen_ready_s: deque = field(default_factory=lambda: deque(maxlen=SEEN_STARTS))

    def __post_init__(self):
        self.holt = self._forecaster(self.spec)

    @staticmethod
    def _forecaster(spec: ScalingSpec) -> Holt:
        return Holt(spec.alpha, spec.beta, spec.gamma, spec.season_s, spec.season_bin_s)

    def set_spec(self, spec: ScalingSpec) -> None:
        if (spec.season_s, spec.season_bin_s) != (self.spec.season_s,
                                                   self.spec.season_bin_s):
            self.holt = self._forecaster(spec)  # another season: learned afresh
        else:
            self.holt.alpha, self.holt.beta, self.holt.gamma = (spec.alpha, spec.beta,
                                                                spec.gamma)
        self.spec = spec

    def observe(self, now: float, load: float) -> None:
        self.series.append((now, load))
        self.holt.update(now, load)
        self.forecasts.append((now, self.holt.peak(self.horizon())))
        for kept in (self.series, self.forecasts):
            while kept and kept[0][0] < now - HISTORY_S:
                kept.popleft()

    def horizon(self) -> float:
        """How far ahead a decision must look: a backend started now serves after
        ``startup_s`` and its health checks passing (``ready_after_s``), or as long as
        the slowest of the last few started took (``ready_seen``), whichever is
        longer; the load measured now is already one sample old; and a learned season's
        bin holds what was measured in it, so a rise that began in one bin shows in
        full only in the next (one bin more)."""
        gap = self.series[-1][0] - self.series[-2][0] if len(self.series) > 1 else 0.0
        stated = self.spec.startup_s + self.ready_after_s
        late = self.spec.season_bin_s if self.holt.seasonal is not None else 0.0
        return max(stated, max(self.seen_ready_s, default=0.0)) + gap + late

    def ready_seen(self, seconds: float) -> None:
        """A backend started for load serves ``seconds`` after it was asked for (its
        actuator, its process, its checks): the start-up as it is, which a stated
        ``startup_s`` may understate.  One far beyond the stated start-up (a backend
        that failed its checks for minutes) says nothing about the next: not kept."""
        stated = self.spec.startup_s + self.ready_after_s
        if 0 <= seconds <= SEEN_MAX_FACTOR * stated + SEEN_MAX_EXTRA_S:
            self.seen_ready_s.append(seconds)

    def _rule(self, load: float, current: int) -> int:
        """HPA's proportional rule with its tolerance."""
        spec = self.spec
        if current > 0 and abs(load / current / spec.target - 1.0) <= spec.tolerance:
            return current
        return math.ceil(load / spec.target - 1e-9)

    def desired(self, now: float, current: int, can_reach: int) -> Decision | None:
        """The pool size wanted now for ``current`` backends serving (``can_reach``: the
        most the pool can have, serving plus standby), or None when it stays."""
        spec = self.spec
        if spec.policy == "off" or not self.series:
            return None
        load = self.series[-1][1]
        size = self._rule(load, current)
        why = "load %.4g, %.4g per backend targeted" % (load, spec.target)
        seasonal = spec.policy == "predictive" and self.holt.seasonal is not None
        if spec.policy == "predictive":
            horizon = self.horizon()
            ahead = self.holt.peak(horizon)
            predicted = self._rule(ahead, current)
            if predicted > size:
                size = predicted
                why = "%sforecast %.4g within %.3gs (now %.4g), %.4g per backend " \
                      "targeted" % ("seasonal " if seasonal else "", ahead, horizon, load,
                                    spec.target)
        self.recommendations.append((now, size))
        while self.recommendations and \
                self.recommendations[0][0] < now - spec.scale_down_window_s:
            self.recommendations.popleft()
        if size < current and seasonal:
            # A learned season says what the next window holds: down once it, too,
            # fits the smaller pool (rather than after a window of looking back).
            coming = self._rule(self.holt.peak(spec.scale_down_window_s), current)
            if coming > size:
                size, why = min(coming, current), why + "; held up by the forecast " \
                    "for the next %gs" % spec.scale_down_window_s
        elif size < current:  # down only as far as the whole window agrees
            highest = max(s for _, s in self.recommendations)
            if highest > size:
                size, why = highest, why + "; held up by the last %gs" % (
                    spec.scale_down_window_s)
        upper = min(spec.max_backends, can_reach)
        bounded = max(spec.min_backends, min(upper, size))
        if bounded != size:
            why += "; bounded to %d..%d" % (spec.min_backends, upper)
        growing_again = bounded > current and self.grew_last
        if bounded == current or (now - self.changed_at < spec.hold_s and
                                  not growing_again):
            return None
        self.changed_at, self.grew_last = now, bounded > current
        decision = Decision(now, bounded, why)
        self.decisions.append(decision)
        return decision

    def describe(self, now: float, current: int) -> dict:
        return {"policy": self.spec.to_dict(), "current": current,
                "load": self.series[-1][1] if self.series else None,
                "forecast": round(self.holt.peak(self.horizon()), 3),
                "horizon_s": round(self.horizon(), 3),
                "start_ups_seen_s": [round(t, 3) for t in self.seen_ready_s],
                "season_learned": self.holt.seasonal is not None,
                "series": [[round(t - now, 2), round(v, 3)] for t, v in self.series],
                "forecasts": [[round(t - now, 2), round(v, 3)] for t, v in self.forecasts],
                "decisions": [{"age_s": round(now - d.at, 2), "size": d.size,
                               "reason": d.reason} for d in self.decisions]}
