"""Pool scaling: how many backends a service should have, from the load the switches
measure (``metric``): its backends' connection entries (``connections``: open ones and
those closed within the last second), the new connections per second its
new-connection entry counts (``requests``), or the bits/s toward its backends (``bps``).

Two policies, per service (``ScalingSpec``):

* ``reactive``, Kubernetes HPA's rule: desired = ceil(load / target per backend), left
  alone while the load per backend is within ``tolerance`` of the target; a smaller
  pool only once the highest recommendation of the last ``scale_down_window_s`` says
  so (HPA's stabilization window), so a dip does not shrink the pool it is about to need.
* ``predictive``: the same rule on a forecast of the load ``startup_s`` ahead (a backend
  started now serves only then): Holt's linear trend on the measured series, which
  follows a ramp and, on a step, over-reaches briefly rather than lagging; the reactive
  recommendation is its floor, so a forecast that is wrong low cannot starve the service.

Both keep within ``min_backends`` and ``max_backends`` and wait ``hold_s`` between two
changes of the pool.  Pure: time is passed in; the Ryu layer measures, asks ``Scaler``
and acts (start a standby backend, drain one).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from .fields import choice, fail, keys

POLICIES = ("off", "reactive", "predictive")
METRICS = ("connections", "requests", "bps")
HISTORY_S = 300.0  # how much of the measured series and forecast is kept (REST)


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
    standby: tuple = ()  # BackendSpec of the hosts that may run a backend when needed

    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in (
            "policy", "min_backends", "max_backends", "metric", "target", "tolerance",
            "scale_down_window_s", "hold_s", "startup_s", "alpha", "beta")}
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
        alpha=number("alpha", 0.01, 1), beta=number("beta", 0, 1), standby=standby)
    if spec.max_backends < spec.min_backends:
        fail(where + ".max_backends", "is below min_backends (%d)" % spec.min_backends)
    return spec


class Holt:
    """Holt's linear trend (double exponential smoothing) on samples at any spacing:
    a level and a trend per second."""

    def __init__(self, alpha: float, beta: float):
        self.alpha, self.beta = alpha, beta
        self.level: float | None = None
        self.trend = 0.0
        self.at: float | None = None

    def update(self, t: float, value: float) -> None:
        if self.level is None or self.at is None or t <= self.at:
            if self.level is None:
                self.level = value
            self.at = t if self.at is None else max(self.at, t)
            return
        dt = t - self.at
        predicted = self.level + self.trend * dt
        level = self.alpha * value + (1 - self.alpha) * predicted
        self.trend = self.beta * (level - self.level) / dt + (1 - self.beta) * self.trend
        self.level, self.at = level, t

    def forecast(self, ahead: float) -> float:
        if self.level is None:
            return 0.0
        return max(0.0, self.level + self.trend * ahead)


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
    series: deque = field(default_factory=deque)  # (t, load)
    forecasts: deque = field(default_factory=deque)  # (t, forecast for t + startup_s)
    recommendations: deque = field(default_factory=deque)  # (t, size)
    decisions: deque = field(default_factory=lambda: deque(maxlen=50))
    changed_at: float = float("-inf")

    def __post_init__(self):
        self.holt = Holt(self.spec.alpha, self.spec.beta)

    def set_spec(self, spec: ScalingSpec) -> None:
        if (spec.alpha, spec.beta) != (self.spec.alpha, self.spec.beta):
            self.holt.alpha, self.holt.beta = spec.alpha, spec.beta
        self.spec = spec

    def observe(self, now: float, load: float) -> None:
        self.series.append((now, load))
        self.holt.update(now, load)
        self.forecasts.append((now, self.holt.forecast(self.spec.startup_s)))
        for kept in (self.series, self.forecasts):
            while kept and kept[0][0] < now - HISTORY_S:
                kept.popleft()

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
        if spec.policy == "predictive":
            ahead = self.holt.forecast(spec.startup_s)
            predicted = self._rule(ahead, current)
            if predicted > size:
                size = predicted
                why = "forecast %.4g in %gs (now %.4g), %.4g per backend targeted" % (
                    ahead, spec.startup_s, load, spec.target)
        self.recommendations.append((now, size))
        while self.recommendations and \
                self.recommendations[0][0] < now - spec.scale_down_window_s:
            self.recommendations.popleft()
        if size < current:  # down only as far as the whole window agrees
            highest = max(s for _, s in self.recommendations)
            if highest > size:
                size, why = highest, why + "; held up by the last %gs" % (
                    spec.scale_down_window_s)
        upper = min(spec.max_backends, can_reach)
        bounded = max(spec.min_backends, min(upper, size))
        if bounded != size:
            why += "; bounded to %d..%d" % (spec.min_backends, upper)
        if bounded == current or now - self.changed_at < spec.hold_s:
            return None
        self.changed_at = now
        decision = Decision(now, bounded, why)
        self.decisions.append(decision)
        return decision

    def describe(self, now: float, current: int) -> dict:
        return {"policy": self.spec.to_dict(), "current": current,
                "load": self.series[-1][1] if self.series else None,
                "forecast": round(self.holt.forecast(self.spec.startup_s), 3),
                "series": [[round(t - now, 2), round(v, 3)] for t, v in self.series],
                "forecasts": [[round(t - now, 2), round(v, 3)] for t, v in self.forecasts],
                "decisions": [{"age_s": round(now - d.at, 2), "size": d.size,
                               "reason": d.reason} for d in self.decisions]}
