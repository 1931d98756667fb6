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
from .paths import StableIds, hashed_start, stable_ids, tree_towards
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
    link_port_entries,
    punt_entries,
    split_actions,
    split_entry,
    split_miss_entry,
)
from .protection import Protection
from .topology import Topology

Plan = dict  # dpid -> {FlowEntry.key or GroupEntry.key: FlowEntry | GroupEntry}


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


# Groups are shared by content: a switch holds one group per distinct set of buckets,
# whatever the destinations that use it (on fattree,16 an edge switch's SELECT over its
# uplinks serves all 127 other edge switches).  A group's key is its content in the
# terms of route_shape; its id is a hash of that key, stable while the switch's set of
# keys is (FAST_FAILOVER ids from 2**31 up, SELECT and split ids below).
FAILOVER_IDS = (2**31, 2**31 - 256)  # first id, how many
SHARED_IDS = (1, 2**31 - 1)


def is_shared_key(key) -> bool:
    """A SELECT or split key (("select" | "split", ...)), not a FAST_FAILOVER one."""
    return isinstance(key[0], str)


def group_ids(keys) -> dict:
    """The id of each of one switch's group keys (route_shape)."""
    failover = [k for k in keys if not is_shared_key(k)]
    shared = [k for k in keys if is_shared_key(k)]
    return (stable_ids(failover, hashed_start, *FAILOVER_IDS)
            | stable_ids(shared, hashed_start, *SHARED_IDS))


class GroupIds:
    """group_ids of one switch's keys, kept up to date as they come and go (homes
    shared by every switch: a key's home id is the same everywhere)."""

    def __init__(self, homes: tuple[dict, dict]):
        self.failover = StableIds(hashed_start, *FAILOVER_IDS, homes[0])
        self.shared = StableIds(hashed_start, *SHARED_IDS, homes[1])

    def get(self, key) -> int:
        return (self.shared if is_shared_key(key) else self.failover).ids[key]

    def assign(self, keys: set, maybe: set) -> set:
        """Bring the ids to ``keys``, of which only ``maybe`` may have come or gone.
        Returns the keys whose id is new or moved."""
        shared = {k for k in keys if is_shared_key(k)}
        return (self.failover.assign(keys - shared, {k for k in maybe if not is_shared_key(k)})
                | self.shared.assign(shared, {k for k in maybe if is_shared_key(k)}))


def next_hops_towards(topo: Topology, root: int) -> dict[int, int]:
    """The shortest-path tree toward ``root``: {switch: output port}."""
    return tree_towards(topo.graph, root)


def build_plan(topo: Topology, host_idle_timeout: int = 0, next_hops: dict | None = None,
               protection: Protection | None = None,
               hash_split_switches: frozenset = frozenset(), admission_ports=()) -> Plan:
    """Every switch's desired entries and groups, {dpid: {key: FlowEntry | GroupEntry}}.
    ``next_hops`` ({(u, d): ((port, weight), ...)}, see te.py) defaults to the
    shortest-path tree; with ``protection`` (protection.py) every next hop that has a
    backup goes through a FAST_FAILOVER group.  Switches in ``hash_split_switches``
    split traffic over several next hops through the split table (pipeline.py) rather
    than a SELECT group.  ``admission_ports``: admission control's UDP ports
    (pipeline.admission_entries)."""
    with cycle_collector_paused():
        return _build_plan(topo, host_idle_timeout, next_hops, protection,
                           hash_split_switches, tuple(admission_ports))


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

    def secondary(self, port: int, tag: int) -> Bucket:
        # The backup port may be the one the frame came in on (a detour that turns back,
        # an alternate upstream): OpenFlow drops output to the ingress port, so the
        # bucket first clears in_port (measured: without it OVS blackholed a fat-tree
        # core-link cut; see the codec for the OpenFlow 1.5 gap).
        key = ("backup", port, tag)
        if key not in self.made:
            detour = ((("clear_in_port",),)
                      + ((("push_vlan", tag),) if tag else ())
                      + (("output", port),))
            self.made[key] = Bucket(detour, watch_port=port)
        return self.made[key]


def route_shape(u: int, d: int, hops: tuple, backups: dict, split: bool) -> tuple:
    """Switch u's forwarding toward destination switch d as content, before any group
    id: ("one", via), ("select", ((via, weight), ...)) or ("split", (via per slot)),
    where a via is (port, backup port, backup tag), 0 for no backup or no tag; a
    protected via is also the key of its FAST_FAILOVER group.  ``backups``:
    Protection's {(u, p, d): Backup}; ``split``: u splits by hashing rather than by a
    SELECT group."""
    def via(port: int) -> tuple:
        backup = backups.get((u, port, d))
        return (port, 0, 0) if backup is None else (port, backup.port, backup.tag or 0)

    if len(hops) == 1:
        return ("one", via(hops[0][0]))
    if split:
        return ("split", tuple(via(port) for port in split_slots(hops)))
    return ("select", tuple((via(port), weight) for port, weight in sorted(hops)))


