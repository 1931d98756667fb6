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

from .paths import stable_ids, tree_towards
from .protection import Protection
from .topology import Host, Topology, TopologyError, dpid_to_str, is_unicast

TABLE_INGRESS = 0
TABLE_FORWARD = 1

ETH_TYPE_ARP = 0x0806
ETH_TYPE_LLDP = 0x88CC

PRIORITY_MISS = 0
PRIORITY_FORWARD = 100
PRIORITY_INGRESS_COUNT = 110  # table 1: frames from local hosts (metadata=1)
PRIORITY_DETOUR = 500  # table 0: frames on a tagged detour (protection.py)
FROM_LOCAL_HOST = 1
VLAN_PRESENT = 0x1000  # OFPVID_PRESENT: the OXM value of a frame that carries a VLAN tag
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


SELECT, FAST_FAILOVER = "select", "ff"


@dataclass(frozen=True)
class Bucket:
    """A group bucket: actions in FlowEntry's vocabulary (plus ("push_vlan", vid),
    ("pop_vlan",) and ("clear_in_port",)), a weight (SELECT) or the port whose liveness
    it watches (FF)."""

    actions: tuple
    weight: int = 1
    watch_port: int | None = None


@dataclass(frozen=True)
class GroupEntry:
    group_id: int
    kind: str  # SELECT or FAST_FAILOVER
    buckets: tuple  # of Bucket

    @property
    def key(self) -> tuple:
        return ("group", self.group_id)


def group_ids(dpids) -> dict[int, int]:
    """The SELECT group id of each destination switch: its dpid when that fits below
    2**31 (readable in dump-groups), else a hash of it.  Stable ids mean a recomputation
    or a restarted controller rewrites the same groups in place."""
    def start(dpid):
        return dpid if 0 < dpid < 2**31 else zlib.crc32(dpid.to_bytes(8, "big"))
    return stable_ids(dpids, start, 1, 2**31 - 1)


def failover_ids(keys) -> dict:
    """FAST_FAILOVER group ids for one switch's (destination, port) keys: from 2**31 up,
    clear of the SELECT ids."""
    return stable_ids(keys, lambda k: zlib.crc32(b"%d:%d" % k), 2**31, 2**31 - 256)


def entry(table: int, priority: int, actions: tuple, idle_timeout: int = 0,
          notify_removal: bool = False, **match) -> FlowEntry:
    return FlowEntry(table, priority, tuple(sorted(match.items())), actions,
                     idle_timeout, notify_removal)


Plan = dict  # dpid -> {FlowEntry.key: FlowEntry}


def next_hops_towards(topo: Topology, root: int) -> dict[int, int]:
    """The shortest-path tree toward ``root``: {switch: output port}."""
    return tree_towards(topo.graph, root)


def update_waves(topo: Topology, old_hops: dict, new_hops: dict) -> list[list[int]]:
    """The order in which switches take a new plan: in waves, each switch after the
    next hops its changed entries start sending to.  A switch taking its new next hop
    first would hand packets to a neighbour still on the old plan, which may send them
    straight back (OpenFlow drops output to the in_port) or around a loop.  Where two
    destinations want opposite orders, those switches share a wave."""
    after = nx.DiGraph()
    after.add_nodes_from(topo.graph.nodes)
    for key, hops in new_hops.items():
        if old_hops.get(key) == hops:
            continue
        u = key[0]
        for port, _weight in hops:
            for _, v, k in topo.graph.out_edges(u, keys=True):
                if k == port and v != u:
                    after.add_edge(v, u)
    condensed = nx.condensation(after)
    members = condensed.graph["mapping"]
    waves = [sorted(n for n, c in members.items() if c in generation)
             for generation in nx.topological_generations(condensed)]
    return [wave for wave in waves if wave]


