"""The services' Ryu-layer runner (ryuapp/services.py) without a switch: when probes go
out, what they look like, how answers, refusals and silence move a backend's state,
least_conn placement and the connection bookkeeping.  Frames are built and read with
Ryu's packet library, as on the wire."""

import logging

from ryu.lib.packet import arp, ethernet, icmp, ipv4, packet, tcp, udp
from shipped_topologies import model_of

from sdn_app.core.services import ServiceTable, parse_service, vip_mac
from sdn_app.ryuapp.services import ServiceRunner, probe_port

VIP = "10.0.0.100"


class Runner:
    """A ServiceRunner on leafspine,2,2,2 with one service, recording what it sends."""

    def __init__(self, **service):
        self.topo, _ = model_of("leafspine,2,2,2")
        self.table = ServiceTable()
        spec = {"name": "web", "vip": VIP, "port": 80, "protocol": "tcp",
                "backends": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                "health": {"interval_ms": 100, "timeout_ms": 50, "rise": 2, "fall": 2}}
        spec.update(service)
        self.service = self.table.add(parse_service(spec))
        self.sent, self.flooded, self.events, self.changes = [], [], [], []
        self.runner = ServiceRunner(
            self.table, self.topo, lambda dpid, port, frame: self.sent.append(
                (dpid, port, packet.Packet(frame))),
            lambda frame: self.flooded.append(packet.Packet(frame)),
            lambda: self.changes.append(1),
            lambda kind, **details: self.events.append((kind, details)),
            logging.getLogger("test"))

    def probes(self):
        out, self.sent = self.sent, []
        return out

    def state(self, ip):
        return self.service.backends[ip].state

    def answer(self, probe, flags=tcp.TCP_SYN | tcp.TCP_ACK, now=0.0):
        """The backend's reply to a TCP probe."""
        _, _, pkt = probe
        eth, ip, seg = (pkt.get_protocol(p) for p in (ethernet.ethernet, ipv4.ipv4, tcp.tcp))
        reply = packet.Packet()
        reply.add_protocol(ethernet.ethernet(dst=eth.src, src=eth.dst, ethertype=0x0800))
        reply.add_protocol(ipv4.ipv4(src=ip.dst, dst=ip.src, proto=6))
        reply.add_protocol(tcp.tcp(src_port=seg.dst_port, dst_port=seg.src_port, seq=7,
                                   ack=seg.seq + 1, bits=flags))
        reply.serialize()
        return self.runner.answer(packet.Packet(bytes(reply.data)), now)


def test_probes_go_from_the_vip_to_each_backend_at_its_interval():
    r = Runner()
    r.runner.tick(0.0)
    probes = r.probes()
    assert sorted((d, p) for d, p, _ in probes) == sorted(
        (r.topo.host_by_ip(ip).dpid, r.topo.host_by_ip(ip).port)
        for ip in ("10.0.0.1", "10.0.0.2"))
    for _, _, pkt in probes:
        eth, ip, seg = (pkt.get_protocol(p) for p in (ethernet.ethernet, ipv4.ipv4, tcp.tcp))
        assert (eth.src, ip.src, ip.dst in ("10.0.0.1", "10.0.0.2")) == (vip_mac(VIP), VIP,
                                                                           True)
        assert seg.bits == tcp.TCP_SYN and seg.dst_port == 80
        backend = r.service.backends[ip.dst]
        assert seg.src_port == probe_port(backend.backend_id, 80)
    r.runner.tick(0.05)
    assert r.probes() == [], "not again before the interval"
    r.runner.tick(0.1)
    assert len(r.probes()) == 2


