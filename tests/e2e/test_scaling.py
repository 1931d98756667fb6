"""A service's pool that scales itself on the real stack: held connections through the
VIP make the controller start a standby backend's server (the lab actuator, a real
process in a Mininet host), which takes connections once its health check passes; when
the load ends the pool drains it and stops it, and no connection breaks."""

import json
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


def hold(host, count, seconds):
    return host.popen([sys.executable, "-m", "sdn_app.lab.service_load", "hold", "--dst",
                       VIP, "--port", str(PORT), "--count", str(count), "--seconds",
                       str(seconds)], cwd=str(REPO), stdout=subprocess.PIPE,
                      stderr=subprocess.DEVNULL)


def test_load_grows_the_pool_and_its_end_shrinks_it_without_breaking_anyone(tmp_path):
    settings = {"scaling_command": "%s -m sdn_app.lab.actuator" % sys.executable}
    with ControllerProcess(settings=settings, log_path=tmp_path / "controller.log") as ctl, \
            emulated_network(SPEC, ctl.of_port) as net:
        wait_converged(ctl, net)
        assert not ping_pairs(net)[1]
        first, standby = net.hosts[0], net.hosts[1]
        server = first.popen([sys.executable, "-m", "sdn_app.lab.service_load", "serve",
                              "--port", str(PORT), "--name", first.name], cwd=str(REPO))
        body = {"name": "web", "vip": VIP, "port": PORT, "protocol": "tcp",
                "backends": [{"ip": first.IP()}],
                "scaling": {"policy": "reactive", "target": 20, "min_backends": 1,
                            "max_backends": 2, "hold_s": 0, "scale_down_window_s": 2,
                            "standby": [{"ip": standby.IP()}]}}
        status, answer = ctl.request("/v1/services", "POST", json.dumps(body).encode())
        assert status == 201, answer

        def backends():
            return {b["ip"]: b["state"] for b in ctl.get("/v1/services/web")["backends"]}
        try:
            assert wait_until(lambda: backends() == {first.IP(): "up"}, 5), backends()
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
        finally:
            server.kill()
            server.wait()
            subprocess.run([sys.executable, "-m", "sdn_app.lab.actuator", "stop", "web",
                            standby.IP(), str(PORT)], check=False)
        assert ctl.alive(), ctl.log_tail()
