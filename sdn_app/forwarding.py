"""What every switch's flow table should hold, computed from the topology alone.

The pipeline has two tables:

* table 0 (ingress): LLDP and ARP go to the controller; a known host's frames
  (in_port + eth_src) and frames from inter-switch ports go on to table 1; anything else
  misses to the controller, which is how new and moved hosts are noticed.
* table 1 (forwarding): one entry per known host, ``eth_dst -> output`` toward the
  host's switch, or ``-> group`` where the policy splits traffic over several next hops
  (a weighted SELECT group per destination switch, see balance.py); misses go to the
  controller, which delivers broadcasts and unknown destinations itself.  Frames that
  entered the network at this switch (table 0 marks them with metadata=1) hit a twin
  entry of higher priority whose counters measure the demand matrix exactly.

Nothing is ever flooded by a switch, so a topology with loops cannot storm: the
controller delivers broadcasts only out of edge ports (Topology.is_edge_port), and
unicast follows trees, which cannot loop.  The plan is plain data (FlowEntry); the Ryu
layer turns it into FlowMods and sends only the difference from what is installed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import networkx as nx

from .topology import Host, Topology, TopologyError, dpid_to_str, is_unicast

TABLE_INGRESS = 0
TABLE_FORWARD = 1

ETH_TYPE_ARP = 0x0806
ETH_TYPE_LLDP = 0x88CC

PRIORITY_MISS = 0
PRIORITY_FORWARD = 100
PRIORITY_INGRESS_COUNT = 110  # table 1: frames from local hosts (metadata=1)
FROM_LOCAL_HOST = 1
PRIORITY_CONTROL = 1000  # LLDP and ARP: above every forwarding entry

TO_CONTROLLER = (("controller",),)


@dataclass(frozen=True)
class FlowEntry:
    """One flow entry, in OpenFlow-version-neutral terms.

    ``match`` is a sorted tuple of (OXM field name, value) pairs; ``actions`` a tuple of
    ("output", port) / ("controller",) / ("group", id) / ("metadata", value) /
    ("goto", table) steps, in that order.
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


@dataclass(frozen=True)
class GroupEntry:
    """A weighted SELECT group: ``buckets`` is ((port, weight), ...) sorted by port."""

    group_id: int
    buckets: tuple

    @property
    def key(self) -> tuple:
        return ("group", self.group_id)


def group_ids(dpids) -> dict[int, int]:
    """A stable group id per destination switch: the dpid itself when it fits in 31 bits
    (readable in dump-groups), else a hash of it; collisions probe upward in dpid order.
    Stable ids mean a restarted controller rewrites the same groups in place."""
    ids, taken = {}, set()
    for dpid in sorted(dpids):
        gid = dpid if 0 < dpid < 2**31 else (zlib.crc32(dpid.to_bytes(8, "big")) | 1) % 2**31
        while gid in taken or gid == 0:
            gid = (gid + 1) % 2**31
        ids[dpid] = gid
        taken.add(gid)
    return ids


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