def build_plan(topo: Topology, host_idle_timeout: int = 0, next_hops: dict | None = None,
               protection: Protection | None = None) -> Plan:
    """Every switch's desired entries and groups, {dpid: {key: FlowEntry | GroupEntry}}.
    ``next_hops`` ({(u, d): ((port, weight), ...)}, see balance.py) defaults to the
    shortest-path tree; with ``protection`` (protection.py) every next hop that has a
    backup goes through a FAST_FAILOVER group."""
    if next_hops is None:
        next_hops = {(u, h.dpid): ((port, 1),) for h in topo.hosts.values()
                     for u, port in next_hops_towards(topo, h.dpid).items()}
    backups = protection.backups if protection else {}
    plan: Plan = {dpid: {} for dpid in topo.graph}
    gids = group_ids(topo.graph.nodes)
    ff_ids = {u: failover_ids({(d, p) for (w, p, d) in backups if w == u}) for u in plan}

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
    if protection:
        for tag, hops in protection.detours.items():
            for dpid, port in hops.items():
                if dpid in plan:
                    actions = ((("pop_vlan",), ("goto", TABLE_FORWARD)) if port is None
                               else (("output", port),))
                    add(dpid, entry(TABLE_INGRESS, PRIORITY_DETOUR, actions,
                                    vlan_vid=VLAN_PRESENT | tag))

    def via(u: int, d: int, port: int) -> tuple:
        """Actions sending u's traffic for d out of ``port``, protected where possible."""
        backup = backups.get((u, port, d))
        if backup is None:
            return (("output", port),)
        # The backup port may be the one the frame came in on (a detour that turns back,
        # an alternate upstream): OpenFlow drops output to the ingress port, so the
        # bucket first clears in_port (measured: without it OVS blackholed a fat-tree
        # core-link cut; see southbound for the OpenFlow 1.5 gap).
        detour = ((("clear_in_port",),) + ((("push_vlan", backup.tag),) if backup.tag else ())
                  + (("output", backup.port),))
        group = GroupEntry(ff_ids[u][(d, port)], FAST_FAILOVER,
                           (Bucket((("output", port),), watch_port=port),
                            Bucket(detour, watch_port=backup.port)))
        add(u, group)
        return (("group", group.group_id),)

    routes_to: dict = {}  # d -> {u: actions}
    for (u, d), hops in next_hops.items():
        if u not in plan:
            continue
        if len(hops) == 1:
            routes_to.setdefault(d, {})[u] = via(u, d, hops[0][0])
        else:
            group = GroupEntry(gids[d], SELECT, tuple(Bucket(via(u, d, port), weight=weight)
                                                      for port, weight in sorted(hops)))
            add(u, group)
            routes_to.setdefault(d, {})[u] = (("group", group.group_id),)
    ingress_switches = {h.dpid for h in topo.hosts.values()}
    for host in topo.hosts.values():
        # Expiry of this entry is what tells the controller a host went silent.
        add(host.dpid, entry(TABLE_INGRESS, PRIORITY_FORWARD,
                             (("metadata", FROM_LOCAL_HOST), ("goto", TABLE_FORWARD)),
                             idle_timeout=host_idle_timeout,
                             notify_removal=host_idle_timeout > 0,
                             in_port=host.port, eth_src=host.mac))
        routes = dict(routes_to.get(host.dpid, {}))
        routes[host.dpid] = (("output", host.port),)
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
        outs = _outputs(plan[dpid], topo, dpid, flow.actions, share)
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


def _outputs(entries: dict, topo: Topology, dpid: int, actions: tuple, share: float) -> list:
    """[(port, share)] where actions send a frame: SELECT groups split it by weight,
    FAST_FAILOVER groups take their first bucket whose watched port is live."""
    outs = []
    for step in actions:
        if step[0] == "output":
            outs.append((step[1], share))
        elif step[0] == "group":
            group = entries[("group", step[1])]
            if group.kind == SELECT:
                total = sum(b.weight for b in group.buckets)
                for bucket in group.buckets:
                    outs += _outputs(entries, topo, dpid, bucket.actions,
                                     share * bucket.weight / total)
            else:
                ports = topo.switch(dpid).ports
                live = [b for b in group.buckets if b.watch_port in ports
                        and ports[b.watch_port].live]
                if live:
                    outs += _outputs(entries, topo, dpid, live[0].actions, share)
    return outs


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
