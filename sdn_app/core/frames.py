"""What the controller does with a frame the switches sent up: learn its sender, answer
ARP from the host table (proxy ARP), and deliver it where forwarding has no entry yet.
A sender the host caps refuse (Topology.max_hosts_per_port / _per_switch) is dropped;
one sending from a label or VIP address (the fabric's own) is not learned.

Learning and flooding happen only on settled edge ports (Topology.is_edge_port): that is
what keeps a topology full of loops harmless, since no switch ever floods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pipeline import is_fabric_mac
from .topology import Topology, is_unicast


@dataclass
class FrameVerdict:
    """What the controller does with a frame its tables sent up."""

    learned: bool = False  # the topology changed: recompute the plan
    arp_reply_mac: str | None = None  # answer the ARP request on the ingress port as this MAC
    outputs: dict = field(default_factory=dict)  # dpid -> ports to send the frame out of
    refused: str | None = None  # why its sender was not learned (a host cap): dropped
    # ARP from a port about to settle (Topology.settling): look at it again in this
    # many seconds rather than drop it (a host's first ARP request, sent as its link
    # came up, is answered then instead of at its retry a second later; so is a reply
    # to a request the controller passed on to a host not yet known).  Other frames
    # from such a port are dropped: their senders retry, and a burst of them replayed
    # at once would only delay the plan being installed.
    retry_after: float | None = None


def handle_frame(topo: Topology, dpid: int, in_port: int, now: float, eth_src: str,
                 eth_dst: str, src_ip: str | None = None,
                 arp_request_for: str | None = None, arp: bool = False) -> FrameVerdict:
    """Decide about a frame that missed the tables (or is ARP).

    Learning and flooding happen only on settled edge ports: that is what keeps loops
    harmless.  A frame for a known host is handed straight to the host's port from
    anywhere, including an inter-switch port: that covers packets in flight while a new
    host's entries are still being installed along the path, and cannot loop.
    ``arp``: the frame is ARP (a request or a reply).
    """
    verdict = FrameVerdict()
    edge = topo.is_edge_port(dpid, in_port, now)
    if not edge and (arp or arp_request_for):
        verdict.retry_after = topo.settling(dpid, in_port, now)
        if verdict.retry_after is not None:
            return verdict
    # Label and VIP addresses (pipeline.is_fabric_mac) are the fabric's own: a sender
    # using one is not learned (its frames would be taken for the host or service the
    # address stands for).
    if edge and is_unicast(eth_src) and not is_fabric_mac(eth_src):
        topo.refused = None
        verdict.learned = topo.learn_host(eth_src, dpid, in_port, now, src_ip)
        if topo.refused is not None:
            # over a cap (a flood of made-up sources): neither learned nor served, so
            # the flood costs no entries and reaches no one
            verdict.refused = topo.refused[3]
            return verdict
    if edge and arp_request_for:
        target = topo.host_by_ip(arp_request_for)
        if target is not None and target.mac != eth_src:
            verdict.arp_reply_mac = target.mac
            return verdict
    host = topo.hosts.get(eth_dst)
    if host is not None:
        if (host.dpid, host.port) != (dpid, in_port):
            verdict.outputs = {host.dpid: [host.port]}
    elif edge:
        for out_dpid, port in topo.edge_ports(now):
            if (out_dpid, port) != (dpid, in_port):
                verdict.outputs.setdefault(out_dpid, []).append(port)
    return verdict


class PendingArp:
    """ARP requests for an address no known host has yet, kept for up to ``hold`` s (at
    most ``limit`` in all) and answered as soon as a host with it is learned: at
    start-up the asked host's port may not have settled yet, and without this the
    asker waits for its retry a second later."""

    def __init__(self, hold: float = 2.0, limit: int = 1024):
        self.hold, self.limit = hold, limit
        self._waiting: dict = {}  # ip -> [(time, request)]
        self._count = 0

    def add(self, ip: str, request, now: float) -> None:
        if self._count >= self.limit:
            self._expire(now)
            if self._count >= self.limit:
                return
        self._waiting.setdefault(ip, []).append((now, request))
        self._count += 1

    def take(self, ip: str, now: float) -> list:
        """The requests still waiting for ``ip`` (now answered: forgotten)."""
        waiting = self._waiting.pop(ip, [])
        self._count -= len(waiting)
        return [request for t, request in waiting if now - t <= self.hold]

    def _expire(self, now: float) -> None:
        for ip in list(self._waiting):
            kept = [(t, r) for t, r in self._waiting[ip] if now - t <= self.hold]
            self._count -= len(self._waiting[ip]) - len(kept)
            if kept:
                self._waiting[ip] = kept
            else:
                del self._waiting[ip]
