"""What every switch's flow tables should hold, computed from the topology, the next hops
of the traffic-engineering policy (te.py) and the backups of protection.py.

Nothing is ever flooded by a switch, so a topology with loops cannot storm: the
controller delivers broadcasts only out of edge ports (Topology.is_edge_port, see
frames.py), and unicast follows trees or DAGs, which cannot loop.  The plan is plain
data in the pipeline's terms (pipeline.py); the Ryu layer sends only the difference
from what each switch holds (reconcile.py).
"""

from __future__ import annotations

import zlib

from .memory import cycle_collector_paused
from .paths import StableIds, stable_ids, tree_towards
from .pipeline import (
    FAST_FAILOVER,
    LABEL_SPAN,
    MAX_SPLIT_SLOTS,
    SELECT,
    Bucket,
    GroupEntry,
    control_entries,
    detour_entry,
    egress_entry,
    ingress_entry,
    label_entry,
    label_mac,
    learning_entry,
    link_port_entry,
    split_actions,
    split_entry,
    split_miss_entry,
)
from .protection import Protection
from .topology import Topology

Plan = dict  # dpid -> {FlowEntry.key or GroupEntry.key: FlowEntry | GroupEntry}


def group_ids(dpids) -> dict[int, int]:
    """The SELECT group id of each destination switch: its dpid when that fits below
    2**31 (readable in dump-groups), else a hash of it.  Stable ids mean a recomputation
    or a restarted controller rewrites the same groups in place."""
    def start(dpid):
        return dpid if 0 < dpid < 2**31 else zlib.crc32(dpid.to_bytes(8, "big"))
    return stable_ids(dpids, start, 1, 2**31 - 1)


def switch_labels(dpids) -> dict[int, int]:
    """Each switch's label (the middle of its hosts' label addresses, pipeline.py): a
    hash of its dpid, stable while the set of switches is."""
    return stable_ids(dpids, _label_start, 0, LABEL_SPAN)


def _label_start(dpid: int) -> int:
    return zlib.crc32(dpid.to_bytes(8, "big"))


def host_indexes(macs) -> dict[str, int]:
    """Each host's index among its switch's hosts (the end of its label address)."""
    return stable_ids(macs, host_index_start, 0, LABEL_SPAN)


def host_index_start(mac: str) -> int:
    return zlib.crc32(mac.encode())


def failover_ids(keys) -> dict:
    """FAST_FAILOVER group ids for one switch's (destination, port) keys: from 2**31 up,
    clear of the SELECT ids."""
    return stable_ids(keys, _failover_start, 2**31, 2**31 - 256)


def failover_id_keeper(homes: dict) -> StableIds:
    """failover_ids kept up to date as a switch's keys change (``homes`` shared by all
    switches: a key's home id is the same everywhere)."""
    return StableIds(_failover_start, 2**31, 2**31 - 256, homes)


def _failover_start(key) -> int:
    return zlib.crc32(b"%d:%d" % key)


def next_hops_towards(topo: Topology, root: int) -> dict[int, int]:
    """The shortest-path tree toward ``root``: {switch: output port}."""
    return tree_towards(topo.graph, root)


def build_plan(topo: Topology, host_idle_timeout: int = 0, next_hops: dict | None = None,
               protection: Protection | None = None,
               hash_split_switches: frozenset = frozenset()) -> Plan:
    """Every switch's desired entries and groups, {dpid: {key: FlowEntry | GroupEntry}}.
    ``next_hops`` ({(u, d): ((port, weight), ...)}, see te.py) defaults to the
    shortest-path tree; with ``protection`` (protection.py) every next hop that has a
    backup goes through a FAST_FAILOVER group.  Switches in ``hash_split_switches``
    split traffic over several next hops through the split table (pipeline.py) rather
    than a SELECT group."""
    with cycle_collector_paused():
        return _build_plan(topo, host_idle_timeout, next_hops, protection,
                           hash_split_switches)


def split_slots(hops: tuple) -> list[int]:
    """The next hop of each hash slot, by weight: ((port, weight), ...) as te.py gives
    them.  Weights summing to more than MAX_SPLIT_SLOTS are rounded to that many slots
    (largest remainders), every next hop keeping at least one."""
    total = sum(w for _, w in hops)
    if total <= MAX_SPLIT_SLOTS:
        counts = dict(hops)
    else:
        exact = {port: w * MAX_SPLIT_SLOTS / total for port, w in hops}
        counts = {port: max(1, int(x)) for port, x in exact.items()}
        while sum(counts.values()) < MAX_SPLIT_SLOTS:
            counts[max(exact, key=lambda p: (exact[p] - counts[p], -p))] += 1
        while sum(counts.values()) > MAX_SPLIT_SLOTS:
            shrinkable = [p for p in counts if counts[p] > 1]
            if not shrinkable:  # more next hops than slots: one slot each
                break
            counts[min(shrinkable, key=lambda p: (exact[p] - counts[p], p))] -= 1
    return [port for port, _ in sorted(hops) for _ in range(counts[port])]


