"""A service's pool that scales itself on the real stack: held connections through the
VIP make the controller start a standby backend's server (the lab actuator, a real
process in a Mininet host), which takes connections once its health check passes; when
the load ends the pool drains it and stops it, and no connection breaks."""

import contextlib
import json
import re
import subprocess
import sys
import time

from sdn_app.lab.emulation import (
    REPO,
    ControllerProcess,
    emulated_network,
    ping_pairs,
    wait_converged,
    wait_until,
)

SPEC = "leafspine,2,3,2"
VIP, PORT = "10.0.0.100", 8000
AGENT_PORT = 9100


def hold(host, count, seconds):
    return host.popen([sys.executable, "-m", "sdn_app.lab.service_load", "hold", "--dst",
                       VIP, "--port", str(PORT), "--count", str(count), "--seconds",
                       str(seconds)], cwd=str(REPO), stdout=subprocess.PIPE,
                      stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def scaled_web(tmp_path, scaling: dict, health=None, serve_args=()):
    """A service "web" with one backend (the first host, its server started here) and
    the second host on standby, under ``scaling``; yields (ctl, net, first, standby,
    backends() -> {ip: state})."""
    command = "%s -m sdn_app.lab.actuator" % sys.executable
    if serve_args:
        command += ' --serve-args="%s"' % " ".join(serve_args)
    with ControllerProcess(settings={"scaling_command": command},
                           log_path=tmp_path / "controller.log") as ctl, \
            emulated_network(SPEC, ctl.of_port) as net:
        wait_converged(ctl, net)
        assert not ping_pairs(net)[1]
        first, standby = net.hosts[0], net.hosts[1]
        server = first.popen([sys.executable, "-m", "sdn_app.lab.service_load", "serve",
                              "--port", str(PORT), "--name", first.name, *serve_args],
                             cwd=str(REPO))
        body = {"name": "web", "vip": VIP, "port": PORT, "protocol": "tcp",
                "backends": [{"ip": first.IP()}],
                "scaling": dict(scaling, standby=[{"ip": standby.IP()}])}
        if health:
            body["health"] = health
        status, answer = ctl.request("/v1/services", "POST", json.dumps(body).encode())
        assert status == 201, answer

        def backends():
            return {b["ip"]: b["state"] for b in ctl.get("/v1/services/web")["backends"]}
        try:
            assert wait_until(lambda: backends() == {first.IP(): "up"}, 5), backends()
            yield ctl, net, first, standby, backends
        finally:
            server.kill()
            server.wait()
            subprocess.run([sys.executable, "-m", "sdn_app.lab.actuator", "stop", "web",
                            standby.IP(), str(PORT)], check=False)
        assert ctl.alive(), ctl.log_tail()


def test_load_grows_the_pool_and_its_end_shrinks_it_without_breaking_anyone(tmp_path):
    scaling = {"policy": "reactive", "target": 20, "min_backends": 1, "max_backends": 2,
               "hold_s": 0, "scale_down_window_s": 2}
    with scaled_web(tmp_path, scaling) as (ctl, net, first, standby, backends):
        crowd = hold(net.hosts[2], 30, 5)  # 30 connections, 20 per backend wanted
        assert wait_until(lambda: backends().get(standby.IP()) == "up", 10), \
            (backends(), ctl.log_tail())
        kinds = [e["event"] for e in ctl.get("/v1/events")]
        assert "scale" in kinds and "scaling_start" in kinds
        assert kinds.index("backend_added") < kinds.index("backend_up", kinds.index(
            "backend_added")), "added first, serving once its check passed"
        time.sleep(0.5)  # its slots reach the switches
        late = hold(net.hosts[3], 12, 9)  # spread over both, held past the crowd
        crowd_result = json.loads(crowd.communicate(timeout=30)[0].decode()
                                  .strip().splitlines()[-1])
        assert not crowd_result["broken"], crowd_result
        # the crowd gone, 12 connections need one backend: the started one drains
        assert wait_until(lambda: backends().get(standby.IP()) == "draining", 8), \
            backends()
        late_result = json.loads(late.communicate(timeout=30)[0].decode()
                                 .strip().splitlines()[-1])
        assert standby.name in late_result["names"], late_result
        assert not late_result["broken"], "draining kept its connections"
        assert wait_until(lambda: standby.IP() not in backends(), 10), backends()
        assert wait_until(lambda: "scaling_stop" in [
            e["event"] for e in ctl.get("/v1/events")], 5)
        assert wait_until(lambda: not standby.cmd(
            "ss -ltn 'sport = :%d' | tail -n +2" % PORT).strip(), 5), \
            "the actuator stopped the server it started"
        scaling = ctl.get("/v1/services/web/scaling")
        assert [d["size"] for d in scaling["decisions"]] == [2, 1], scaling


def test_a_pool_sized_by_its_backends_own_load_reports(tmp_path):
    """metric "reported": each server's load agent answers the health check's question
    with the connections it has open; 30 held on the one backend ask for two."""
    scaling = {"policy": "reactive", "metric": "reported", "target": 20,
               "min_backends": 1, "max_backends": 2, "hold_s": 0,
               "scale_down_window_s": 2}
    health = {"agent_port": AGENT_PORT}
    with scaled_web(tmp_path, scaling, health, ("--agent-port", str(AGENT_PORT))) as (
            ctl, net, first, standby, backends):
        crowd = hold(net.hosts[2], 30, 4)

        def reported():
            return {b["ip"]: b["reported_load"]
                    for b in ctl.get("/v1/services/web")["backends"]}
        assert wait_until(lambda: reported()[first.IP()] == 30, 5), reported()
        assert wait_until(lambda: backends().get(standby.IP()) == "up", 10), backends()
        # The pool grows on the first report over the target: the 30 connections open
        # over a moment, so that report may come while they still are (22 was seen).
        decision = ctl.get("/v1/services/web/scaling")["decisions"][0]
        load = re.match(r"load ([\d.]+),", decision["reason"])
        assert decision["size"] == 2 and load and 20 < float(load.group(1)) <= 30, decision
        assert wait_until(lambda: reported().get(standby.IP()) == 0, 5), \
            "the started server's agent answers too"
        assert not json.loads(crowd.communicate(timeout=30)[0].decode().strip()
                              .splitlines()[-1])["broken"]
        assert wait_until(lambda: reported()[first.IP()] == 0, 5)
        assert wait_until(lambda: standby.IP() not in backends(), 10), backends()
