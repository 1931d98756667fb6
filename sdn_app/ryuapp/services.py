"""The services' part of the Ryu layer (core/services.py holds the logic): health
probes sent as packet-outs from each backend's switch and their answers read from
packet-ins, ARP answers for VIPs, and per-backend connection counts read from the
switches' learned entries.

A probe comes from the VIP itself (its MAC and address; the backend ARPs for it and
the controller answers), so its answer is addressed to the VIP, which every switch
with hosts sends to the controller (pipeline.PRIORITY_VIP).  Each backend probes from
its own source port (or ICMP id), which tells whose answer an answer is.

* ``tcp``: a SYN to the backend's port; a SYN-ACK is an answer (the controller resets
  the half-open connection), a RST or silence until ``timeout_ms`` a miss;
* ``udp``: an empty datagram; any datagram back is an answer, an ICMP port-unreachable
  or silence a miss;
* ``icmp``: an echo request; the echo reply is the answer.

With ``agent_port``, every check also asks the backend's load agent there (a UDP
datagram "load?"); the number in its answer is the backend's own load figure (HAProxy's
agent-check, in band), which the ``reported`` scaling metric sums.  An agent's silence
only lets its figure age out; health is the check's alone.

Under ``least_conn`` the switch sends a connection's first frame here (one packet-in per
new connection); ``place`` picks the backend from the connections counted at the last
poll plus those placed since, and the frame goes back in a packet-out that runs the
same steps a slot entry would (learn the connection entry, rewrite, forward), so
everything after the first frame stays in the switch.
"""

from __future__ import annotations

import random

from ryu.lib.packet import arp, ethernet, icmp, ipv4, packet, tcp, udp

from ..core.services import DOWN, UP, ServiceTable, placement, vip_mac
from ..core.topology import Topology
from .codec import frame_bytes

PROBE_PORT_BASE = 33000  # probe source port = base + backend id (mod PROBE_PORTS)
PROBE_PORTS = 16000
AGENT_PORT_BASE = 17000  # load-agent question source port = base + backend id (mod)
PLACING_MEMORY = 2.0  # s a placed connection's frames that reach us follow its choice
AGENT_QUESTION = b"load?\n"


def probe_port(backend_id: int, service_port: int) -> int:
    port = PROBE_PORT_BASE + backend_id % PROBE_PORTS
    return port + PROBE_PORTS if port == service_port else port


def agent_query_port(backend_id: int) -> int:
    """The source port of a backend's load-agent questions (apart from its checks')."""
    return AGENT_PORT_BASE + backend_id % PROBE_PORTS


class Probe:
    """A probe that is out: whose it is, and when it counts as missed."""

    __slots__ = ("service", "ip", "deadline")

    def __init__(self, service, ip, deadline):
        self.service, self.ip, self.deadline = service, ip, deadline


