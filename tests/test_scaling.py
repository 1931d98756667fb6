"""Pool scaling (core/scaling.py): the policy's checks, the reactive rule with its
tolerance and scale-down window, Holt's forecast on synthetic series, the predictive
policy getting ahead of a ramp and, with a season, of a recurring crowd, bounds and hold
times."""

import math
import random

import pytest

from sdn_app.core.scaling import Holt, Scaler, ScalingSpec, parse_scaling
from sdn_app.core.services import ServiceTable, parse_backend, parse_service


def spec(**changes):
    obj = {"policy": "reactive", "min_backends": 1, "max_backends": 10, "target": 100,
           "scale_down_window_s": 30, "hold_s": 0, "startup_s": 5}
    obj.update(changes)
    return parse_scaling(obj, "scaling", parse_backend, 80)


@pytest.mark.parametrize("change, field", [
    ({"policy": "guess"}, "scaling.policy"),
    ({"min_backends": -1}, "scaling.min_backends"),
    ({"max_backends": 0, "min_backends": 2}, "scaling.max_backends"),
    ({"target": 0}, "scaling.target"),
    ({"metric": "cpu"}, "scaling.metric"),
    ({"tolerance": True}, "scaling.tolerance"),
    ({"standby": [{"ip": "10.0.0.300"}]}, "scaling.standby[0].ip"),
    ({"standby": {}}, "scaling.standby"),
    ({"burst": 1}, "scaling"),
    ({"season_s": 60, "season_bin_s": 40}, "scaling.season_bin_s"),
    ({"season_s": -1}, "scaling.season_s"),
])
def test_bad_policies_name_the_field(change, field):
    with pytest.raises(ValueError) as err:
        spec(**change)
    assert str(err.value).startswith(field + ":"), str(err.value)


def test_a_partial_update_keeps_the_other_fields():
    base = spec(standby=[{"ip": "10.0.0.9"}])
    changed = parse_scaling({"max_backends": 4}, "scaling", parse_backend, 80, base)
    assert changed.max_backends == 4 and changed.standby == base.standby
    assert changed.target == 100 and ScalingSpec().policy == "off"


def run(scaler, loads, current=1, can_reach=10, step=1.0):
    """Feed a load per second; the pool follows each decision at once."""
    sizes = []
    for i, load in enumerate(loads):
        now = i * step
        scaler.observe(now, load)
        decision = scaler.desired(now, current, can_reach)
        if decision is not None:
            current = decision.size
        sizes.append(current)
    return sizes


def test_the_reactive_rule_sizes_to_the_target_and_ignores_small_deviations():
    scaler = Scaler(spec())
    assert run(scaler, [350]) == [4]
    scaler = Scaler(spec())
    assert run(scaler, [100, 108, 95, 109], current=1) == [1, 1, 1, 1], "within 10%"
    assert run(Scaler(spec()), [0], current=3) == [1], "never below min_backends"
    assert run(Scaler(spec()), [5000]) == [10], "never above max_backends"
    assert run(Scaler(spec()), [5000], can_reach=3) == [3], "nor above what exists"


def test_scale_down_waits_for_the_whole_window_and_up_does_not():
    scaler = Scaler(spec(scale_down_window_s=10))
    loads = [400] * 5 + [100] * 20 + [400]
    sizes = run(scaler, loads)
    assert sizes[4] == 4
    assert sizes[5:15] == [4] * 10, "a dip shorter than the window changes nothing"
    assert sizes[16] == 1, "then down"
    assert sizes[-1] == 4, "up at once"
    reasons = [d.reason for d in scaler.decisions]
    assert "load 400" in reasons[0] and len(reasons) == 3


def test_hold_time_spaces_changes_but_not_a_growth_that_continues():
    scaler = Scaler(spec(hold_s=5, scale_down_window_s=0))
    sizes = run(scaler, [200, 400, 600, 800, 1000, 1000, 1000])
    assert sizes == [2, 4, 6, 8, 10, 10, 10], "more, then more again: no waiting"
    flapping = Scaler(spec(hold_s=5, scale_down_window_s=0))
    sizes = run(flapping, [200] + [1000] * 7 + [200] * 3, current=10)
    # up after down, and down after up, wait out the hold
    assert sizes == [2, 2, 2, 2, 2, 10, 10, 10, 10, 10, 2]


def test_holt_follows_a_trend_a_step_and_noise():
    holt = Holt(0.5, 0.3)
    for t in range(30):
        holt.update(float(t), 10.0 * t)
    assert holt.forecast(5) == pytest.approx(10 * 29 + 50, rel=0.02)
    step = Holt(0.5, 0.3)
    for t in range(40):
        step.update(float(t), 100.0 if t < 20 else 400.0)
    assert step.forecast(0) == pytest.approx(400, rel=0.02)
    noisy = Holt(0.3, 0.1)
    rng = random.Random(1)
    for t in range(200):
        noisy.update(float(t), 200 + rng.gauss(0, 20))
    assert abs(noisy.forecast(5) - 200) < 30
    assert Holt(0.5, 0.3).forecast(3) == 0.0


