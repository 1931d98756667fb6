"""Hostile hosts and stale state on the real stack (issue 14): a host that sends from
thousands of made-up source MACs must not fill the host table, and everyone else keeps
working; switches of a network that is gone do not stay in the model."""

import collections
import http.client
import json
import subprocess
import sys
import textwrap
import time

import rest_fuzz
from hypothesis import HealthCheck, given, settings

from sdn_app.core.pipeline import port_meter_id
from sdn_app.lab.emulation import (
    ControllerProcess,
    emulated_network,
    flow_lines,
    host_port,
    ovs_ofctl,
    ping_pairs,
    reported_topology,
    wait_applied,
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


def run_script(host, tmp_path, code: str, *args) -> str:
    """Run Python ``code`` in a Mininet host from a file (a multi-line ``-c`` would be
    split into lines by the host's shell); its output."""
    script = tmp_path / "script.py"
    script.write_text(code)
    return host.cmd(" ".join([sys.executable, str(script), *map(str, args)]))


def test_a_flood_of_source_macs_is_capped_and_reported(controller, tmp_path):
    with emulated_network("leafspine,2,2,2", controller.of_port) as net:
        wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        attacker = net.hosts[0]
        before = len(controller.get("/v1/hosts"))
        run_script(attacker, tmp_path, FLOOD, attacker.defaultIntf().name, 3000)

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


# Seeded garbage from a host: truncated and corrupted LLDP, ARP, IPv4 (TCP/UDP/ICMP),
# VLAN-tagged and jumbo frames, to a VIP-less network's broadcast and unicast MACs
FUZZ = textwrap.dedent("""
    import random, socket, sys
    rng = random.Random(int(sys.argv[3]))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((sys.argv[1], 0))
    src = bytes.fromhex(sys.argv[2].replace(":", ""))
    dsts = [b"\\xff" * 6, b"\\x01\\x80\\xc2\\x00\\x00\\x0e", bytes(5) + b"\\x02"]
    types = [b"\\x88\\xcc", b"\\x08\\x06", b"\\x08\\x00", b"\\x81\\x00", b"\\x86\\xdd"]
    def body(kind):
        if kind == b"\\x08\\x00":  # an IPv4 header with random fields, then junk
            head = bytearray(rng.randbytes(20))
            head[0] = 0x40 | rng.randrange(16)
            head[9] = rng.choice([1, 6, 17, rng.randrange(256)])
            return bytes(head) + rng.randbytes(rng.randrange(0, 60))
        if kind == b"\\x81\\x00":  # a VLAN tag over another kind
            return rng.randbytes(2) + rng.choice(types) + rng.randbytes(rng.randrange(40))
        return rng.randbytes(rng.choice([0, 1, 3, 7, 20, 28, 60, 200]))
    sent = 0
    for i in range(int(sys.argv[4])):
        kind = rng.choice(types)
        frame = rng.choice(dsts) + src + kind + body(kind)
        if i % 50 == 0:
            frame += bytes(rng.choice([1600, 8900]))  # jumbo
        try:
            sock.send(frame)
            sent += 1
        except OSError:
            pass  # longer than the interface's MTU
    print(sent)
""")


def test_malformed_frames_from_a_host_neither_crash_nor_poison_the_model(controller,
                                                                        tmp_path):
    with emulated_network("leafspine,2,2,2", controller.of_port) as net:
        expected = wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        fuzzer = net.hosts[0]
        out = run_script(fuzzer, tmp_path, FUZZ, fuzzer.defaultIntf().name, fuzzer.MAC(),
                         11, 3000)
        assert int(out.strip().splitlines()[-1]) > 2500
        time.sleep(2.0)  # the packet-ins it caused
        assert controller.alive()
        got = reported_topology(controller.get("/v1/topology"))
        assert got["switches"] == expected["switches"]
        assert got["links"] == expected["links"], "no link made up from garbage LLDP"
        assert not ping_pairs(net)[1]


# A wormhole: each of two hosts captures the LLDP probes the controller sends out of
# its port and relays them over UDP through the network to the other, which writes them
# out of its own port, live (no delay beyond the relay's own), for argv[5] seconds.
RELAY = textwrap.dedent("""
    import select, socket, sys, time
    intf, peer, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88CC))
    raw.bind((intf, 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))
    captured = relayed = 0
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([raw, udp], [], [], 0.1)
        if raw in ready:
            frame, addr = raw.recvfrom(2048)
            if addr[2] != socket.PACKET_OUTGOING:
                udp.sendto(frame, (peer, port))
                captured += 1
        if udp in ready:
            raw.send(udp.recv(2048))
            relayed += 1
    print(captured, relayed)
""")


def test_hosts_relaying_our_probes_make_no_link(controller, tmp_path):
    """Topology integrity (TopoGuard's link fabrication): the relayed probes are ours,
    signed and fresh, but they come in at ports that carried host traffic."""
    with emulated_network("leafspine,2,2,2", controller.of_port) as net:
        expected = wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        a, b = net.hosts[0], net.hosts[-1]

        def attachment(host):  # (dpid, port) as events name them
            switch, port_no = host_port(host)
            return "%016x" % int(net[switch].dpid, 16), port_no
        assert attachment(a)[0] != attachment(b)[0], "on two different leaves"
        for host, peer in ((a, b), (b, a)):
            script = tmp_path / ("relay-%s.py" % host.name)
            script.write_text(RELAY)
            host.sendCmd(" ".join([sys.executable, str(script), host.defaultIntf().name,
                                   peer.IP(), "47000", "4"]))
        counts = [host.waitOutput().split() for host in (a, b)]
        assert all(int(relayed) >= 1 for _, relayed in counts), counts
        got = reported_topology(controller.get("/v1/topology"))
        assert got["links"] == expected["links"], "no wormhole between the two leaves"
        refused = [e for e in controller.get("/v1/events") if e["event"] == "link_refused"]
        ports = {(e["dpid"], e["port_no"]) for e in refused}
        assert ports == {attachment(a), attachment(b)}, refused
        assert all("has carried host traffic" in e["reason"] for e in refused)
        assert "link_refused at %s:%d" % attachment(a) in controller.log_path.read_text()
        assert not ping_pairs(net)[1]


# UDP from the host's own address to argv[3] made-up unicast MACs, as fast as it can:
# each misses the forwarding table (an unknown destination), a packet-in apiece
UNKNOWN_DESTINATIONS = textwrap.dedent("""
    import random, socket, struct, sys
    rng = random.Random(3)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((sys.argv[1], 0))
    src = bytes.fromhex(sys.argv[2].replace(":", ""))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 99]))
    for _ in range(int(sys.argv[3])):
        dst = bytes([0x02] + [rng.randrange(256) for _ in range(5)])
        sock.send(dst + src + b"\\x08\\x00" + ip + struct.pack("!HHHH", 9, 9, 8, 0))
""")


def test_a_host_flooding_the_controller_gets_its_switchs_packet_in_rate(tmp_path):
    rate, sent = 100, 6000
    with ControllerProcess(settings={"packet_in_rate": rate, "packet_in_burst": rate},
                           log_path=tmp_path / "controller.log") as ctl:
        with emulated_network("leafspine,2,2,2", ctl.of_port) as net:
            wait_converged(ctl, net)
            assert not ping_pairs(net)[1]
            attacker = net.hosts[0]
            switch = net[host_port(attacker)[0]]
            meters = ovs_ofctl("dump-meters", switch.name)
            assert "meter=1 pktps burst stats" in meters and "rate=%d" % rate in meters
            before = ctl.get("/v1/policy")["packet_ins"]
            started = time.monotonic()
            run_script(attacker, tmp_path, UNKNOWN_DESTINATIONS,
                       attacker.defaultIntf().name, attacker.MAC(), sent)
            took = time.monotonic() - started

            def dropped():
                return [e for e in ctl.get("/v1/events")
                        if e["event"] == "packet_ins_dropped"]
            assert wait_until(dropped, 10), "the drops are reported"
            assert dropped()[0]["dpid"] == "%016x" % int(switch.dpid, 16)
            assert "packet_in_rate (%d/s)" % rate in dropped()[0]["reason"]
            got = ctl.get("/v1/policy")["packet_ins"] - before
            # the meter's burst and rate over the flood, and every switch's own LLDP
            # and ARP meanwhile, with room to spare: far below what was sent
            assert got < rate * (took + 3) + 40 * len(net.switches), (got, took)
            assert got < sent / 3, (got, sent)
            assert not ping_pairs(net, net.hosts[1:])[1]
        assert ctl.alive()


def test_a_flooding_port_leaves_the_other_ports_of_its_switch_their_share(tmp_path):
    """A host flooding unknown destinations gets its port's packet-in rate; a neighbour
    on the same switch whose ARP cache was just flushed still gets its ARP answered
    and reaches a host on another switch (with one meter per switch, the flood took
    all of the switch's rate and the neighbour's ARP requests were dropped)."""
    rate, port_rate = 100, 20
    with ControllerProcess(settings={"packet_in_rate": rate, "packet_in_burst": rate,
                                     "packet_in_port_rate": port_rate,
                                     "packet_in_port_burst": port_rate},
                           log_path=tmp_path / "controller.log") as ctl:
        with emulated_network("leafspine,2,2,2", ctl.of_port) as net:
            wait_converged(ctl, net)
            assert not ping_pairs(net)[1]
            attacker = net.hosts[0]
            leaf, attacker_port = host_port(attacker)
            neighbour = next(h for h in net.hosts[1:] if host_port(h)[0] == leaf)
            far = next(h for h in net.hosts if host_port(h)[0] != leaf)
            meters = ovs_ofctl("dump-meters", net[leaf].name)
            assert "meter=%d pktps burst" % port_meter_id(attacker_port) in meters
            assert "rate=%d" % port_rate in meters
            script = tmp_path / "flood.py"
            script.write_text(UNKNOWN_DESTINATIONS)
            flood = attacker.popen([sys.executable, str(script),
                                    attacker.defaultIntf().name, attacker.MAC(), str(10**8)])
            try:
                time.sleep(2.0)  # the flood is on, and both meters full of it
                assert flood.poll() is None, "the flood still runs"
                neighbour.cmd("ip neigh flush all")
                out = neighbour.cmd("ping -c 5 -i 0.2 -W 1 %s" % far.IP())
                assert flood.poll() is None, "the flood ran throughout"
            finally:
                flood.terminate()
                flood.wait()
            assert " 0% packet loss" in out, out

            def dropped_at_port():
                return [e for e in ctl.get("/v1/events") if e["event"] == "packet_ins_dropped"
                        and e.get("port_no") == attacker_port]
            assert wait_until(dropped_at_port, 10), "the port's drops are reported"
            assert "packet_in_port_rate (%d/s)" % port_rate in dropped_at_port()[0]["reason"]
            assert not ping_pairs(net, net.hosts[1:])[1]
        assert ctl.alive()


def test_fuzzed_rest_requests_against_the_running_controller(controller):
    """The OpenAPI-driven fuzz of tests/rest_fuzz.py over real HTTP (Ryu's eventlet WSGI
    server in front of our handlers): no answer >= 500, every answer JSON, a refused
    request changes neither the network model nor the services, and the network still
    works afterwards."""
    service = {"name": "web", "vip": "10.0.0.100", "port": 80, "protocol": "tcp",
               "backends": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}]}
    with emulated_network("leafspine,2,2,2", controller.of_port) as net:
        wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        assert controller.request("/v1/services", "POST",
                                  json.dumps(service).encode())[0] == 201
        hosts = controller.get("/v1/hosts")
        known = {"dpid": [s["dpid"] for s in controller.get("/v1/switches")],
                 "port_no": sorted({str(h["port_no"]) for h in hosts}),
                 "key": [hosts[0]["mac"], *hosts[0]["ipv4"]], "name": ["web"],
                 "ip": ["10.0.0.2", "10.0.0.3"]}

        def model():
            services = [(s["name"], s["vip"], [(b["ip"], b["weight"], b["role"])
                                               for b in s["backends"]])
                        for s in controller.get("/v1/services")]
            return (reported_topology(controller.get("/v1/topology")), services,
                    controller.get("/v1/policy")["policy"])
        answers = collections.Counter()

        @settings(max_examples=300, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(request=rest_fuzz.requests(known))
        def fuzz(request):
            method, path, body, headers = request
            before = model()
            conn = http.client.HTTPConnection("127.0.0.1", controller.rest_port, timeout=20)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            finally:
                conn.close()
            answers[resp.status // 100] += 1
            assert resp.status < 500, (method, path, body, raw)
            if method != "HEAD":
                assert resp.getheader("Content-Type", "").startswith("application/json"), \
                    (method, path, raw)
                answer = json.loads(raw)
                if resp.status >= 400:
                    assert isinstance(answer, dict) and answer.get("error"), answer
                    assert model() == before, ("a refused request changed state",
                                               method, path, body)
        fuzz()
        assert answers[2] and answers[4], answers
        assert controller.alive()
        assert not ping_pairs(net)[1], "the network still works"


def test_an_entry_a_full_table_refused_is_reported_and_sent_again(tmp_path):
    """A switch whose forwarding table is full refuses a new host's entry: the
    controller names it (a mod_refused event), no longer takes it to be installed, and
    sends it again, so once the table has room it is there."""
    with ControllerProcess(log_path=tmp_path / "controller.log") as ctl:
        with emulated_network("leafspine,2,2,2", ctl.of_port) as net:
            wait_converged(ctl, net)
            assert not ping_pairs(net)[1]
            assert wait_applied(ctl)
            mover, other = net.hosts[0], net.hosts[-1]
            leaf = net[host_port(other)[0]]
            # Full: the new MAC's entry does not fit even once the old one's is gone
            # (changing a MAC bounces the port, which forgets the host there).
            held = len(flow_lines(leaf.name, table=1))
            subprocess.run(["ovs-vsctl", "--", "--id=@t", "create", "Flow_Table",
                            "flow_limit=%d" % (held - 1), "overflow_policy=refuse", "--",
                            "set", "Bridge", leaf.name, "flow_tables:1=@t"], check=True)
            new_mac = "02:00:00:00:77:01"
            try:
                mover.setMAC(new_mac)
                mover.cmd("ping -c 2 -W 1 %s" % other.IP())  # learned under its new MAC

                def refused():
                    return [e for e in ctl.get("/v1/events") if e["event"] == "mod_refused"
                            and new_mac in e["item"]]
                assert wait_until(refused, 10), "the refusal is reported"
                assert refused()[0]["dpid"] == "%016x" % int(leaf.dpid, 16)
            finally:
                subprocess.run(["ovs-vsctl", "clear", "Bridge", leaf.name, "flow_tables"],
                               check=True)
            assert wait_until(lambda: any("dl_dst=%s" % new_mac in line
                                          for line in flow_lines(leaf.name)), 10), \
                "sent again once the table had room"
            for host in net.hosts:  # their caches still hold the mover's old MAC
                host.cmd("ip neigh flush all")
            assert not ping_pairs(net)[1]
        assert ctl.alive()