class ServiceRunner:
    """Health checks and ARP for the services of ``table``.  ``send(dpid, port, frame)``
    sends a frame out of a switch port; ``changed()`` asks for the plan to be rebuilt;
    ``event(kind, **details)`` records an event."""

    def __init__(self, table: ServiceTable, topo: Topology, send, flood, changed, event,
                 logger):
        self.table = table
        self.topo = topo
        self.send = send
        self.flood = flood  # flood(frame): out of every edge port (to find a backend)
        self.changed = changed
        self.event = event
        self.logger = logger
        self.pending: dict = {}  # (backend ip, probe port or icmp id) -> Probe
        self.agents: dict = {}  # (backend ip, agent_query_port) -> Probe: load asked
        self.next_due: dict = {}  # (service name, backend ip) -> monotonic time
        self.counted: dict = {}  # dpid -> (time its count was asked for, {backend id: n})
        self.placed: list = []  # (dpid, backend id, time): least_conn placements since
        self._placing: dict = {}  # connection 5-tuple -> (backend id, time placed)

    # -- probing ------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Send the probes that are due and count the ones that timed out."""
        for key in [k for k, (_, t) in self._placing.items() if now - t > PLACING_MEMORY]:
            del self._placing[key]
        for key in [k for k, probe in self.agents.items() if now >= probe.deadline]:
            del self.agents[key]  # an agent that did not answer: its figure ages out
        for key, probe in list(self.pending.items()):
            if now >= probe.deadline:
                del self.pending[key]
                self._result(probe.service, probe.ip, False, now, "no answer")
        for service in list(self.table.services.values()):
            interval = service.spec.health.interval_ms / 1000.0
            for ip, backend in list(service.backends.items()):
                due_key = (service.spec.name, ip)
                if now < self.next_due.get(due_key, 0.0):
                    continue
                self.next_due[due_key] = now + interval
                self._probe(service, backend, now)

    def _probe(self, service, backend, now: float) -> None:
        spec, health = service.spec, service.spec.health
        host = self.topo.host_by_ip(backend.spec.ip)
        src_mac = vip_mac(spec.vip)
        if host is None:  # not located yet: ask for it, and count a miss
            self.flood(arp_request(src_mac, spec.vip, backend.spec.ip))
            self._result(service, backend.spec.ip, False, now, "not located")
            return
        ident = probe_port(backend.backend_id, spec.port)
        eth = ethernet.ethernet(dst=host.mac, src=src_mac, ethertype=0x0800)
        if health.agent_port:
            self._ask_agent(service, backend, host, eth, now)
        key = (backend.spec.ip, ident)
        if key in self.pending:  # the previous probe is still out: let it time out
            return
        seq = random.getrandbits(31)
        if health.kind == "icmp":
            ip = ipv4.ipv4(src=spec.vip, dst=backend.spec.ip, proto=1)
            payload = icmp.icmp(type_=icmp.ICMP_ECHO_REQUEST, data=icmp.echo(
                id_=ident, seq=seq & 0xFFFF, data=b"sdn_app health"))
        elif health.kind == "udp":
            ip = ipv4.ipv4(src=spec.vip, dst=backend.spec.ip, proto=17)
            payload = udp.udp(src_port=ident, dst_port=backend.spec.port)
        else:
            ip = ipv4.ipv4(src=spec.vip, dst=backend.spec.ip, proto=6)
            payload = tcp.tcp(src_port=ident, dst_port=backend.spec.port, seq=seq,
                              bits=tcp.TCP_SYN, window_size=1024)
        self.pending[key] = Probe(service, backend.spec.ip, now + health.timeout_ms / 1000.0)
        self.send(host.dpid, host.port, frame_bytes(eth, ip, payload))

    def _ask_agent(self, service, backend, host, eth, now: float) -> None:
        """Ask the backend's load agent (UDP ``agent_port``) for its figure; its answer
        ("load 12.5", or just the number) is read in ``answer``."""
        port, ident = service.spec.health.agent_port, agent_query_port(backend.backend_id)
        ip = ipv4.ipv4(src=service.spec.vip, dst=backend.spec.ip, proto=17)
        self.agents[(backend.spec.ip, ident)] = Probe(
            service, backend.spec.ip, now + service.spec.health.timeout_ms / 1000.0)
        self.send(host.dpid, host.port, frame_bytes(eth, ip, udp.udp(
            src_port=ident, dst_port=port), AGENT_QUESTION))

    def _agent_answer(self, probe, payload, now: float) -> None:
        backend = probe.service.backends.get(probe.ip)
        try:
            value = float(bytes(payload).decode("ascii").split()[-1])
            if not 0 <= value < float("inf"):
                raise ValueError(value)
        except (TypeError, ValueError, IndexError, UnicodeDecodeError):
            self.logger.warning("service %s backend %s: unreadable load report %r",
                                probe.service.spec.name, probe.ip, bytes(payload)[:40])
            return
        if backend is not None:
            backend.reported_load, backend.reported_at = value, now

    def answer(self, pkt: packet.Packet, now: float) -> bool:
        """Read a frame addressed to a VIP; True if it was a probe's answer."""
        ip = pkt.get_protocol(ipv4.ipv4)
        if ip is None:
            return False
        segment, icmp_msg = pkt.get_protocol(tcp.tcp), pkt.get_protocol(icmp.icmp)
        datagram = pkt.get_protocol(udp.udp)
        if segment is not None:
            probe = self._take(ip.src, segment.dst_port, "tcp")
            if probe is None:
                return False
            answered = bool(segment.bits & tcp.TCP_SYN and segment.bits & tcp.TCP_ACK)
            if answered:
                self._reset(pkt, segment)
            self._result(probe.service, probe.ip, answered, now,
                         "SYN-ACK" if answered else "RST")
            return True
        if datagram is not None:
            agent = self.agents.get((ip.src, datagram.dst_port))
            if agent is not None and datagram.src_port == agent.service.spec.health.agent_port:
                del self.agents[(ip.src, datagram.dst_port)]
                payload = pkt.protocols[-1]
                self._agent_answer(agent, payload if isinstance(
                    payload, bytes | bytearray) else b"", now)
                return True
            probe = self._take(ip.src, datagram.dst_port, "udp")
            if probe is not None:
                self._result(probe.service, probe.ip, True, now, "UDP answer")
            return probe is not None
        if icmp_msg is not None:
            if icmp_msg.type == icmp.ICMP_ECHO_REPLY and isinstance(icmp_msg.data, icmp.echo):
                probe = self._take(ip.src, icmp_msg.data.id, "icmp")
                if probe is not None:
                    self._result(probe.service, probe.ip, True, now, "echo reply")
                return probe is not None
            if icmp_msg.type == icmp.ICMP_DEST_UNREACH:
                inner = _quoted_udp_port(icmp_msg)
                if self.agents.pop((ip.src, inner), None) is not None:
                    return True  # no agent there: its figure ages out
                probe = self._take(ip.src, inner, "udp") if inner else None
                if probe is not None:
                    self._result(probe.service, probe.ip, False, now, "port unreachable")
                return probe is not None
        return False

    def _take(self, ip: str, ident: int, kind: str):
        """The probe out to ``ip`` from ``ident``, if it was a ``kind`` check (a frame of
        another protocol to the same port answers nothing)."""
        probe = self.pending.get((ip, ident))
        if probe is None or probe.service.spec.health.kind != kind:
            return None
        return self.pending.pop((ip, ident))

    def _reset(self, pkt, segment) -> None:
        """Close the half-open connection a SYN-ACK opened on the backend."""
        eth, ip = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(ipv4.ipv4)
        host = self.topo.host_by_ip(ip.src)
        if host is None:
            return
        self.send(host.dpid, host.port, frame_bytes(
            ethernet.ethernet(dst=eth.src, src=eth.dst, ethertype=0x0800),
            ipv4.ipv4(src=ip.dst, dst=ip.src, proto=6),
            tcp.tcp(src_port=segment.dst_port, dst_port=segment.src_port, seq=segment.ack,
                    bits=tcp.TCP_RST)))

    def _result(self, service, ip: str, answered: bool, now: float, why: str) -> None:
        backend = service.backends.get(ip)
        if backend is None or service.spec.name not in self.table.services:
            return
        if service.health_result(ip, answered, now):
            state = UP if backend.health.up else DOWN
            self.logger.info("service %s backend %s %s (%s)", service.spec.name, ip, state,
                             why)
            self.event("backend_" + state, service=service.spec.name, ip=ip, reason=why)
            self.changed()

    # -- ARP -----------------------------------------------------------------------------

    def arp_answer(self, target_ip: str) -> str | None:
        """The MAC to answer an ARP request for ``target_ip`` with, if it is a VIP."""
        return self.table.vips().get(target_ip)

    # -- connections ----------------------------------------------------------------------

    def count_connections(self, dpid: int, counts: dict, asked_at: float, live) -> None:
        """One switch's learned connection entries per backend ({backend id: n}), as of
        the request sent at ``asked_at``; ``live``: the switches connected now."""
        self.counted[dpid] = (asked_at, counts)
        for gone in set(self.counted) - set(live):
            del self.counted[gone]
        self.placed = [p for p in self.placed
                       if p[0] in self.counted and p[2] >= self.counted[p[0]][0]]

    @property
    def connections(self) -> dict:
        """{backend id: active connections}: the switches' learned entries as last
        counted, plus the connections placed since (not in those counts yet)."""
        totals: dict = {}
        for _, counts in self.counted.values():
            for backend_id, count in counts.items():
                totals[backend_id] = totals.get(backend_id, 0) + count
        for _, backend_id, _ in self.placed:
            totals[backend_id] = totals.get(backend_id, 0) + 1
        return totals

    @property
    def counted_at(self) -> float:
        """When the oldest of the counts in ``connections`` was asked for."""
        return min((t for t, _ in self.counted.values()), default=float("-inf"))

    def place(self, dpid: int, pkt: packet.Packet, now: float, idle_timeout: int,
              cookie: int) -> tuple | None:
        """The steps for the first frame of a new connection to a least_conn service
        (None if the frame is not one, or no backend takes connections)."""
        ip = pkt.get_protocol(ipv4.ipv4)
        segment = pkt.get_protocol(tcp.tcp) or pkt.get_protocol(udp.udp)
        if ip is None or segment is None:
            return None
        service = self.table.find(ip.dst, segment.dst_port, ip.proto)
        if service is None or service.spec.scheduler != "least_conn":
            return None
        key = (ip.src, segment.src_port, ip.dst, segment.dst_port, ip.proto)
        ids = {b.backend_id for b in service.backends.values()}
        recent = self._placing.get(key)
        if recent is not None and recent[0] in ids:  # a retransmission or a burst
            backend_id = recent[0]
        elif isinstance(segment, tcp.tcp) and not _opens_connection(segment):
            # The segment of a connection whose entry is gone (its FIN timed it out,
            # its backend left): placing it would learn a connection that is not one,
            # counted as open until it idles out (and as a new request); as in IPVS,
            # only a SYN makes a connection.
            return None
        else:
            backend = service.least_conn(self.connections, now)
            if backend is None:
                return None
            backend_id = backend.backend_id
            self._placing[key] = (backend_id, now)
            self.placed.append((dpid, backend_id, now))
        return placement(service.spec, backend_id, idle_timeout, cookie)

    def forget(self, service_name: str, ip: str | None = None) -> None:
        """Drop the probe state of a removed service or backend."""
        for key in [k for k in self.next_due if k[0] == service_name and ip in (None, k[1])]:
            del self.next_due[key]
        for key, probe in list(self.pending.items()):
            if probe.service.spec.name == service_name and ip in (None, probe.ip):
                del self.pending[key]


def _opens_connection(segment: tcp.tcp) -> bool:
    """A TCP segment that opens a connection: SYN without ACK (pipeline.SYN_ONLY)."""
    return bool(segment.bits & tcp.TCP_SYN) and not segment.bits & tcp.TCP_ACK


def arp_request(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    return frame_bytes(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=src_mac, ethertype=0x0806),
                  arp.arp(opcode=arp.ARP_REQUEST, src_mac=src_mac, src_ip=src_ip,
                          dst_mac="00:00:00:00:00:00", dst_ip=target_ip))


def _quoted_udp_port(icmp_msg) -> int | None:
    """The source port of the UDP datagram an ICMP error quotes."""
    data = getattr(icmp_msg.data, "data", None)
    if not data or len(data) < 28:
        return None
    header_len = (data[0] & 0x0F) * 4
    if data[9] != 17 or len(data) < header_len + 2:
        return None
    return int.from_bytes(data[header_len:header_len + 2], "big")