def test_answers_bring_a_backend_up_and_refusals_or_silence_take_it_down():
    r = Runner()
    for t in (0.0, 0.101):
        r.runner.tick(t)
        for probe in r.probes():
            assert r.answer(probe, now=t)
        resets = [p for _, _, p in r.probes() if p.get_protocol(tcp.tcp).bits & tcp.TCP_RST]
        assert len(resets) == 2, "each half-open check connection is reset"
    assert {r.state(ip) for ip in ("10.0.0.1", "10.0.0.2")} == {"up"}
    assert [k for k, _ in r.events] == ["backend_up", "backend_up"] and r.changes
    # 10.0.0.1 refuses (RST) twice: down at once on the second; 10.0.0.2 goes silent
    for t in (0.202, 0.303):
        r.runner.tick(t)
        for probe in r.probes():
            if probe[2].get_protocol(ipv4.ipv4).dst == "10.0.0.1":
                assert r.answer(probe, flags=tcp.TCP_RST | tcp.TCP_ACK, now=t)
    assert r.state("10.0.0.1") == "down" and r.state("10.0.0.2") == "up"
    r.runner.tick(0.36)  # the second silent probe times out (after 50 ms)
    assert r.state("10.0.0.2") == "down"
    downs = [d for k, d in r.events if k == "backend_down"]
    assert [(d["ip"], d["reason"]) for d in downs] == [("10.0.0.1", "RST"),
                                                        ("10.0.0.2", "no answer")]


def test_a_backend_not_located_is_asked_for_and_counts_as_a_miss():
    r = Runner(backends=[{"ip": "10.0.0.77"}])
    r.runner.tick(0.0)
    asked = r.flooded[0].get_protocol(arp.arp)
    assert (asked.src_ip, asked.dst_ip, asked.src_mac) == (VIP, "10.0.0.77", vip_mac(VIP))
    assert r.service.backends["10.0.0.77"].health.checks == 1 and not r.sent


def test_udp_checks_read_answers_and_port_unreachable():
    r = Runner(protocol="udp", health={"interval_ms": 100, "rise": 1, "fall": 1})
    r.runner.tick(0.0)
    for _, _, pkt in r.probes():
        ip, dgram = pkt.get_protocol(ipv4.ipv4), pkt.get_protocol(udp.udp)
        reply = packet.Packet()
        reply.add_protocol(ethernet.ethernet(src="00:00:00:00:00:01", dst=vip_mac(VIP)))
        if ip.dst == "10.0.0.1":  # answers
            reply.add_protocol(ipv4.ipv4(src=ip.dst, dst=VIP, proto=17))
            reply.add_protocol(udp.udp(src_port=80, dst_port=dgram.src_port))
            reply.add_protocol(b"ok")
        else:  # port unreachable, quoting the probe
            quoted = pkt.protocols[1].serialize(b"", None) + dgram.serialize(b"", ip)
            reply.add_protocol(ipv4.ipv4(src=ip.dst, dst=VIP, proto=1))
            reply.add_protocol(icmp.icmp(type_=icmp.ICMP_DEST_UNREACH, code=3,
                                         data=icmp.dest_unreach(data=bytes(quoted))))
        reply.serialize()
        assert r.runner.answer(packet.Packet(bytes(reply.data)), 0.01)
    assert r.state("10.0.0.1") == "up" and r.state("10.0.0.2") == "down"
    assert [(k, d["reason"]) for k, d in r.events] == [("backend_up", "UDP answer")]
    assert r.service.backends["10.0.0.2"].health.checks == 1, "the refusal counted"


def agent_reply(question, text: bytes):
    """A load agent's answer to ``question`` (the controller's datagram)."""
    _, _, pkt = question
    ip, dgram = pkt.get_protocol(ipv4.ipv4), pkt.get_protocol(udp.udp)
    reply = packet.Packet()
    reply.add_protocol(ethernet.ethernet(src="00:00:00:00:00:01", dst=vip_mac(VIP)))
    reply.add_protocol(ipv4.ipv4(src=ip.dst, dst=VIP, proto=17))
    reply.add_protocol(udp.udp(src_port=dgram.dst_port, dst_port=dgram.src_port))
    reply.add_protocol(text)
    reply.serialize()
    return packet.Packet(bytes(reply.data))


