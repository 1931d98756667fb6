"""Hostile hosts on the real stack (issue 14): a host that sends from thousands of
made-up source MACs must not fill the host table, and everyone else keeps working."""

import sys
import textwrap
import time

from sdn_app.lab.emulation import emulated_network, ping_pairs, wait_converged, wait_until

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