def shape_keys(shape: tuple) -> list:
    """The keys of the groups (and split entries) a route shape needs."""
    kind, body = shape
    if kind == "one":
        return [body] if body[1] else []
    vias = body if kind == "split" else [v for v, _ in body]
    return [shape] + [v for v in set(vias) if v[1]]


def shape_items(shape: tuple, ids, buckets: Buckets) -> tuple[tuple, list]:
    """(the actions that send a frame the way ``shape`` says, the groups and split
    entries they use), with ``ids.get(key)`` the switch's group ids."""
    items = []

    def via(v: tuple) -> tuple:
        port, backup_port, tag = v
        if not backup_port:
            return (("output", port),)
        group = GroupEntry(ids.get(v), FAST_FAILOVER,
                           (buckets.primary(port), buckets.secondary(backup_port, tag)))
        items.append(group)
        return (("group", group.group_id),)

    kind, body = shape
    if kind == "one":
        return via(body), items
    group_id = ids.get(shape)
    if kind == "split":
        items.extend(split_entry(group_id, slot, via(v)) for slot, v in enumerate(body))
        return split_actions(group_id, len(body)), items
    items.append(GroupEntry(group_id, SELECT, tuple(Bucket(via(v), weight=weight)
                                                    for v, weight in body)))
    return (("group", group_id),), items


def group_item_keys(key, group_id: int) -> list:
    """The plan keys of what a group key stands for at ``group_id``: the group, or a
    split's entries."""
    if key[0] == "split":
        return [split_entry(group_id, slot, ()).key for slot in range(len(key[1]))]
    return [("group", group_id)]


def ingress_actions(label_address: str, route: tuple) -> tuple:
    """An ingress entry's actions for a host of another switch: its label address, then
    the route toward that switch (route_items)."""
    return (("set_field", "eth_dst", label_address),) + route


def local_host_items(mac: str, label_address: str, port: int) -> list:
    """A host's entries at its own switch: from its neighbours there (ingress), and
    from the fabric (egress)."""
    return [ingress_entry(mac, (("output", port),)), egress_entry(label_address, mac, port)]


def _build_plan(topo, host_idle_timeout, next_hops, protection, hash_split_switches,
                admission_ports) -> Plan:
    if next_hops is None:
        next_hops = {(u, h.dpid): ((port, 1),) for h in topo.hosts.values()
                     for u, port in next_hops_towards(topo, h.dpid).items()}
    backups = protection.backups if protection else {}
    plan: Plan = {dpid: {} for dpid in topo.graph}
    def add(dpid: int, item) -> None:
        plan[dpid][item.key] = item

    for dpid in topo.graph:
        for item in control_entries(admission_ports) + punt_entries(topo.switch(dpid).ports):
            add(dpid, item)
    for link in topo.links():
        for item in link_port_entries(link.dst_port):
            add(link.dst, item)
    labels = switch_labels(topo.graph.nodes)
    if protection:
        for (d, tag), hops in protection.detours.items():
            for dpid, port in hops.items():
                if dpid in plan:
                    add(dpid, detour_entry(labels[d], tag, port))
    for u in hash_split_switches & set(plan):
        add(u, split_miss_entry())
    shapes: dict = {}  # u -> {d: route_shape}
    for (u, d), hops in next_hops.items():
        if u in plan:
            shapes.setdefault(u, {})[d] = route_shape(u, d, hops, backups,
                                                      u in hash_split_switches)
    buckets = Buckets()
    routes_to: dict = {}  # d -> {u: actions}
    for u, by_destination in shapes.items():
        ids = group_ids({k for shape in set(by_destination.values()) for k in shape_keys(shape)})
        made: dict = {}  # shape -> (actions, items): shared by the destinations using it
        for d, shape in by_destination.items():
            if shape not in made:
                made[shape] = shape_items(shape, ids, buckets)
                for item in made[shape][1]:
                    add(u, item)
            routes_to.setdefault(d, {})[u] = made[shape][0]
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
            add(d, learning_entry(host.mac, host.port, host_idle_timeout,
                                  bool(admission_ports)))
            for item in local_host_items(host.mac, address, host.port):
                add(d, item)
            for u, actions in routes_to.get(d, {}).items():
                if u in hosts_at:
                    add(u, ingress_entry(host.mac, ingress_actions(address, actions)))
    return plan