def test_load_agents_are_asked_with_each_check_and_their_figures_age_out():
    r = Runner(health={"interval_ms": 100, "timeout_ms": 50, "rise": 1, "fall": 2,
                       "agent_port": 9100},
               scaling={"policy": "reactive", "metric": "reported", "max_backends": 2})
    r.runner.tick(0.0)
    questions = [p for p in r.probes() if p[2].get_protocol(udp.udp)]
    assert sorted(p[2].get_protocol(ipv4.ipv4).dst for p in questions) == [
        "10.0.0.1", "10.0.0.2"]
    assert all(p[2].get_protocol(udp.udp).dst_port == 9100 for p in questions)
    assert all(p[2].protocols[-1] == b"load?\n" for p in questions)
    by_ip = {p[2].get_protocol(ipv4.ipv4).dst: p for p in questions}
    assert r.runner.answer(agent_reply(by_ip["10.0.0.1"], b"load 12.5\n"), 0.01)
    assert r.runner.answer(agent_reply(by_ip["10.0.0.2"], b"garbage"), 0.01), "logged"
    one, two = r.service.backends["10.0.0.1"], r.service.backends["10.0.0.2"]
    assert (one.reported_load, two.reported_load) == (12.5, None)
    assert not r.runner.answer(agent_reply(by_ip["10.0.0.1"], b"3"), 0.02), "answered"
    for ip in ("10.0.0.1", "10.0.0.2"):  # both up, so both serve
        r.service.health_result(ip, True, 0.0)
    # a backend without a fresh figure counts as the mean of those with one
    assert r.service.scaling_load(0.1, {}, None, None) == 25.0
    assert r.service.scaling_load(0.32, {}, None, None) is None, "3 intervals: stale"
    assert [k for k, _ in r.events] == [], "an agent's answer is not a health result"


def syn_from(client_ip, sport, vip=VIP, port=80, flags=tcp.TCP_SYN):
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(src="00:00:00:00:00:03", dst=vip_mac(vip)))
    pkt.add_protocol(ipv4.ipv4(src=client_ip, dst=vip, proto=6))
    pkt.add_protocol(tcp.tcp(src_port=sport, dst_port=port, bits=flags))
    pkt.serialize()
    return packet.Packet(bytes(pkt.data))


def test_least_conn_places_first_frames_and_counts_them_until_the_switch_does():
    r = Runner(scheduler="least_conn", backends=[{"ip": "10.0.0.1", "weight": 1},
                                                 {"ip": "10.0.0.2", "weight": 3}])
    for backend in r.service.backends.values():
        backend.health.up = True
    ids = {ip: b.backend_id for ip, b in r.service.backends.items()}
    placed = [r.runner.place(0x20102, syn_from("10.0.0.3", 40000 + i), 1.0, 60, 1)
              for i in range(8)]
    chosen = [step[2] for steps in placed for step in steps if step[0] == "set_reg"]
    assert sorted(chosen).count(ids["10.0.0.2"]) == 6, "1:3 by weight"
    again = r.runner.place(0x20102, syn_from("10.0.0.3", 40000), 1.2, 60, 1)
    assert again == placed[0], "a retransmitted SYN follows its connection's choice"
    assert r.runner.connections == {ids["10.0.0.1"]: 2, ids["10.0.0.2"]: 6}
    # the switch's count, asked for after the placements, replaces them
    r.runner.count_connections(0x20102, {ids["10.0.0.1"]: 2, ids["10.0.0.2"]: 5}, 1.5,
                               {0x20102: None})
    assert r.runner.connections == {ids["10.0.0.1"]: 2, ids["10.0.0.2"]: 5}
    # a segment of a connection the controller did not just place (its entry went
    # with its FIN, or its backend left) is not a new connection: not placed, counted
    # or learned
    for flags in (tcp.TCP_ACK, tcp.TCP_RST, tcp.TCP_FIN | tcp.TCP_ACK,
                  tcp.TCP_SYN | tcp.TCP_ACK):
        assert r.runner.place(0x20102, syn_from("10.0.0.3", 50000, flags=flags), 1.3,
                              60, 1) is None
    assert r.service.placements == 8
    # but one that overtook its SYN's packet-out follows the SYN's choice
    ack = r.runner.place(0x20102, syn_from("10.0.0.3", 40001, flags=tcp.TCP_ACK), 1.3,
                         60, 1)
    assert ack == placed[1]
    # not a least_conn service, or not a connection: the controller does not place it
    wrr = Runner()
    assert wrr.runner.place(0x20102, syn_from("10.0.0.3", 1), 0.0, 60, 1) is None
