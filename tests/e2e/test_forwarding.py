"""Forwarding on the real stack: Open vSwitch (userspace) + Mininet + ryu-manager."""

import time

import pytest

from sdn_app.core.settings import DEFAULT_COOKIE
from sdn_app.lab.emulation import (
    emulated_network,
    flow_lines,
    host_port,
    ping_pairs,
    port_packet_totals,
    reported_topology,
    wait_converged,
    wait_until,
)

COOKIE = "cookie=0x%x" % DEFAULT_COOKIE


@pytest.mark.parametrize("spec,protocols", [
    ("diamond", "OpenFlow13"),
    ("diamond", "OpenFlow15"),
    ("ring,5", "OpenFlow13"),
    ("fattree,4", "OpenFlow13"),
])
def test_all_pairs_reachable_and_topology_exact(controller, spec, protocols):
    with emulated_network(spec, controller.of_port, protocols) as net:
        expected = wait_converged(controller, net)
        sent, lost = ping_pairs(net)
        assert not lost, "%d of %d pings lost: %s\n%s" % (len(lost), sent, lost,
                                                           controller.log_tail())

        got = reported_topology(controller.get("/v1/topology"))
        assert got["switches"] == expected["switches"]
        assert got["links"] == expected["links"]
        assert got["hosts"] == expected["hosts"]

        with_hosts = {host_port(h)[0] for h in net.hosts}
        macs = {h.MAC() for h in net.hosts}
        destinations = len(with_hosts)
        for sw in net.switches:
            lines = flow_lines(sw.name, protocols)
            assert lines and all(COOKIE in line for line in lines), (sw.name, lines)
            # Label switching: every host's own MAC has an ingress entry where hosts
            # enter, and nowhere else; forwarding toward another switch is one masked
            # label entry per destination switch.
            table1 = [line for line in lines if "table=1," in line]
            own = {m for m in macs if any("dl_dst=%s," % m in line or "dl_dst=%s " % m in line
                                          for line in table1)}
            labels = [line for line in table1
                      if "dl_dst=0e:5d:" in line and "/ff:ff:ff:ff:00:00" in line]
            if sw.name in with_hosts:
                assert own == macs, (sw.name, sorted(macs - own))
                assert len(labels) == destinations - 1, (sw.name, labels)
            else:
                assert not own, (sw.name, sorted(own))
                assert len(labels) == destinations, (sw.name, labels)

        # No storm: once pings stop, ports carry only LLDP (1/s each way) and the hosts'
        # own background (IPv6 solicitations): a few packets/s, where a loop would put
        # thousands per second on every port.
        ports = sum(len(sw.ports) - 1 for sw in net.switches)
        before = port_packet_totals(net, protocols)
        time.sleep(3)
        growth = port_packet_totals(net, protocols) - before
        assert growth < ports * 10 * 3, "port counters grew by %d in 3 s" % growth


def test_host_move_is_followed(controller):
    with emulated_network("diamond,hosts=2", controller.of_port) as net:
        wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        h1 = net.get("h1")
        mac, ip = h1.MAC(), h1.IP()
        far = net.switches[-1]
        # Plug h1 into the far switch; its old port stays up (like a migrated VM).
        link = net.addLink(h1, far)
        far.attach(link.intf2)
        old = h1.defaultIntf()
        h1.cmd("ip addr flush dev %s; ip link set %s address 02:00:00:00:99:99" % (old, old))
        new = link.intf1
        h1.cmd("ip link set %s address %s; ip addr add %s/16 dev %s; ip link set %s up"
               % (new, mac, ip, new, new))
        h1.cmd("ip neigh flush all")
        new_port = far.ports[link.intf2]

        def moved():
            h1.cmd("ping -c1 -W1 %s" % net.get("h3").IP())
            host = controller.get("/v1/hosts/%s" % mac)
            return (host["port_no"] == new_port and int(host["dpid"], 16) == int(far.dpid, 16))
        assert wait_until(moved, 10, interval=0.5), controller.get("/v1/hosts")
        others = [h for h in net.hosts if h is not h1]
        # Connectivity returns once the moved host's entries are in place everywhere.
        assert wait_until(lambda: not ping_pairs(net, [h1] + others)[1], 10), \
            ping_pairs(net, [h1] + others)[1]


def test_controller_restart_takes_over_its_flows(tmp_path):
    from sdn_app.lab.emulation import ControllerProcess, ovs_ofctl
    first = ControllerProcess(log_path=tmp_path / "first.log").start()
    try:
        with emulated_network("ring,4", first.of_port) as net:
            for sw in net.switches:  # reconnect quickly once the controller is back
                sw.vsctl("set controller %s max_backoff=1000" % sw.name)
            wait_converged(first, net)
            assert not ping_pairs(net)[1]
            first.stop()
            # Switches keep forwarding while no controller is connected.
            assert not ping_pairs(net)[1]
            s1 = net.switches[0].name
            stale = "00:00:00:00:ee:ee"
            ovs_ofctl("add-flow", s1, "cookie=0x%x,table=1,priority=100,dl_dst=%s,"
                      "actions=drop" % (DEFAULT_COOKIE, stale))
            ovs_ofctl("add-flow", s1, "cookie=0x77,table=5,priority=1,actions=drop")
            before = {line.split("actions=")[0].split("duration=")[1].split("s")[0]
                      for line in flow_lines(s1) if "dl_dst=00:00:00:00:00:01" in line}
            assert before
            second = ControllerProcess(log_path=tmp_path / "second.log",
                                       of_port=first.of_port).start()
            try:
                assert wait_until(lambda: stale not in "".join(flow_lines(s1)), 15), (
                    "stale flow with our cookie was not removed\n" + second.log_tail())
                lines = flow_lines(s1)
                assert any("cookie=0x77" in line for line in lines), "foreign flow kept"
                kept = [line for line in lines if "dl_dst=00:00:00:00:00:01" in line]
                age = float(kept[0].split("duration=")[1].split("s")[0])
                assert age >= float(min(before)), "entries were taken over, not re-added"
                wait_converged(second, net)
                assert not ping_pairs(net)[1]
                assert second.alive()
            finally:
                second.stop()
    finally:
        first.stop()
        first.workdir.cleanup()


def test_runs_beside_ryu_stock_apps(tmp_path):
    from sdn_app.lab.emulation import ControllerProcess
    with ControllerProcess(apps=("sdn_app.controller", "ryu.app.ofctl_rest"),
                           extra_args=("--observe-links",),
                           log_path=tmp_path / "c.log") as ctl, \
            emulated_network("diamond", ctl.of_port) as net:
        wait_converged(ctl, net)
        assert not ping_pairs(net)[1]
        dpids = ctl.get("/stats/switches")
        assert sorted(dpids) == sorted(int(sw.dpid, 16) for sw in net.switches)
        flows = ctl.get("/stats/flow/%d" % dpids[0])[str(dpids[0])]
        assert flows and all(f["cookie"] == DEFAULT_COOKIE for f in flows)


def test_bad_rest_input_never_hurts_the_controller(controller):
    with emulated_network("diamond", controller.of_port) as net:
        wait_converged(controller, net)
        for path in ("/v1/switches/xyz", "/v1/paths?src=%00&dst=1", "/v1/hosts/::",
                     "/v1/topology?format=" + "x" * 5000, "/v1/paths?src=a&dst=b&src=c"):
            status, body = controller.request(path)
            assert status in (400, 404) and "error" in body, (path, status, body)
        status, _ = controller.request("/v1/topology", method="POST", body=b"{bad json")
        assert status in (404, 405)
        assert not ping_pairs(net)[1]
