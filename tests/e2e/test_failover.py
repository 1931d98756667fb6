"""Link failure and repair on the real stack: cut each link of a path while a probe
stream runs; the switches divert traffic, the controller reroutes and reports it, and
the original path returns with the link."""

import signal
import subprocess
import time

import pytest

from sdn_app.lab.emulation import (
    emulated_network,
    flow_lines,
    ovs_ofctl,
    ping_pairs,
    probe_run,
    switch_by_dpid,
    wait_applied,
    wait_converged,
    wait_until,
)

# A behavioural bound, far above what protection achieves (see bench_failover.py for
# the measured figures) and far below a blackhole: the stream keeps flowing.
MAX_LOST = 300  # probes at 1 per ms


@pytest.mark.parametrize("spec", ["diamond", "ring,4"])
def test_every_link_of_a_path_can_fail_and_recover_under_a_probe_stream(controller, spec):
    with emulated_network(spec, controller.of_port) as net:
        wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        # The ping round taught the controller the hosts; the ingress switches get
        # their entries last (make-before-break), so wait for the plan to be sent.
        assert wait_applied(controller)
        src, dst = net.hosts[0], net.hosts[-1]
        query = "/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP())
        original = controller.get(query)["hops"]
        switches = [switch_by_dpid(net, hop["dpid"]) for hop in original]
        assert "type=ff" in ovs_ofctl("dump-groups", switches[0].name), "protection installed"
        for a, b in zip(switches, switches[1:], strict=False):
            since = controller.get("/v1/events")[-1]["seq"]
            cut = probe_run(src, dst, 2.5, event=lambda a=a, b=b: net.configLinkStatus(
                a.name, b.name, "down"))
            assert cut["lost"] <= MAX_LOST and cut["received"] > 0, (a.name, b.name, cut)
            links = controller.get("/v1/links")
            assert sum(lk["state"] == "down" for lk in links) == 2, "both directions down"
            assert not ping_pairs(net)[1], "all pairs reachable after the failure"
            events = controller.get("/v1/events?since=%d" % since)
            kinds = [e["event"] for e in events]
            assert "port_down" in kinds and "reconciled" in kinds, kinds
            assert controller.get(query)["hops"] != original, "rerouted around the cut"

            repair = probe_run(src, dst, 2.5, event=lambda a=a, b=b: net.configLinkStatus(
                a.name, b.name, "up"))
            assert repair["lost"] <= MAX_LOST, (a.name, b.name, repair)
            assert wait_until(lambda: controller.get(query)["hops"] == original, 5), \
                "the original path returns"
            assert all(lk["state"] == "up" for lk in controller.get("/v1/links"))
        assert not ping_pairs(net)[1]


