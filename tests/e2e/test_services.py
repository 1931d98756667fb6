"""A virtual-IP service on the real stack: real TCP servers in Mininet hosts behind a VIP,
clients connecting to it through Open vSwitch, the controller's health checks noticing
a killed server, and established connections surviving the pool's change."""

import json
import subprocess
import sys
import time

import pytest

from sdn_app.lab.emulation import (
    REPO,
    ControllerProcess,
    emulated_network,
    ping_pairs,
    wait_converged,
    wait_until,
)

SPEC = "leafspine,2,3,2"  # two paths between leaves; backends on one leaf, clients elsewhere
VIP, PORT = "10.0.0.100", 8000


def serve(host):
    return host.popen([sys.executable, "-m", "sdn_app.lab.service_load", "serve", "--port",
                       str(PORT), "--name", host.name], cwd=str(REPO),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def connect(host, count):
    out = host.cmd("%s -m sdn_app.lab.service_load connect --dst %s --port %d --count %d "
                   "--timeout 1" % (sys.executable, VIP, PORT, count))
    return json.loads(out.strip().splitlines()[-1])


def states(ctl):
    return {b["ip"]: b["state"] for b in ctl.get("/v1/services/web")["backends"]}


@pytest.fixture
def service(tmp_path):
    with ControllerProcess(log_path=tmp_path / "controller.log") as ctl, \
            emulated_network(SPEC, ctl.of_port) as net:
        wait_converged(ctl, net)
        assert not ping_pairs(net)[1]
        backends = net.hosts[:2]  # the first leaf's two hosts
        servers = {h.name: serve(h) for h in backends}
        body = {"name": "web", "vip": VIP, "port": PORT, "protocol": "tcp",
                "backends": [{"ip": backends[0].IP(), "weight": 1},
                             {"ip": backends[1].IP(), "weight": 3}]}
        status, answer = ctl.request("/v1/services", "POST", json.dumps(body).encode())
        assert status == 201, answer
        assert wait_until(lambda: set(states(ctl).values()) == {"up"}, 5), states(ctl)
        try:
            yield ctl, net, backends, servers
        finally:
            for proc in servers.values():
                proc.kill()
                proc.wait()
        assert ctl.alive(), ctl.log_tail()


def test_connections_split_by_weight_and_a_killed_server_is_avoided(service):
    ctl, net, backends, servers = service
    clients = net.hosts[2:]
    time.sleep(0.5)  # the slots reach every switch after the second backend came up
    answers = {}
    for client in clients[:2]:
        result = connect(client, 300)
        assert result["failed"] == 0, result
        for name, n in result["answers"].items():
            answers[name] = answers.get(name, 0) + n
    share = answers.get(backends[1].name, 0) / sum(answers.values())
    assert abs(share - 0.75) <= 0.05, answers  # slots 15:46, hashing within 5 points

    # Connections held open to the survivor while the other's server dies.
    holder = clients[2].popen(
        [sys.executable, "-m", "sdn_app.lab.service_load", "hold", "--dst", VIP, "--port",
         str(PORT), "--count", "8", "--seconds", "4"], cwd=str(REPO),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    killed_at = time.monotonic()
    servers[backends[0].name].kill()
    assert wait_until(lambda: states(ctl)[backends[0].IP()] == "down", 3), states(ctl)
    detected = time.monotonic() - killed_at
    # interval 200 ms x fall 3, plus a probe's timing and a REST poll
    assert detected <= 1.5, detected
    result = connect(clients[0], 100)
    assert (result["answers"], result["failed"]) == ({backends[1].name: 100}, 0), result
    out, _ = holder.communicate(timeout=30)
    held = json.loads(out.decode().strip().splitlines()[-1])
    survivors = [i for i, name in enumerate(held["names"]) if name == backends[1].name]
    assert survivors and not set(survivors) & set(held["broken"]), held
    events = [e for e in ctl.get("/v1/events") if e["event"] == "backend_down"]
    assert events and events[-1]["ip"] == backends[0].IP()


def test_new_connections_per_second_are_counted_not_packets(service):
    """requests_per_s (the "requests" scaling metric): under wrr the SYN entry's counter
    on the clients' switches (each connection sends several segments to the VIP, only
    its SYN counts); under least_conn the controller's placements."""
    ctl, net, backends, servers = service
    client = net.hosts[2]
    for scheduler in ("wrr", "least_conn"):
        if scheduler != "wrr":
            body = dict(ctl.get("/v1/services/web"), scheduler=scheduler)
            body = {k: body[k] for k in ("name", "vip", "port", "protocol", "scheduler")}
            body["backends"] = [{"ip": h.IP()} for h in backends]
            assert ctl.request("/v1/services/web", "DELETE")[0] == 200
            assert ctl.request("/v1/services", "POST", json.dumps(body).encode())[0] == 201
            assert wait_until(lambda: set(states(ctl).values()) == {"up"}, 5)
        proc = client.popen(
            [sys.executable, "-m", "sdn_app.lab.service_load", "arrivals", "--dst", VIP,
             "--port", str(PORT), "--rate", "40", "--seconds", "6"], cwd=str(REPO),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        readings = []
        time.sleep(2.0)  # the first counted interval that is all inside the run
        for _ in range(6):
            readings.append(ctl.get("/v1/services/web")["requests_per_s"])
            time.sleep(0.5)
        out, _ = proc.communicate(timeout=30)
        assert json.loads(out.decode().strip().splitlines()[-1])["failed"] == 0
        readings.sort()
        # 40 connections/s offered
        assert 30 <= readings[len(readings) // 2] <= 50, (scheduler, readings)
        time.sleep(2.5)
        assert ctl.get("/v1/services/web")["requests_per_s"] == 0.0, "the load ended"


def test_service_requests_are_checked(service):
    ctl, net, backends, _ = service

    def call(method, path, body=None):
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        return ctl.request(path, method, data)[0]
    assert call("POST", "/v1/services", b"{") == 400
    assert call("POST", "/v1/services", {"name": "x"}) == 400
    assert call("POST", "/v1/services", {"name": "web", "vip": "10.0.0.101", "port": 1,
                                         "protocol": "tcp", "backends": []}) == 409
    assert call("POST", "/v1/services", {"name": "b", "vip": backends[0].IP(), "port": 1,
                                         "protocol": "tcp", "backends": []}) == 409
    assert call("GET", "/v1/services/nope") == 404
    assert call("PUT", "/v1/services/web/backends/10.0.0.250", {"weight": 2}) == 404
    assert call("PUT", "/v1/services/web/backends/%s" % backends[0].IP(),
                {"weight": -1}) == 400
    assert call("PUT", "/v1/services/web/backends/%s" % backends[0].IP(),
                {"state": "asleep"}) == 400
    assert call("PUT", "/v1/services/web/backends/%s" % backends[0].IP(),
                {"state": "draining"}) == 200
    assert states(ctl)[backends[0].IP()] == "draining"
    time.sleep(0.5)
    result = connect(net.hosts[2], 40)
    assert result["answers"] == {backends[1].name: 40}, result
    assert call("DELETE", "/v1/services/web") == 200
    assert call("GET", "/v1/services/web") == 404
    assert ctl.get("/v1/services") == []
    assert ctl.alive()


def test_least_conn_evens_held_connections_and_a_drained_backend_leaves(service):
    ctl, net, backends, _ = service
    assert ctl.request("/v1/services/web", "DELETE")[0] == 200
    body = {"name": "web", "vip": VIP, "port": PORT, "protocol": "tcp",
            "scheduler": "least_conn",
            "backends": [{"ip": backends[0].IP(), "weight": 1},
                         {"ip": backends[1].IP(), "weight": 3}]}
    status, answer = ctl.request("/v1/services", "POST", json.dumps(body).encode())
    assert status == 201, answer
    assert wait_until(lambda: set(states(ctl).values()) == {"up"}, 5), states(ctl)
    holder = net.hosts[2].popen(
        [sys.executable, "-m", "sdn_app.lab.service_load", "hold", "--dst", VIP, "--port",
         str(PORT), "--count", "40", "--seconds", "2"], cwd=str(REPO),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    busy = backends[1].IP()
    assert ctl.request("/v1/services/web/backends/%s" % busy, "PUT",
                       b'{"state": "draining"}')[0] == 200
    out, _ = holder.communicate(timeout=30)
    held = json.loads(out.decode().strip().splitlines()[-1])
    # each connection went where the fewest were per unit of weight: 10 and 30
    counts = {name: held["names"].count(name) for name in set(held["names"])}
    assert abs(counts.get(backends[1].name, 0) - 30) <= 1, counts
    assert not held["broken"], "draining keeps established connections"
    # once its connections have closed the drained backend leaves the pool
    assert wait_until(lambda: busy not in states(ctl), 10), states(ctl)
    removed = [e for e in ctl.get("/v1/events") if e["event"] == "backend_removed"]
    assert removed and removed[-1]["ip"] == busy
    assert removed[-1]["reason"] == "connections ended"
    result = connect(net.hosts[3], 20)
    assert result["answers"] == {backends[0].name: 20}, result


def test_a_backend_whose_link_is_cut_is_marked_down_and_avoided(service):
    ctl, net, backends, _ = service
    cut = backends[1]  # the weight-3 backend
    switch = cut.defaultIntf().link.intf2.node
    cut_at = time.monotonic()
    net.configLinkStatus(cut.name, switch.name, "down")
    assert wait_until(lambda: states(ctl)[cut.IP()] == "down", 3), states(ctl)
    assert time.monotonic() - cut_at <= 1.5  # 3 silent probes, 200 ms apart
    result = connect(net.hosts[3], 50)
    assert (result["answers"], result["failed"]) == ({backends[0].name: 50}, 0), result
    net.configLinkStatus(cut.name, switch.name, "up")
    assert wait_until(lambda: states(ctl)[cut.IP()] == "up", 5), states(ctl)


def test_an_overloaded_least_conn_backend_is_left_with_no_phantom_connections(service):
    """Clients that give up on an overloaded backend close connections the backend
    answers later; the segments that follow (their RSTs, late ACKs) come after the
    connection's entry has gone with its FIN.  They must not be placed as new
    connections: each would be counted as a request and learned as a connection open
    for the idle timeout (60 s), holding up a drain."""
    ctl, net, backends, servers = service
    slow = backends[0]
    servers[slow.name].kill()
    servers[slow.name].wait()
    servers[slow.name] = slow.popen(  # 20 requests/s
        [sys.executable, "-m", "sdn_app.lab.service_load", "serve", "--port", str(PORT),
         "--name", slow.name, "--workers", "1", "--delay-ms", "50"], cwd=str(REPO),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert ctl.request("/v1/services/web", "DELETE")[0] == 200
    body = {"name": "web", "vip": VIP, "port": PORT, "protocol": "tcp",
            "scheduler": "least_conn", "backends": [{"ip": slow.IP()}]}
    assert ctl.request("/v1/services", "POST", json.dumps(body).encode())[0] == 201
    assert wait_until(lambda: set(states(ctl).values()) == {"up"}, 5)
    proc = net.hosts[2].popen(
        [sys.executable, "-m", "sdn_app.lab.service_load", "arrivals", "--dst", VIP,
         "--port", str(PORT), "--rate", "100", "--seconds", "3", "--timeout", "1"],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out, _ = proc.communicate(timeout=30)
    result = json.loads(out.decode().strip().splitlines()[-1])
    attempts = sum(result["answers"].values()) + result["failed"]
    assert result["failed"] > 50, "the backend was overloaded: %s" % result

    def open_connections():
        return ctl.get("/v1/services/web")["backends"][0]["active_connections"]
    assert wait_until(lambda: open_connections() == 0, 10), open_connections()
    time.sleep(2.0)  # late segments keep coming while the backend works off its queue
    described = ctl.get("/v1/services/web")
    assert described["backends"][0]["active_connections"] == 0
    events = [e for e in ctl.get("/v1/events") if e["event"] != "host_learned"]
    assert described["controller_placements"] == attempts, ("one per connection", events)
