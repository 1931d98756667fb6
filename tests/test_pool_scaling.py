"""Pool scaling in the Ryu layer (ryuapp/scaling.py) with a real actuator command (a
shell script that logs its arguments) and green threads run inline: what is started,
drained and stopped, and a failing actuator retried with backoff and reported."""

import logging
from collections import deque

from sdn_app.core.services import ServiceTable, parse_service
from sdn_app.ryuapp.scaling import RETRY_DELAYS, PoolScaling


def scaled_service(tmp_path, exit_code=0, **scaling):
    script = tmp_path / "actuator.sh"
    log = tmp_path / "calls"
    script.write_text('echo "$@" >> %s\nexit %d\n' % (log, exit_code))
    table = ServiceTable()
    policy = {"policy": "reactive", "min_backends": 1, "max_backends": 3, "target": 10,
              "hold_s": 0, "scale_down_window_s": 0,
              "standby": [{"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}]}
    policy.update(scaling)
    service = table.add(parse_service({
        "name": "web", "vip": "10.0.0.100", "port": 80, "protocol": "tcp",
        "backends": [{"ip": "10.0.0.2"}], "scaling": policy}))
    events, changes, sleeps = [], [], []
    scaling_runner = PoolScaling(
        table, "sh %s" % script, lambda kind, **d: changes.append((kind, d)),
        lambda kind, **d: events.append((kind, d)), logging.getLogger("test"),
        lambda fn, *args: fn(*args), sleeps.append)
    return table, service, scaling_runner, log, events, changes, sleeps


def NONE(key):  # noqa: N802 (a constant: no bits/s, no requests/s anywhere)
    return 0.0


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


def test_load_starts_standby_backends_and_adds_them_once_started(tmp_path):
    table, service, runner, log, events, changes, _ = scaled_service(tmp_path)
    first = service.backends["10.0.0.2"].backend_id
    runner.tick(0.0, {first: 35}, NONE, NONE)  # 35 connections, 10 per backend
    assert calls(log) == ["start web 10.0.0.3 80", "start web 10.0.0.4 80"], "max 3"
    assert set(service.backends) == {"10.0.0.2", "10.0.0.3", "10.0.0.4"}
    assert service.backends["10.0.0.3"].state == "down", "serves once its check passes"
    assert [d["reason"] for k, d in changes if k == "backend_added"] == ["scale out"] * 2
    scale = [d for k, d in events if k == "scale"]
    assert (scale[0]["size_from"], scale[0]["size_to"]) == (1, 3)
    assert "load 35" in scale[0]["reason"]


def test_less_load_drains_the_last_started_first_and_stops_it_when_it_leaves(tmp_path):
    table, service, runner, log, events, changes, _ = scaled_service(tmp_path)
    ids = lambda: {ip: b.backend_id for ip, b in service.backends.items()}  # noqa: E731
    runner.tick(0.0, {ids()["10.0.0.2"]: 35}, NONE, NONE)
    runner.tick(1.0, {ids()["10.0.0.2"]: 12, ids()["10.0.0.3"]: 4}, NONE, NONE)
    draining = [ip for ip, b in service.backends.items() if b.draining]
    assert draining == ["10.0.0.4"], "16 connections: two backends, the last one out"
    service.remove_backend("10.0.0.4")  # its drain ended (the app's _drain)
    runner.stopped("web", "10.0.0.4")
    assert calls(log)[-1] == "stop web 10.0.0.4 80"
    service.remove_backend("10.0.0.2")  # a configured backend is not ours to stop
    runner.stopped("web", "10.0.0.2")
    runner.stopped("web", "10.0.0.4")  # nor one stopped already
    assert calls(log).count("stop web 10.0.0.4 80") == 1 and len(calls(log)) == 3


def test_a_failing_actuator_is_retried_with_backoff_and_reported(tmp_path):
    table, service, runner, log, events, changes, sleeps = scaled_service(
        tmp_path, exit_code=3, max_backends=2)
    runner.tick(0.0, {service.backends["10.0.0.2"].backend_id: 35}, NONE, NONE)
    assert calls(log) == ["start web 10.0.0.3 80"] * (1 + len(RETRY_DELAYS))
    assert [s for s in sleeps if s != 0.05] == [0.0, *RETRY_DELAYS], "0.05: waiting on it"
    failed = [d for k, d in events if k == "scaling_failed"]
    assert len(failed) == 4 and failed[-1]["problem"].startswith("exit 3")
    assert set(service.backends) == {"10.0.0.2"} and not runner.starting


def test_without_an_actuator_nothing_is_started(tmp_path):
    table, service, runner, log, events, changes, _ = scaled_service(tmp_path)
    runner.command = []
    runner.tick(0.0, {service.backends["10.0.0.2"].backend_id: 35}, NONE, NONE)
    assert calls(log) == [] and set(service.backends) == {"10.0.0.2"}


def test_deleting_a_service_stops_the_backends_it_started(tmp_path):
    table, service, runner, log, events, changes, _ = scaled_service(tmp_path)
    runner.tick(0.0, {service.backends["10.0.0.2"].backend_id: 35}, NONE, NONE)
    table.remove("web")  # what DELETE /v1/services/web does, then the event
    runner.service_removed("web")
    assert sorted(calls(log)[2:]) == ["stop web 10.0.0.3 80", "stop web 10.0.0.4 80"]
    runner.service_removed("web")
    assert len(calls(log)) == 4, "each stopped once; the configured one never"


def test_the_requests_metric_sizes_the_pool_by_new_connections_per_second(tmp_path):
    table, service, runner, log, events, changes, _ = scaled_service(
        tmp_path, metric="requests")
    rates = {"web": 25.0}
    runner.tick(0.0, {}, lambda ip: 0.0, rates.get)  # no connection entries counted
    assert calls(log) == ["start web 10.0.0.3 80", "start web 10.0.0.4 80"], "25/s at 10"
    assert "load 25" in [d for k, d in events if k == "scale"][0]["reason"]


def test_how_long_a_started_backend_took_to_serve_lengthens_the_look_ahead(tmp_path):
    table, service, runner, log, events, changes, _ = scaled_service(
        tmp_path, startup_s=3)
    stated = service.scaler.horizon()  # no series yet: start-up + checks (2 x 200 ms)
    assert stated == 3.4
    runner.tick(10.0, {service.backends["10.0.0.2"].backend_id: 35}, NONE, NONE)
    service.health_result("10.0.0.3", True, 15.0)
    service.health_result("10.0.0.3", True, 15.5)  # rise 2: up 5.5 s after it was asked
    runner.tick(16.0, {}, NONE, NONE)
    assert service.scaler.seen_ready_s == deque([5.5]), "10.0.0.4 is not up yet"
    assert service.scaler.horizon() == 5.5 + 6.0, "and the last sample 6 s old"
    service.remove_backend("10.0.0.4")  # never came up, left: forgotten
    runner.tick(17.0, {}, NONE, NONE)
    assert not runner.asked_at
    service.scaler.ready_seen(600.0)  # checks failing for minutes: not a start-up time
    assert list(service.scaler.seen_ready_s) == [5.5]