def test_sampled_fat_tree_links_fail_without_losing_connectivity(controller):
    with emulated_network("fattree,4", controller.of_port) as net:
        wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        src, dst = net.get("h1"), net.get("h16")
        hops = controller.get("/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP()))["hops"]
        # an edge uplink and a core link of the path in use
        for i in (0, 2):
            a, b = (switch_by_dpid(net, hops[i]["dpid"]),
                    switch_by_dpid(net, hops[i + 1]["dpid"]))
            cut = probe_run(src, dst, 2.0, event=lambda a=a, b=b: net.configLinkStatus(
                a.name, b.name, "down"))
            assert cut["lost"] <= MAX_LOST, (a.name, b.name, cut)
            net.configLinkStatus(a.name, b.name, "up")
            time.sleep(1.0)
        assert not ping_pairs(net)[1]
        assert all("cookie=" in line for line in flow_lines(net.switches[0].name))


@pytest.mark.parametrize("protocols", ["OpenFlow13", "OpenFlow15"])
def test_switches_alone_turn_a_detour_back_through_its_ingress_port(tmp_path, protocols):
    """A ring cut one hop beyond the first switch: the switch before the cut must send
    traffic back the way it came (which OpenFlow forbids unless in_port is cleared).
    The controller is stopped first, so only the pre-installed backups can save it."""
    from sdn_app.lab.emulation import ControllerProcess
    ctl = ControllerProcess(log_path=tmp_path / "controller.log").start()
    try:
        with emulated_network("ring,5", ctl.of_port, protocols) as net:
            wait_converged(ctl, net)
            assert not ping_pairs(net)[1]
            src, dst = net.hosts[0], net.hosts[2]
            hops = ctl.get("/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP()))["hops"]
            assert len(hops) == 3, hops
            a, b = (switch_by_dpid(net, hop["dpid"]) for hop in hops[1:])
            ctl.stop()
            cut = probe_run(src, dst, 2.0, event=lambda: net.configLinkStatus(
                a.name, b.name, "down"))
            assert cut["lost"] <= MAX_LOST and cut["received"] > 1000, cut
    finally:
        ctl.stop()


def test_traffic_leaves_a_detour_for_the_new_path_without_loss(tmp_path):
    """The switches alone hold a cut (the controller is paused); when the controller
    comes back it moves the traffic off the detour, which turns back through the first
    switch, onto the other branch.  Packets still on the detour must find it in place."""
    from sdn_app.lab.emulation import ControllerProcess
    ctl = ControllerProcess(log_path=tmp_path / "controller.log").start()
    try:
        with emulated_network("diamond", ctl.of_port) as net:
            wait_converged(ctl, net)
            assert not ping_pairs(net)[1]
            src, dst = net.hosts[0], net.hosts[-1]
            path = ctl.get("/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP()))["hops"]
            middle, last = (switch_by_dpid(net, hop["dpid"]) for hop in path[1:3])
            since = ctl.get("/v1/events")[-1]["seq"]
            ctl.proc.send_signal(signal.SIGSTOP)
            try:
                net.configLinkStatus(middle.name, last.name, "down")
                time.sleep(0.5)  # the failover group has switched to the detour
                moved = probe_run(src, dst, 2.0,
                                  event=lambda: ctl.proc.send_signal(signal.SIGCONT))
            finally:
                ctl.proc.send_signal(signal.SIGCONT)
            assert moved["lost"] == 0 and moved["received"] == 2000, moved
            events = [e["event"] for e in ctl.get("/v1/events?since=%d" % since)]
            assert "port_down" in events and "reconciled" in events, events
            new_path = ctl.get("/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP()))["hops"]
            assert int(middle.dpid, 16) not in {int(hop["dpid"], 16) for hop in new_path}
    finally:
        ctl.stop()


def test_a_whole_switch_failing_is_routed_around(controller):
    """Every port of a transit switch goes down at once (a switch dying): the stream
    keeps flowing and the controller's paths leave the switch out.  (That the switches
    alone divert around it is proven in tests/test_protection.py.)"""
    with emulated_network("ring,5", controller.of_port) as net:
        wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        src, dst = net.hosts[0], net.hosts[2]
        hops = controller.get("/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP()))["hops"]
        assert len(hops) == 3, hops
        dying = switch_by_dpid(net, hops[1]["dpid"])
        ports = [intf.name for intf in dying.intfList() if intf.name != "lo"]
        batch = "".join("link set dev %s down\n" % name for name in ports)
        result = probe_run(src, dst, 2.0, event=lambda: subprocess.run(
            ["ip", "-batch", "-"], input=batch.encode(), check=True))
        assert result["lost"] <= MAX_LOST and result["received"] > 1000, result
        hops = controller.get("/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP()))["hops"]
        assert int(dying.dpid, 16) not in {int(hop["dpid"], 16) for hop in hops}, hops


def test_bfd_catches_a_silent_failure_that_keeps_carrier(controller):
    """Carrier stays up while the link stops delivering: only BFD can see that in time.
    Without it the stream would blackhole until LLDP expiry (3.5 s, the rest of the run)."""
    with emulated_network("diamond", controller.of_port, bfd_ms=100) as net:
        wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        src, dst = net.hosts[0], net.hosts[-1]
        hops = controller.get("/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP()))["hops"]
        a, b = switch_by_dpid(net, hops[0]["dpid"]), switch_by_dpid(net, hops[1]["dpid"])
        intf = a.connectionsTo(b)[0][0]

        def silence():
            # A token bucket smaller than any frame drops every frame, BFD's included,
            # while the link stays up.  (An 8 bit/s HTB class let BFD's small frames
            # through: BFD stayed up and the data blackholed.)
            a.cmd("tc qdisc add dev %s root tbf rate 8bit burst 32 limit 1" % intf)
        result = probe_run(src, dst, 3.0, event=silence)
        # BFD (3 x 100 ms) takes the port's LIVE state down, the FAST_FAILOVER group
        # moves to its backup: ~300 probes lost, not the rest of the stream.
        assert result["lost"] < 1000, result
        assert result["received"] > 0