def build_plan(topo: Topology, host_idle_timeout: int = 0, next_hops: dict | None = None) -> Plan:
    """Every switch's desired entries and groups, {dpid: {key: FlowEntry | GroupEntry}}.
    ``next_hops`` ({(u, d): ((port, weight), ...)}, see balance.py) defaults to the
    shortest-path tree."""
    if next_hops is None:
        next_hops = {(u, h.dpid): ((port, 1),) for h in topo.hosts.values()
                     for u, port in next_hops_towards(topo, h.dpid).items()}
    plan: Plan = {dpid: {} for dpid in topo.graph}
    gids = group_ids(topo.graph.nodes)

    def add(dpid: int, item) -> None:
        plan[dpid][item.key] = item

    for dpid in topo.graph:
        add(dpid, entry(TABLE_INGRESS, PRIORITY_CONTROL, TO_CONTROLLER, eth_type=ETH_TYPE_LLDP))
        add(dpid, entry(TABLE_INGRESS, PRIORITY_CONTROL, TO_CONTROLLER, eth_type=ETH_TYPE_ARP))
        add(dpid, entry(TABLE_INGRESS, PRIORITY_MISS, TO_CONTROLLER))
        add(dpid, entry(TABLE_FORWARD, PRIORITY_MISS, TO_CONTROLLER))
    for link in topo.links():
        add(link.dst, entry(TABLE_INGRESS, PRIORITY_FORWARD, (("goto", TABLE_FORWARD),),
                            in_port=link.dst_port))
    ingress_switches = {h.dpid for h in topo.hosts.values()}
    for host in topo.hosts.values():
        # Expiry of this entry is what tells the controller a host went silent.
        add(host.dpid, entry(TABLE_INGRESS, PRIORITY_FORWARD,
                             (("metadata", FROM_LOCAL_HOST), ("goto", TABLE_FORWARD)),
                             idle_timeout=host_idle_timeout,
                             notify_removal=host_idle_timeout > 0,
                             in_port=host.port, eth_src=host.mac))
        routes = {host.dpid: (("output", host.port),)}
        for (u, d), hops in next_hops.items():
            if d != host.dpid or u not in plan:
                continue
            if len(hops) == 1:
                routes[u] = (("output", hops[0][0]),)
            else:
                group = GroupEntry(gids[d], tuple(sorted(hops)))
                add(u, group)
                routes[u] = (("group", group.group_id),)
        for u, actions in routes.items():
            add(u, entry(TABLE_FORWARD, PRIORITY_FORWARD, actions, eth_dst=host.mac))
            if u in ingress_switches:
                add(u, entry(TABLE_FORWARD, PRIORITY_INGRESS_COUNT, actions,
                             metadata=FROM_LOCAL_HOST, eth_dst=host.mac))
    return plan


def forward_entry(mac: str, port: int) -> FlowEntry:
    return entry(TABLE_FORWARD, PRIORITY_FORWARD, (("output", port),), eth_dst=mac)


def trace(plan: Plan, topo: Topology, src: Host, dst: Host) -> list[dict]:
    """Every path the plan sends src's traffic to dst along, with the share of flows it
    carries, most-used first: [{"share": 0.75, "hops": [{dpid, in_port, out_port}]}]."""
    key = forward_entry(dst.mac, 0).key
    done = []

    def walk(dpid, in_port, hops, share):
        flow = plan.get(dpid, {}).get(key)
        if flow is None or len(hops) > len(plan):
            return
        step = flow.actions[0]
        if step[0] == "group":
            buckets = plan[dpid][("group", step[1])].buckets
            total = sum(w for _, w in buckets)
            outs = [(port, share * w / total) for port, w in buckets]
        else:
            outs = [(step[1], share)]
        for out_port, part in outs:
            here = hops + [{"dpid": dpid_to_str(dpid), "in_port": in_port,
                            "out_port": out_port}]
            if (dpid, out_port) == (dst.dpid, dst.port):
                done.append({"share": round(part, 4), "hops": here})
                continue
            for link in topo.links_at(dpid, out_port):
                if link.src == dpid:
                    walk(link.dst, link.dst_port, here, part)

    walk(src.dpid, src.port, [], 1.0)
    if not done:
        raise TopologyError("no path from %s to %s" % (src.mac, dst.mac))
    return sorted(done, key=lambda p: -p["share"])


def path_report(plan: Plan, topo: Topology, src_key: str, dst_key: str) -> dict:
    """The paths in use between two hosts named by MAC or IPv4 (``GET /v1/paths``):
    ``hops`` is the most-used one, ``paths`` all of them with their shares."""
    src, dst = topo.find_host(src_key), topo.find_host(dst_key)
    paths = trace(plan, topo, src, dst)
    return {"src": src.mac, "dst": dst.mac, "hops": paths[0]["hops"], "paths": paths}


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
