import pytest

from sdn_app.core.meters import COUNTER_MAX, MeterBank, RateMeter


def test_first_sample_gives_no_rate_then_rate_follows_the_counter():
    meter = RateMeter(time_constant=0, interval=1)
    meter.update({"tx_bytes": 1000}, 10.0)
    assert meter.rate("tx_bytes") == 0.0
    meter.update({"tx_bytes": 3000}, 11.0)
    assert meter.rate("tx_bytes") == pytest.approx(2000)


def test_smoothing_reacts_within_a_few_intervals():
    meter = RateMeter(time_constant=1.0, interval=1.0)
    t, total = 0.0, 0
    meter.update({"b": 0}, t)
    for _ in range(3):  # a burst: 1 MB/s from idle
        t, total = t + 1, total + 1_000_000
        meter.update({"b": total}, t)
    assert 0.9e6 < meter.rate("b") <= 1e6
    t += 1
    assert meter.grew == {"b"}
    meter.update({"b": total}, t)  # silence again
    assert meter.rate("b") < 0.5e6 and meter.grew == set()


def test_a_counter_that_stops_reads_zero_once_its_average_is_below_one_per_second():
    meter = RateMeter(time_constant=1.0, interval=1.0)
    meter.update({"bytes": 0}, 0.0)
    meter.update({"bytes": 300}, 1.0)
    seconds = 1
    while meter.rate("bytes") > 0:
        seconds += 1
        assert seconds < 20
        meter.update({"bytes": 300}, float(seconds))
    assert seconds == 7  # 300 * e^-5 = 2.0, 300 * e^-6 = 0.74
    meter.update({"bytes": 301}, 8.0)  # and a trickle still counts
    assert 0 < meter.rate("bytes") < 1


def test_counter_reset_restarts_without_a_spike():
    meter = RateMeter(time_constant=0, interval=1)
    meter.update({"b": 5_000_000}, 0)
    meter.update({"b": 6_000_000}, 1)
    meter.update({"b": 100}, 2)  # the switch restarted
    assert meter.rate("b") == pytest.approx(1_000_000), "keeps the last good rate"
    meter.update({"b": 1100}, 3)
    assert meter.rate("b") == pytest.approx(1000)


def test_64_bit_wraparound_is_a_delta_not_a_reset():
    meter = RateMeter(time_constant=0, interval=1)
    meter.update({"b": COUNTER_MAX - 500}, 0)
    meter.update({"b": 500}, 1)
    assert meter.rate("b") == pytest.approx(1000)


def test_missing_samples_average_over_the_gap_but_a_long_gap_restarts():
    meter = RateMeter(time_constant=0, interval=1)
    meter.update({"b": 0}, 0)
    meter.update({"b": 3000}, 3)  # two replies lost
    assert meter.rate("b") == pytest.approx(1000)
    meter.update({"b": 10**9}, 100)  # away for a long time: no rate from that
    assert meter.rate("b") == pytest.approx(1000)
    meter.update({"b": 10**9 + 50}, 101)
    assert meter.rate("b") == pytest.approx(50)


def test_out_of_order_or_duplicate_samples_are_ignored():
    meter = RateMeter(time_constant=0, interval=1)
    meter.update({"b": 0}, 5)
    meter.update({"b": 100}, 5)
    meter.update({"b": 100}, 4)
    assert meter.rate("b") == 0.0


def test_bank_creates_and_forgets():
    bank = MeterBank(0, 1)
    bank.update((1, 2), {"b": 0}, 0)
    bank.update((1, 2), {"b": 10}, 1)
    bank.update((2, 1), {"b": 0}, 0)
    assert bank.rate((1, 2), "b") == 10 and bank.rate((9, 9), "b") == 0
    bank.forget(lambda key: key[0] == 1)
    assert list(bank.meters) == [(2, 1)]
