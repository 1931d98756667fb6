"""What every switch's flow table should hold, computed from the topology alone.

The pipeline has two tables:

* table 0 (ingress): LLDP and ARP go to the controller; a known host's frames
  (in_port + eth_src) and frames from inter-switch ports go on to table 1; anything else
  misses to the controller, which is how new and moved hosts are noticed.
* table 1 (forwarding): one entry per known host, ``eth_dst -> output``, along a
  shortest-path tree rooted at the host's switch; misses go to the controller, which
  delivers broadcasts and unknown destinations itself.

Nothing is ever flooded by a switch, so a topology with loops cannot storm: the
controller delivers broadcasts only out of edge ports (Topology.is_edge_port), and
unicast follows trees, which cannot loop.  The plan is plain data (FlowEntry); the Ryu
layer turns it into FlowMods and sends only the difference from what is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from .topology import Host, Topology, TopologyError, dpid_to_str, is_unicast

TABLE_INGRESS = 0
TABLE_FORWARD = 1

ETH_TYPE_ARP = 0x0806
ETH_TYPE_LLDP = 0x88CC

PRIORITY_MISS = 0
PRIORITY_FORWARD = 100
PRIORITY_CONTROL = 1000  # LLDP and ARP: above every forwarding entry

TO_CONTROLLER = (("controller",),)


@dataclass(frozen=True)
class FlowEntry:
    """One flow entry, in OpenFlow-version-neutral terms.

    ``match`` is a sorted tuple of (OXM field name, value) pairs; ``actions`` a tuple of
    ("output", port) / ("controller",) / ("goto", table) steps.
    """

    table: int
    priority: int
    match: tuple
    actions: tuple
    idle_timeout: int = 0
    notify_removal: bool = False

    @property
    def key(self) -> tuple:
        """What identifies an entry in a switch's table (OpenFlow strict matching)."""
        return (self.table, self.priority, self.match)


def entry(table: int, priority: int, actions: tuple, idle_timeout: int = 0,
          notify_removal: bool = False, **match) -> FlowEntry:
    return FlowEntry(table, priority, tuple(sorted(match.items())), actions,
                     idle_timeout, notify_removal)


Plan = dict  # dpid -> {FlowEntry.key: FlowEntry}


def next_hops_towards(topo: Topology, root: int) -> dict[int, int]:
    """For every switch that can reach ``root``, the output port of its first hop on a
    shortest path there.  Ties go to the lowest (neighbour dpid, port), so the choice is
    stable across recomputations and a path only moves when the topology forces it."""
    graph = topo.graph
    if root not in graph:
        return {}
    dist = nx.single_source_shortest_path_length(graph.reverse(copy=False), root)
    hops = {}
    for node, d in dist.items():
        if node == root:
            continue
        hops[node] = min((nbr, port) for _, nbr, port in graph.out_edges(node, keys=True)
                         if dist.get(nbr) == d - 1)[1]
    return hops


def build_plan(topo: Topology, host_idle_timeout: int = 0) -> Plan:
    plan: Plan = {dpid: {} for dpid in topo.graph}

    def add(dpid: int, flow: FlowEntry) -> None:
        plan[dpid][flow.key] = flow

    for dpid in topo.graph:
        add(dpid, entry(TABLE_INGRESS, PRIORITY_CONTROL, TO_CONTROLLER, eth_type=ETH_TYPE_LLDP))
        add(dpid, entry(TABLE_INGRESS, PRIORITY_CONTROL, TO_CONTROLLER, eth_type=ETH_TYPE_ARP))
        add(dpid, entry(TABLE_INGRESS, PRIORITY_MISS, TO_CONTROLLER))
        add(dpid, entry(TABLE_FORWARD, PRIORITY_MISS, TO_CONTROLLER))
    for link in topo.links():
        add(link.dst, entry(TABLE_INGRESS, PRIORITY_FORWARD, (("goto", TABLE_FORWARD),),
                            in_port=link.dst_port))
    for host in topo.hosts.values():
        # Expiry of this entry is what tells the controller a host went silent.
        add(host.dpid, entry(TABLE_INGRESS, PRIORITY_FORWARD, (("goto", TABLE_FORWARD),),
                             idle_timeout=host_idle_timeout,
                             notify_removal=host_idle_timeout > 0,
                             in_port=host.port, eth_src=host.mac))
        add(host.dpid, forward_entry(host.mac, host.port))
        for dpid, port in next_hops_towards(topo, host.dpid).items():
            add(dpid, forward_entry(host.mac, port))
    return plan


def forward_entry(mac: str, port: int) -> FlowEntry:
    return entry(TABLE_FORWARD, PRIORITY_FORWARD, (("output", port),), eth_dst=mac)


def trace(plan: Plan, topo: Topology, src: Host, dst: Host) -> list[dict]:
    """Follow the plan's forwarding entries from src to dst: the path traffic takes."""
    hops = []
    dpid, in_port = src.dpid, src.port
    key = forward_entry(dst.mac, 0).key
    while True:
        flow = plan.get(dpid, {}).get(key)
        if flow is None:
            raise TopologyError("no path from %s to %s" % (src.mac, dst.mac))
        out_port = flow.actions[0][1]
        hops.append({"dpid": dpid_to_str(dpid), "in_port": in_port, "out_port": out_port})
        if (dpid, out_port) == (dst.dpid, dst.port):
            return hops
        links = [lk for lk in topo.links_at(dpid, out_port) if lk.src == dpid]
        if not links or len(hops) > len(plan):
            raise TopologyError("no path from %s to %s" % (src.mac, dst.mac))
        dpid, in_port = links[0].dst, links[0].dst_port


def path_report(plan: Plan, topo: Topology, src_key: str, dst_key: str) -> dict:
    """The path in use between two hosts named by MAC or IPv4 (``GET /v1/paths``)."""
    src, dst = topo.find_host(src_key), topo.find_host(dst_key)
    return {"src": src.mac, "dst": dst.mac, "hops": trace(plan, topo, src, dst)}


def diff(installed: dict, desired: dict) -> tuple[list[FlowEntry], list[FlowEntry]]:
    """Entries to add or replace, and entries to delete, to turn installed into desired.
    Both are {key: FlowEntry} for one switch."""
    to_add = [f for k, f in desired.items() if installed.get(k) != f]
    to_delete = [f for k, f in installed.items() if k not in desired]
    return to_add, to_delete


@dataclass
class FrameVerdict:
    """What the controller does with a frame its tables sent up."""

    learned: bool = False  # the topology changed: recompute the plan
    arp_reply_mac: str | None = None  # answer the ARP request on the ingress port as this MAC
    outputs: dict = field(default_factory=dict)  # dpid -> ports to send the frame out of


def handle_frame(topo: Topology, dpid: int, in_port: int, now: float, eth_src: str,
                 eth_dst: str, src_ip: str | None = None,
                 arp_request_for: str | None = None) -> FrameVerdict:
    """Decide about a frame that missed the tables (or is ARP).

    Learning and flooding happen only on settled edge ports: that is what keeps loops
    harmless.  A frame for a known host is handed straight to the host's port from
    anywhere, including an inter-switch port: that covers packets in flight while a new
    host's entries are still being installed along the path, and cannot loop.
    """
    verdict = FrameVerdict()
    edge = topo.is_edge_port(dpid, in_port, now)
    if edge and is_unicast(eth_src):
        verdict.learned = topo.learn_host(eth_src, dpid, in_port, now, src_ip)
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