class Buckets:
    """Group buckets, one object per distinct bucket: a plan holds hundreds of thousands
    of groups with a few distinct buckets per switch (fewer to make, less memory)."""

    def __init__(self):
        self.made: dict = {}

    def primary(self, port: int) -> Bucket:
        key = ("primary", port)
        if key not in self.made:
            self.made[key] = Bucket((("output", port),), watch_port=port)
        return self.made[key]

    def secondary(self, backup) -> Bucket:
        # The backup port may be the one the frame came in on (a detour that turns back,
        # an alternate upstream): OpenFlow drops output to the ingress port, so the
        # bucket first clears in_port (measured: without it OVS blackholed a fat-tree
        # core-link cut; see the codec for the OpenFlow 1.5 gap).
        key = ("backup", backup.port, backup.tag)
        if key not in self.made:
            detour = ((("clear_in_port",),)
                      + ((("push_vlan", backup.tag),) if backup.tag else ())
                      + (("output", backup.port),))
            self.made[key] = Bucket(detour, watch_port=backup.port)
        return self.made[key]


def route_items(u: int, d: int, hops: tuple, backups: dict, failover_ids_at_u: dict,
                group_id: int, split: bool, buckets: Buckets) -> tuple[tuple, list]:
    """Switch u's forwarding toward destination switch d: (the actions its entries for
    d's hosts take, the groups and split entries those need).  ``backups``: Protection's
    {(u, p, d): Backup}; ``failover_ids_at_u``: {(d, p): id of u's FAST_FAILOVER group};
    ``group_id``: d's SELECT / split id; ``split``: u splits by hashing rather than by
    a SELECT group."""
    items = []

    def via(port: int) -> tuple:
        """Actions sending out of ``port``, protected where possible."""
        backup = backups.get((u, port, d))
        if backup is None:
            return (("output", port),)
        group = GroupEntry(failover_ids_at_u[(d, port)], FAST_FAILOVER,
                           (buckets.primary(port), buckets.secondary(backup)))
        items.append(group)
        return (("group", group.group_id),)

    if len(hops) == 1:
        return via(hops[0][0]), items
    if split:
        slots = split_slots(hops)
        items.extend(split_entry(group_id, slot, via(port)) for slot, port in enumerate(slots))
        return split_actions(group_id, len(slots)), items
    group = GroupEntry(group_id, SELECT, tuple(Bucket(via(port), weight=weight)
                                               for port, weight in sorted(hops)))
    items.append(group)
    return (("group", group_id),), items


def ingress_actions(label_address: str, route: tuple) -> tuple:
    """An ingress entry's actions for a host of another switch: its label address, then
    the route toward that switch (route_items)."""
    return (("set_field", "eth_dst", label_address),) + route


def local_host_items(mac: str, label_address: str, port: int) -> list:
    """A host's entries at its own switch: from its neighbours there (ingress), and
    from the fabric (egress)."""
    return [ingress_entry(mac, (("output", port),)), egress_entry(label_address, mac, port)]


def _build_plan(topo, host_idle_timeout, next_hops, protection, hash_split_switches) -> Plan:
    if next_hops is None:
        next_hops = {(u, h.dpid): ((port, 1),) for h in topo.hosts.values()
                     for u, port in next_hops_towards(topo, h.dpid).items()}
    backups = protection.backups if protection else {}
    plan: Plan = {dpid: {} for dpid in topo.graph}
    gids = group_ids(topo.graph.nodes)
    protected: dict = {u: set() for u in plan}  # u -> its (destination, port) with a backup
    for w, p, d in backups:
        if w in protected:
            protected[w].add((d, p))
    ff_ids = {u: failover_ids(keys) for u, keys in protected.items()}

    def add(dpid: int, item) -> None:
        plan[dpid][item.key] = item

    for dpid in topo.graph:
        for item in control_entries():
            add(dpid, item)
    for link in topo.links():
        add(link.dst, link_port_entry(link.dst_port))
    if protection:
        for tag, hops in protection.detours.items():
            for dpid, port in hops.items():
                if dpid in plan:
                    add(dpid, detour_entry(tag, port))
    for u in hash_split_switches & set(plan):
        add(u, split_miss_entry())
    buckets = Buckets()
    routes_to: dict = {}  # d -> {u: actions}
    for (u, d), hops in next_hops.items():
        if u not in plan:
            continue
        actions, items = route_items(u, d, hops, backups, ff_ids[u], gids[d],
                                     u in hash_split_switches, buckets)
        routes_to.setdefault(d, {})[u] = actions
        for item in items:
            add(u, item)
    labels = switch_labels(topo.graph.nodes)
    hosts_at: dict = {}  # dpid -> [Host]
    for host in topo.hosts.values():
        if host.dpid in plan:
            hosts_at.setdefault(host.dpid, []).append(host)
    for d, routes in routes_to.items():
        if d in hosts_at:
            for u, actions in routes.items():
                add(u, label_entry(labels[d], actions))
    for d, hosts in hosts_at.items():
        index = host_indexes([h.mac for h in hosts])
        for host in hosts:
            address = label_mac(labels[d], index[host.mac])
            add(d, learning_entry(host.mac, host.port, host_idle_timeout))
            for item in local_host_items(host.mac, address, host.port):
                add(d, item)
            for u, actions in routes_to.get(d, {}).items():
                if u in hosts_at:
                    add(u, ingress_entry(host.mac, ingress_actions(address, actions)))
    return plan
