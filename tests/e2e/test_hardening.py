"""Hostile hosts and stale state on the real stack (issue 14): a host that sends from
thousands of made-up source MACs must not fill the host table, and everyone else keeps
working; switches of a network that is gone do not stay in the model."""

import sys
import textwrap
import time

from sdn_app.lab.emulation import (
    ControllerProcess,
    emulated_network,
    ping_pairs,
    wait_converged,
    wait_until,
)

# ARP requests from random unicast source MACs and addresses, out of the host's port
FLOOD = textwrap.dedent("""
    import random, socket, struct, sys
    rng = random.Random(7)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((sys.argv[1], 0))
    for _ in range(int(sys.argv[2])):
        mac = bytes([0x02] + [rng.randrange(256) for _ in range(5)])
        ip = bytes([10, 9, rng.randrange(256), rng.randrange(1, 255)])
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, ip, bytes(6),
                          bytes([10, 0, 0, 2]))
        sock.send(b"\\xff" * 6 + mac + b"\\x08\\x06" + arp)
""")


def test_a_flood_of_source_macs_is_capped_and_reported(controller):
    with emulated_network("leafspine,2,2,2", controller.of_port) as net:
        wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        attacker = net.hosts[0]
        before = len(controller.get("/v1/hosts"))
        attacker.cmd("%s -c '%s' %s 3000" % (sys.executable, FLOOD,
                                             attacker.defaultIntf().name))

        def refused():
            return [e for e in controller.get("/v1/events") if e["event"] == "host_refused"]
        assert wait_until(lambda: refused(), 10), "the cap is reported"
        time.sleep(1.0)  # the flood's last packet-ins
        hosts = controller.get("/v1/hosts")
        switch = refused()[0]["dpid"]
        on_port = [h for h in hosts if h["dpid"] == switch and
                   h["port_no"] == refused()[0]["port_no"]]
        assert len(on_port) <= 64, "max_hosts_per_port, 64 by default"
        assert len(hosts) <= before + 64
        assert "max_hosts_per_port" in refused()[0]["reason"]
        assert not ping_pairs(net, net.hosts[1:])[1], "the other hosts still reach each other"


def test_switches_of_a_network_torn_down_are_forgotten(tmp_path):
    """One controller kept running across Mininet runs of different topologies (which
    reuse dpids): each run finds a model of its own network only."""
    with ControllerProcess(settings={"switch_forget_after": 2},
                           log_path=tmp_path / "controller.log") as ctl:
        with emulated_network("ring,5", ctl.of_port) as net:
            wait_converged(ctl, net)
        assert wait_until(lambda: ctl.get("/v1/switches") == [], 10), \
            [s["dpid"] for s in ctl.get("/v1/switches")]
        forgotten = [e for e in ctl.get("/v1/events") if e["event"] == "switch_forgotten"]
        assert len(forgotten) == 5 and "disconnected for 2s" in forgotten[0]["reason"]
        assert ctl.get("/v1/hosts") == [] and ctl.get("/v1/links") == []
        with emulated_network("diamond", ctl.of_port) as net:
            expected = wait_converged(ctl, net)  # exactly its switches and links
            assert not ping_pairs(net)[1]
            assert len(ctl.get("/v1/switches")) == len(expected["switches"])
        assert ctl.alive()