def test_predictive_scales_ahead_of_a_ramp_and_reactive_is_its_floor():
    ramp = [50 + 20 * t for t in range(30)]  # +20 per second: one backend per 5 s
    reactive = run(Scaler(spec()), ramp)
    predictive = run(Scaler(spec(policy="predictive")), ramp)
    need = [math.ceil(load / 100) for load in ramp]
    short_r = sum(size < n for size, n in zip(reactive, need, strict=True))
    short_p = sum(size < n for size, n in zip(predictive, need, strict=True))
    assert short_p < short_r
    assert all(p >= r for p, r in zip(predictive, reactive, strict=True))
    # a forecast gone low (a sudden fall) cannot take the pool below the reactive size
    fall = Scaler(spec(policy="predictive", scale_down_window_s=0))
    sizes = run(fall, [800] * 10 + [790, 400])
    assert sizes[-1] >= math.ceil(400 / 100)


def test_off_decides_nothing_and_the_description_carries_the_series():
    scaler = Scaler(spec(policy="off"))
    assert run(scaler, [900]) == [1]
    described = Scaler(spec())
    run(described, [350, 360])
    out = described.describe(1.0, 4)
    assert out["current"] == 4 and out["load"] == 360 and len(out["series"]) == 2
    assert out["decisions"][0]["size"] == 4 and out["policy"]["policy"] == "reactive"


def day(seconds=60, crowd_at=30, crowd_for=10, base=50.0, crowd=400.0):
    """One 'day' of load per second: a base load and a crowd at the same time each day."""
    return [crowd if crowd_at <= t < crowd_at + crowd_for else base
            for t in range(seconds)]


def test_holt_winters_learns_a_recurring_step_in_one_season():
    holt = Holt(0.5, 0.3, 0.3, season_s=60)
    first, second = day(), day()
    for t, load in enumerate(first + second[:28]):
        holt.update(float(t), load)
        if t == 27:
            assert holt.forecast(3) < 100, "no season learned yet: plain Holt"
    assert holt.seasonal is not None
    assert holt.forecast(3) == pytest.approx(400, rel=0.1), "t=87: the crowd at 90"
    assert holt.forecast(1) == pytest.approx(50, abs=15)
    assert holt.peak(3) == pytest.approx(400, rel=0.1)
    plain = Holt(0.5, 0.3)
    for t, load in enumerate(first + second[:28]):
        plain.update(float(t), load)
    assert plain.peak(3) < 100


def test_seasonal_predictive_is_ready_for_the_second_crowd_and_shrinks_at_its_end():
    loads = day() * 2
    base = {"startup_s": 3, "scale_down_window_s": 10, "hold_s": 0}
    reactive = run(Scaler(spec(**base)), loads)
    predictive = run(Scaler(spec(policy="predictive", season_s=60, **base)), loads)
    # day two: 4 backends from 85 (5 s ahead: a 3 s start-up, a sample 1 s old, a
    # season's bin 1 s wide), reactive only at 90
    assert predictive[84] == 1 and predictive[85] == 4
    assert reactive[89] == 1 and reactive[90] == 4
    # the crowd ends at 100: the forecast says so, the backward window holds 10 s
    assert predictive[100] == 1 and reactive[100] == 4 and reactive[110] == 1
    # day one, nothing learned: the same as reactive at the crowd's start
    assert predictive[29] == 1 and predictive[30] >= 4
    # never below the reactive floor
    assert all(p >= r or t >= 100 for t, (p, r) in enumerate(zip(predictive, reactive,
                                                                   strict=True)))


def test_the_health_checks_time_to_pass_lengthens_the_look_ahead():
    loads = day() * 2
    base = {"policy": "predictive", "season_s": 60, "startup_s": 3,
            "scale_down_window_s": 10, "hold_s": 0}
    checked = run(Scaler(spec(**base), ready_after_s=2.0), loads)
    # 3 s start-up + 2 s of checks + a sample 1 s old + a bin: 7 s ahead of the crowd
    assert checked[82] == 1 and checked[83] == 4
    services = ServiceTable()
    service = services.add(parse_service({
        "name": "web", "vip": "10.0.0.100", "port": 80, "protocol": "tcp",
        "backends": [{"ip": "10.0.0.1"}],
        "health": {"interval_ms": 500, "rise": 3}}))
    assert service.scaler.ready_after_s == 1.5, "rise x interval"
