"""Next hops, protection and the plan in force, updated only where a change reaches.

On fattree,16 (320 switches, 1,024 hosts) a fresh computation of next hops, backups and
plan takes ~7 s, and a single link loss changes ~5,000 of the plan's 768,000 entries
and groups: nearly every destination's DAG crosses any one cable, but within each
destination only a few switches see it.  ``Routing`` keeps, per destination switch,
everything the fresh computation derives (distances, DAG rows, next hops, reachability
bitsets, backups and detour paths, each switch's actions) and after a change rebuilds
only the pieces whose inputs changed.  Each cached piece has an exact test:

* distances toward d (and in each detour tree) are brought up to date in place by
  paths.redistance, which searches only where they change (a removed edge on no
  shortest path, or whose tail keeps another neighbour one hop closer, changes
  nothing); then only the rows (DAG row, tree hop) of switches whose distance,
  neighbours' distance or own edges changed are rebuilt;
* reachability bitsets (protection.reach_bitsets) change for rebuilt rows and, in DAG
  order, upstream of them;
* a switch's backups toward d (protection.backups_at) depend on its next hops, its
  edges, its neighbours' reachability and DAG membership, and the detour trees it
  consulted; of a tree, only whether the switch is in it decides which detour it
  takes, so a switch whose tree changed elsewhere keeps its detour and only the
  detour's path (protection.detour_path) is walked again;
* a switch's forwarding toward d is a shape (plan.route_shape) of its next hops and
  their backups; the groups a shape needs are shared by every destination whose
  shape needs them and leave with the last, and their ids (plan.group_ids) change only
  where a switch's set of group keys did; host entries depend on the destination's
  hosts.

So the result equals a fresh computation; tests/test_routing.py checks that through
random link, switch and host changes against compute_next_hops + plan_protection +
build_plan.  A change of the switch set, policy, or hash-splitting switches, or VLAN
ids running out, starts afresh (also exact, only slower); a fabric that needs more
detours toward one destination than there are VLAN ids (4094; ids are per destination,
since detour entries also match its label) starts afresh at every update, protecting
what fits, in a fresh computation's order.

``update`` returns the plan keys it touched per switch ({dpid: keys}, or None after a
fresh start), so the reconciler diffs those and not the whole table.
"""

from __future__ import annotations

import heapq

from .memory import cycle_collector_paused, exempt_from_collection
from .paths import StableIds, choices_to_redo, fabric, hashed_start, redistance
from .pipeline import (
    LABEL_SPAN,
    control_entries,
    detour_entry,
    egress_entry,
    ingress_entry,
    label_entry,
    label_mac,
    learning_entry,
    link_port_entries,
    punt_entries,
    split_miss_entry,
)
from .plan import (
    Buckets,
    GroupIds,
    group_item_keys,
    host_index_start,
    ingress_actions,
    local_host_items,
    route_shape,
    shape_items,
    shape_keys,
    switch_labels,
)
from .protection import (
    TAG_FIRST,
    TAG_LAST,
    Backup,
    backups_at,
    detour_path,
    detour_tree,
    tree_seed,
)
from .topology import Topology

INCREMENTAL_POLICIES = ("shortest", "ecmp")  # others pass their next hops in


class _Destination:
    """What is kept toward one destination switch."""

    __slots__ = ("dist", "dag", "hops", "watch", "reach", "backups", "routes", "shapes",
                 "consulted")

    def __init__(self):
        self.dist: dict = {}  # switch -> hops to d
        self.dag: dict = {}  # switch (not d) -> [(neighbour, port)] strictly closer
        self.hops: dict = {}  # switch -> ((port, weight), ...) in force
        self.watch: dict = {}  # switch with hops -> bits its backups read (_watched_bits)
        self.reach: dict = {}  # switch -> bitset (protection.reach_bitsets)
        self.backups: dict = {}  # switch -> [(port, Backup (tag: its key) | None, path)]
        self.routes: dict = {}  # switch -> actions of its label entry for d
        self.shapes: dict = {}  # switch -> plan.route_shape of its forwarding toward d
        self.consulted: dict = {}  # switch -> detour keys its backups looked at


class Routing:
    """See the module docstring.  ``plan``, ``next_hops`` and ``backups`` are the state
    in force (read them, do not change them)."""

    def __init__(self, stretch: int = 0, protect: bool = True, host_idle_timeout: int = 0,
                 admission_ports=()):
        self.stretch = stretch
        self.protect = protect
        self.host_idle_timeout = host_idle_timeout
        self.admission_ports = tuple(admission_ports)  # pipeline.admission_entries
        self._fresh_key = None
        self._starting = True
        self._saturated = False  # the last fresh computation ran out of VLAN ids
        self.plan: dict = {}
        self.next_hops: dict = {}
        self.backups: dict = {}
        self.unprotected: set = set()
        self.detours: dict = {}
        self.labels: dict = {}
        self.label_addresses: dict = {}
        self._label_hosts: dict = {}

    # -- state ------------------------------------------------------------------------

    def _reset(self, fab, key) -> None:
        self._fresh_key = key
        self.plan: dict = {dpid: {} for dpid in fab.nodes}
        self.next_hops: dict = {}  # (u, d) -> ((port, weight), ...)
        self.backups: dict = {}  # (u, p, d) -> Backup, tags as VLAN ids
        self.unprotected: set = set()  # (u, p, d)
        self.detours: dict = {}  # (d, VLAN id) -> {switch: out port, or None at d}
        self._bit = {node: 1 << i for i, node in enumerate(fab.nodes)}
        self.labels = switch_labels(fab.nodes)  # dpid -> label (plan.switch_labels)
        self._indexes: dict = {}  # d -> StableIds of its hosts (plan.host_indexes)
        self.label_addresses: dict = {}  # mac -> label address
        self._label_hosts: dict = {}  # label address -> mac
        self._dests: dict = {}  # d -> _Destination
        self._fab = None  # the Fabric of the last update
        self._hosts: dict = {}  # mac -> (dpid, port)
        self._hosts_at: dict = {}  # d -> {mac: port}
        self._trees: dict = {}  # detour key -> (tree, distances)
        self._tree_users: dict = {}  # detour key -> switches whose backups consulted it
        self._detour_users: dict = {}  # detour key -> {(u, p): path}
        self._tags: dict = {}  # detour key -> VLAN id (unique per destination)
        self._tag_ids: dict = {}  # d -> StableIds of its detour keys (protection.tag_ids)
        self._keys_toward: dict = {}  # d -> its detour keys with users (or just come)
        homes: tuple = ({}, {})
        self._group_ids: dict = {dpid: GroupIds(homes) for dpid in fab.nodes}
        self._group_users: dict = {dpid: {} for dpid in fab.nodes}  # u -> group key -> {d}
        self._keys_changed: dict = {}  # u -> group keys that may have come or gone
        self._made: dict = {}  # (u, shape) -> (actions, items), this update
        self._buckets = Buckets()
        self._overflow = False
        self._changed_detours: set = set()  # detour keys whose users or paths changed
        self._touched: dict = {}
        self._ports: dict = {}  # dpid -> the port numbers its punt entries are for
        self._port_set_version = None  # (topology, its port_set_version) they are as of
        for dpid in fab.nodes:
            for item in control_entries(self.admission_ports):
                self._put(dpid, item)
            if dpid in key[2]:
                self._put(dpid, split_miss_entry())

    def _put(self, dpid: int, item) -> None:
        key = item.key
        entries = self.plan[dpid]
        if self._starting:  # nothing to compare with, nothing to report
            entries[key] = item
        elif entries.get(key) != item:
            entries[key] = item
            self._touched.setdefault(dpid, set()).add(key)

    def _drop(self, dpid: int, key) -> None:
        entries = self.plan.get(dpid)
        if entries is not None and entries.pop(key, None) is not None:
            self._touched.setdefault(dpid, set()).add(key)

    def host_of(self, label_address: str) -> str | None:
        """The MAC of the host a label address stands for (a frame in flight that
        missed its egress entry reaches the controller with one)."""
        return self._label_hosts.get(label_address)

    # -- the update -------------------------------------------------------------------

    def update(self, topo: Topology, policy: str = "ecmp", proposed: dict | None = None,
               hash_split_switches: frozenset = frozenset()) -> dict | None:
        """Bring the state to ``topo``.  Under INCREMENTAL_POLICIES the next hops are
        derived here; any other policy passes its NextHops (te.py) as ``proposed``.
        Returns {dpid: plan keys touched}, or None when the state started afresh."""
        with cycle_collector_paused():
            fab = fabric(topo.graph)
            key = (tuple(fab.nodes), policy if proposed is None else None,
                   frozenset(hash_split_switches) & set(fab.nodes))
            # Once VLAN ids ran out, which next hops got one depends on the order a
            # fresh computation takes: only another fresh one gives the same answer.
            fresh = key != self._fresh_key or self._saturated
            if fresh:
                self._reset(fab, key)
            self._touched = {}
            self._starting = fresh
            self._update(topo, fab, proposed)
            if self._overflow and not fresh:  # VLAN ids ran out: as a fresh computation
                self._reset(fab, key)
                self._starting = fresh = True
                self._update(topo, fab, proposed)
            self._saturated = fresh and self._overflow
            self._starting = False
            if fresh:  # the state just built will live on: spare the collector walking it
                # (before the collector is back: its first allocation after the pause
                # would otherwise collect all of it once, 0.45 s on fattree,16)
                exempt_from_collection()
        return None if fresh else self._touched

    def _update(self, topo, fab, proposed) -> None:
        self._overflow = False
        removed, added = self._edge_changes(fab)
        self._port_changes(topo)
        self._update_hosts_and_destinations(topo, fab, proposed, removed, added)

    def _port_changes(self, topo) -> None:
        """The punt entries of ports come and gone (pipeline.punt_entries)."""
        version = (id(topo), topo.port_set_version)
        if version == self._port_set_version:
            return
        self._port_set_version = version
        for dpid in self.plan:
            switch = topo.switches.get(dpid)
            ports = switch.ports.keys() if switch is not None else {}.keys()
            known = self._ports.get(dpid, frozenset())
            if ports == known:
                continue
            for item in punt_entries(known - ports):
                self._drop(dpid, item.key)
            for item in punt_entries(ports - known):
                self._put(dpid, item)
            self._ports[dpid] = frozenset(ports)

    def _edge_changes(self, fab) -> tuple[list, list]:
        """The directed edges gone and come, [(u, port, v, v_port)], since the last
        update, and the link ports' entries.  A Fabric is cached per graph version and
        every edge change bumps it, so the same Fabric means the same edges."""
        if fab is self._fab:
            return [], []
        links, before = fab.links, self._fab.links if self._fab is not None else {}
        self._fab = fab
        removed = [(*edge, *far) for edge, far in (before.items() - links.items())]
        added = [(*edge, *far) for edge, far in (links.items() - before.items())]
        if removed or added:
            old_ends, new_ends = set(before.values()), set(links.values())
            for dst, dst_port in old_ends - new_ends:
                for item in link_port_entries(dst_port):
                    self._drop(dst, item.key)
            for dst, dst_port in new_ends - old_ends:
                for item in link_port_entries(dst_port):
                    self._put(dst, item)
        return removed, added

    def _update_hosts_and_destinations(self, topo, fab, proposed, removed, added) -> None:
        """Hosts gone and come, destinations dropped, refreshed or new, then the entries
        of every (switch, destination) whose inputs changed."""
        hosts = {mac: (h.dpid, h.port) for mac, h in topo.hosts.items() if h.dpid in self.plan}
        gone = [(mac, where) for mac, where in self._hosts.items() if hosts.get(mac) != where]
        came = [(mac, where) for mac, where in hosts.items() if self._hosts.get(mac) != where]
        for mac, (dpid, port) in gone:
            self._drop_host(mac, dpid, port)
        self._hosts = hosts
        was_ingress = set(self._hosts_at)
        self._hosts_at = {}
        for mac, (dpid, port) in hosts.items():
            self._hosts_at.setdefault(dpid, {})[mac] = port
        ingress = set(self._hosts_at)
        came += self._renumber_hosts({where[0] for _, where in gone + came},
                                     {mac for mac, _ in came})

        for d in sorted(set(self._dests) - ingress):
            self._drop_destination(d)
        dirty: set = set()  # (u, d) whose entries must be rebuilt
        stale_trees, rerouted = self._repair_trees(fab, removed, added) if removed or added \
            else ({}, {})
        by_destination = self._proposed_by_destination(proposed)
        for d in sorted(ingress):
            if d not in self._dests:
                self._dests[d] = _Destination()
                self._refresh_destination(fab, d, self._dests[d], True, removed, added,
                                          by_destination.get(d), set(), (), dirty)
            elif removed or added or proposed is not None:
                self._refresh_destination(fab, d, self._dests[d], False, removed, added,
                                          by_destination.get(d),
                                          stale_trees.get(d, set()), rerouted.get(d, ()), dirty)
        if self._overflow and not self._starting:
            return  # update() starts afresh, where what does not fit goes unprotected
        self._renumber_tags(dirty)
        for u, d in dirty:
            self._reshape(u, d)
        self._assign_group_ids(dirty)
        self._made = {}
        done: set = set()  # (u, d) whose entries for all of d's hosts were just written
        for u, d in sorted(dirty):
            self._rebuild_routes(u, d, ingress, was_ingress, done)
        for u in ingress ^ was_ingress:  # ingress entries come and go with a switch's hosts
            for d, state in self._dests.items():
                if u in state.routes and (u, d) not in done:
                    self._put_host_entries(u, d, state.routes[u], ingress, was_ingress)
        for mac, (dpid, port) in came:
            address = self.label_addresses[mac]
            self._put(dpid, learning_entry(mac, port, self.host_idle_timeout,
                                           bool(self.admission_ports)))
            for item in local_host_items(mac, address, port):
                self._put(dpid, item)
            for u, actions in self._dests[dpid].routes.items():
                if u in ingress and (u, dpid) not in done:
                    self._put(u, ingress_entry(mac, ingress_actions(address, actions)))

    def _renumber_hosts(self, switches: set, came: set) -> list:
        """Host indexes (plan.host_indexes) on the switches whose hosts changed, and the
        label addresses they make.  Returns the hosts that stayed where they were but
        whose index moved (a collision resolved anew): their entries are written again,
        as for a host that came, after their old egress entry went."""
        renamed = []
        for d in switches:
            macs = self._hosts_at.get(d)
            if not macs:
                self._indexes.pop(d, None)
                continue
            keeper = self._indexes.get(d)
            if keeper is None:
                keeper = self._indexes[d] = StableIds(host_index_start, 0, LABEL_SPAN)
            moved = keeper.assign(set(macs))
            for mac in came.intersection(macs) | moved:
                old = self.label_addresses.get(mac)
                if self._label_hosts.get(old) == mac:
                    del self._label_hosts[old]
                address = self.label_addresses[mac] = label_mac(self.labels[d],
                                                                keeper.ids[mac])
                self._label_hosts[address] = mac
                if mac not in came:
                    self._drop(d, egress_entry(old, mac, 0).key)
                    renamed.append((mac, self._hosts[mac]))
        return renamed

    # -- hosts and destinations ---------------------------------------------------------

    def _drop_host(self, mac: str, dpid: int, port: int) -> None:
        self._drop(dpid, learning_entry(mac, port, 0).key)
        address = self.label_addresses.pop(mac)
        if self._label_hosts.get(address) == mac:
            del self._label_hosts[address]
        for item in local_host_items(mac, address, port):
            self._drop(dpid, item.key)
        state = self._dests.get(dpid)
        for u in state.routes if state else ():
            self._drop(u, ingress_entry(mac, ()).key)

    def _drop_destination(self, d: int) -> None:
        state = self._dests.pop(d)
        for u in list(state.hops):
            self._set_hops(d, state, u, None)
            self._set_backups(d, state, u, [], set())
            self._drop_routes(u, d, state)
        for u in list(state.routes):
            self._drop_routes(u, d, state)

    def _proposed_by_destination(self, proposed) -> dict:
        if proposed is None:
            return {}
        result: dict = {}
        for (u, d), hops in proposed.items():
            result.setdefault(d, {})[u] = hops
        return result

    # -- one destination ----------------------------------------------------------------

    def _refresh_destination(self, fab, d, state, anew, removed, added, proposed,
                             stale_trees, rerouted, dirty) -> None:
        """Bring one destination's distances, DAG, next hops and backups up to date
        (``anew``: a destination just come, everything from scratch).
        ``stale_trees`` and ``rerouted``: this destination's part of what
        _repair_trees returns."""
        if anew:
            state.dist = fab.distances(d)
            rows = set(state.dist) - {d}
        else:
            moved = redistance(fab, state.dist, removed, added)
            rows = choices_to_redo(fab, state.dist, moved, removed, added)
        for u in rows:
            if u in state.dist and u != d:
                state.dag[u] = fab.dag_row(u, state.dist, self.stretch)
            else:
                state.dag.pop(u, None)
        recheck = set(rows)
        # next hops
        if proposed is not None or self._fresh_key[1] is None:
            proposed = proposed or {}
            candidates = set(state.hops) | set(proposed)
        else:
            proposed = {u: self._policy_hops(fab, u, state) for u in rows}
            candidates = rows
        for u in candidates:
            hops = proposed.get(u)
            if hops != state.hops.get(u):
                self._set_hops(d, state, u, hops)
                recheck.add(u)
                dirty.add((u, d))
        for u in recheck:  # next hops, or where they lead, may have changed
            if u in state.hops:
                state.watch[u] = self._watched_bits(fab, state, u)
            else:
                state.watch.pop(u, None)
        if not self.protect:
            return
        if not anew:
            recheck.update(self._neighbours_changed(state, removed, added))
        # A switch's backups read its neighbours' bitsets only at its own bit and its
        # next hops' (protection.backups_at), and their DAG membership.
        watch = state.watch
        for w, flipped in self._update_reach(fab, d, state, rows).items():
            for u in fab.into.get(w, ()):
                if u not in recheck and (flipped is None or flipped & watch.get(u, 0)):
                    recheck.add(u)
        recheck |= stale_trees
        for u in recheck:
            if u in state.hops and u in fab.out:
                consulted: set = set()
                found = backups_at(fab, u, d, [p for p, _ in state.hops[u]], state.dag,
                                   state.reach, self._bit, self._tree_for(fab, consulted),
                                   self._may_tag)
            else:
                found, consulted = [], set()
            if found != state.backups.get(u, []) or consulted != state.consulted.get(u, set()):
                if found != state.backups.get(u, []):
                    dirty.add((u, d))
                self._set_backups(d, state, u, found, consulted)
        for key, (u, p) in rerouted:
            if u not in recheck:
                self._follow_tree(fab, d, state, key, u, p, dirty)

    def _follow_tree(self, fab, d, state, key, u, p, dirty) -> None:
        """u's detour for port p after its tree was mended in place: the same key (the
        mending changed no switch's distance, so no switch joined or left the tree, and
        backups_at would pick this key again), the tree's first hop and path now."""
        tree = self._trees[key][0]
        found = state.backups[u]
        for i, (q, backup, path) in enumerate(found):
            if q != p or backup is None or backup.tag != key:
                continue
            new_path = detour_path(fab, tree, u, d)
            if new_path == path and tree[u] == backup.port:
                return
            found[i] = (p, Backup(tree[u], key), new_path)
            self._set_detour_path(key, (u, p), new_path)
            if tree[u] != backup.port:
                self.backups[(u, p, d)] = Backup(tree[u], self._tags.get(key))
                dirty.add((u, d))
            return

    def _neighbours_changed(self, state, removed, added) -> set:
        """Switches whose backups toward this destination an edge change can alter
        beyond their DAG rows: a removed edge that was a backup, or an added one where
        a backup is not one of the switch's own next hops (a loop-free alternate or a
        detour, which a new neighbour may better) or none was found."""
        found = set()
        for u, port, *_ in removed:
            if any(b is not None and b.port == port for _, b, _ in state.backups.get(u, ())):
                found.add(u)
        for u, *_ in added:
            used = {p for p, _ in state.hops.get(u, ())}
            if any(b is None or b.tag is not None or b.port not in used
                   for _, b, _ in state.backups.get(u, ())):
                found.add(u)
        return found

    def _policy_hops(self, fab, u, state):
        row = state.dag.get(u)
        if not row:
            return None
        if self._fresh_key[1] == "shortest":
            du = state.dist[u]
            return next(((port, 1),) for v, port in fab.out[u] if state.dist.get(v) == du - 1)
        return tuple(sorted((port, 1) for _, port in row))

    def _set_hops(self, d, state, u, hops) -> None:
        if hops is None:
            state.hops.pop(u, None)
            self.next_hops.pop((u, d), None)
        else:
            state.hops[u] = hops
            self.next_hops[(u, d)] = hops

    def _watched_bits(self, fab, state, u) -> int:
        """What u's backups read of its neighbours' bitsets (protection.backups_at): its
        own bit and its next hops'."""
        mask = self._bit[u]
        for port, _ in state.hops.get(u, ()):
            mask |= self._bit[fab.far[(u, port)]]
        return mask

    def _update_reach(self, fab, d, state, rows) -> dict:
        """Recompute the reachability bitsets of ``rows`` and, where they changed, of the
        switches upstream.  Returns {switch: the bits that flipped, or None where it
        joined or left the DAG}."""
        reach, dag, dist, bit = state.reach, state.dag, state.dist, self._bit
        changed = {}
        if d not in reach:
            reach[d] = bit[d]
        for n in rows:
            if n not in dag and n != d and reach.pop(n, None) is not None:
                changed[n] = None
        heap = [(dist[n], n) for n in rows if n in dag]
        heapq.heapify(heap)
        done = set()
        while heap:
            _, n = heapq.heappop(heap)
            if n in done:
                continue
            done.add(n)
            mask = bit[n]
            for v, _ in dag[n]:
                mask |= reach[v]
            old = reach.get(n)
            if old != mask:
                reach[n] = mask
                changed[n] = None if old is None else old ^ mask
                for x in fab.into.get(n, ()):
                    # n is in x's DAG row (Fabric.dag_row) when x is in the DAG and
                    # n is closer, by at most 1 + stretch hops
                    if (x not in done and x in dag and dist[n] < dist[x]
                            and 1 + dist[n] <= dist[x] + self.stretch):
                        heapq.heappush(heap, (dist[x], x))
        return changed

    # -- protection bookkeeping ---------------------------------------------------------

    def _tree_for(self, fab, consulted: set):
        def tree(key):
            consulted.add(key)
            if key not in self._trees:
                self._trees[key] = detour_tree(fab, key)
            return self._trees[key][0]
        return tree

    def _may_tag(self, key) -> bool:
        """Whether detour ``key`` may have a VLAN id.  A new key allowed one counts at
        once (as protection.plan_protection's may_tag): one switch may ask for several
        before any of them is used.  _renumber_tags forgets it if nobody used it."""
        in_use = self._keys_toward.get(key[1], set())
        if key in self._detour_users or key in in_use:
            return True
        if len(in_use) < TAG_LAST - TAG_FIRST + 1:
            self._keys_toward.setdefault(key[1], in_use).add(key)
            self._changed_detours.add(key)
            return True
        self._overflow = True
        return False

    def _repair_trees(self, fab, removed, added) -> tuple[dict, dict]:
        """Bring the kept detour trees up to date with the edge changes, in place
        (paths.redistance; a tree whose cable is gone is dropped).  Returns, by
        destination d, ({d: switches whose backups must be looked at again}: those that
        consulted a dropped tree, or a tree they joined or left; {d: [(key, (u, p))]}:
        the detour users whose path crosses a switch whose hop changed: they keep their
        detour, only its path moves)."""
        recheck, rerouted = {}, {}
        for key, (tree, dist) in list(self._trees.items()):
            element, d = key
            if element[0] == "link" and (element[1], element[2]) not in fab.far:
                del self._trees[key]
                recheck.setdefault(d, set()).update(self._tree_users.get(key, ()))
                continue
            if not any(tree.get(u) == port for u, port, *_ in removed) and not any(
                    v in dist and dist.get(u, dist[v] + 1) > dist[v] for u, _, v, _ in added):
                continue  # every tree path is intact and no new edge leads closer
            moved = redistance(fab, dist, removed, added, self._usable(fab, element))
            came_or_went = {x for x, old in moved.items() if old is None or x not in dist}
            if came_or_went:
                recheck.setdefault(d, set()).update(
                    came_or_went.intersection(self._tree_users.get(key, ())))
            mended = set()
            skip = fab.without_cable(element[1], element[2]) if element[0] == "link" else ()
            seed = tree_seed(key)
            for x in choices_to_redo(fab, dist, moved, removed, added):
                if x == d:
                    continue
                port = fab.tree_hop(x, dist, skip, seed) if x in dist else None
                if port != tree.get(x):
                    if port is None:
                        del tree[x]
                    else:
                        tree[x] = port
                    mended.add(x)
            if mended:
                rerouted.setdefault(d, []).extend(
                    (key, user) for user, path in self._detour_users.get(key, {}).items()
                    if user[0] in mended or not mended.isdisjoint(path))
        return recheck, rerouted

    def _usable(self, fab, element):
        """The edges a detour tree around ``element`` may use (see Fabric.without_cable)."""
        if element[0] == "node":
            skipped = element[1]
            return lambda u, port, v, v_port: skipped not in (u, v)
        u0, p0 = element[1], element[2]
        far = fab.far[(u0, p0)]
        links = fab.links

        def usable(u, port, v, v_port):
            if (u, port) == (u0, p0):
                return False
            if v_port is None:
                v_port = links.get((u, port), (None, None))[1]
            return not (u == far and v == u0 and v_port == p0)
        return usable

    def _set_backups(self, d, state, u, found, consulted) -> None:
        for key in consulted:
            self._tree_users.setdefault(key, set()).add(u)
        for key in state.consulted.get(u, set()) - consulted:  # a tree nobody consults goes
            users = self._tree_users.get(key)
            if users is not None:
                users.discard(u)
                if not users:
                    del self._tree_users[key]
                    self._trees.pop(key, None)
        for p, backup, path in state.backups.get(u, []):
            self.backups.pop((u, p, d), None)
            self.unprotected.discard((u, p, d))
            if path is not None:
                self._set_detour_path(backup.tag, (u, p), None)
        for p, backup, path in found:
            if backup is None:
                self.unprotected.add((u, p, d))
                continue
            if path is not None:
                self._set_detour_path(backup.tag, (u, p), path)
                backup = Backup(backup.port, self._tags.get(backup.tag))
            self.backups[(u, p, d)] = backup
        if found:
            state.backups[u] = found
            state.consulted[u] = consulted
        else:
            state.backups.pop(u, None)
            state.consulted.pop(u, None)

    def _set_detour_path(self, key, user, path) -> None:
        users = self._detour_users.setdefault(key, {})
        if path is None:
            users.pop(user, None)
        else:
            users[user] = path
            self._keys_toward.setdefault(key[1], set()).add(key)
        self._changed_detours.add(key)

    def _renumber_tags(self, dirty: set) -> None:
        """VLAN ids for the detour keys in use (protection.tag_ids, a function of each
        destination's set of keys), detour entries where they changed, and the pairs
        whose backups carry a tag that moved."""
        changed, self._changed_detours = self._changed_detours, set()
        toward: dict = {}
        for key in changed:
            toward.setdefault(key[1], set()).add(key)
        moved, old = set(), {}  # keys whose VLAN id came, went or moved; their old ids
        for d, keys in toward.items():
            in_use = self._keys_toward.setdefault(d, set())
            for key in keys:
                if not self._detour_users.get(key):
                    self._detour_users.pop(key, None)
                    in_use.discard(key)
            ids = self._tag_ids.get(d)
            if ids is None:
                ids = self._tag_ids[d] = StableIds(hashed_start, TAG_FIRST,
                                                   TAG_LAST - TAG_FIRST + 1)
            before = dict(ids.ids)
            came = ids.assign(set(in_use), keys)
            for key in came | {k for k in keys if k in before and k not in ids.ids}:
                moved.add(key)
                old[key] = before.get(key)
                if key in ids.ids:
                    self._tags[key] = ids.ids[key]
                else:
                    self._tags.pop(key, None)
            if not in_use:
                del self._tag_ids[d], self._keys_toward[d]
        kept = {}  # (d, VLAN id) -> the entries of a detour whose id stays: only differences go
        for key in moved | changed:
            d = key[1]
            vlan = old[key] if key in moved else self._tags.get(key)
            if vlan is None or self.detours.get((d, vlan)) is None:
                continue
            if key in moved:
                for dpid, port in self.detours.pop((d, vlan)).items():
                    self._drop(dpid, detour_entry(self.labels[d], vlan, port).key)
            else:
                kept[(d, vlan)] = self.detours.pop((d, vlan))
        for key in moved | changed:
            d, vlan = key[1], self._tags.get(key)
            if vlan is None:
                continue
            union: dict = {}
            for path in self._detour_users[key].values():
                union.update(path)
            self.detours[(d, vlan)] = union
            before = kept.pop((d, vlan), {})
            for dpid, port in before.items():
                if dpid not in union:
                    self._drop(dpid, detour_entry(self.labels[d], vlan, port).key)
            for dpid, port in union.items():
                if dpid in self.plan and (dpid not in before or before[dpid] != port):
                    self._put(dpid, detour_entry(self.labels[d], vlan, port))
        for key in moved | changed:  # new users and moved tags: the backups' VLAN ids
            d, vlan = key[1], self._tags.get(key)
            for u, p in self._detour_users.get(key, {}):
                backup = self.backups[(u, p, d)]
                if backup.tag != vlan:
                    self.backups[(u, p, d)] = Backup(backup.port, vlan)
                    dirty.add((u, d))

    def _reshape(self, u, d) -> None:
        """u's route shape toward d (plan.route_shape) from its next hops and backups
        now, holding the group keys it needs and releasing those it no longer does."""
        state = self._dests.get(d)
        hops = state.hops.get(u) if state is not None else None
        shape = (route_shape(u, d, hops, self.backups, u in self._fresh_key[2])
                 if hops is not None else None)
        old = state.shapes.get(u) if state is not None else None
        if shape == old:
            return
        if old is not None:
            self._release(u, d, old)
        if shape is None:
            state.shapes.pop(u, None)
            return
        state.shapes[u] = shape
        users, changed = self._group_users[u], self._keys_changed.setdefault(u, set())
        for key in shape_keys(shape):
            if key not in users:
                users[key] = set()
                changed.add(key)
            users[key].add(d)

    def _release(self, u, d, shape) -> None:
        users, changed = self._group_users[u], self._keys_changed.setdefault(u, set())
        for key in shape_keys(shape):
            held = users.get(key)
            if held is not None:
                held.discard(d)
                if not held:
                    del users[key]
                    changed.add(key)

    def _assign_group_ids(self, dirty: set) -> None:
        """Group ids (plan.group_ids, a function of a switch's set of group keys) where
        that set changed: the groups of keys gone or moved leave the plan, and the
        pairs using a key whose id moved are rebuilt."""
        for u, changed in self._keys_changed.items():
            if not changed:
                continue
            ids, users = self._group_ids[u], self._group_users[u]
            before = {**ids.failover.ids, **ids.shared.ids}
            moved = ids.assign(set(users), changed)
            for key in changed | moved:
                old = before.get(key)
                if old is not None and (key not in users or key in moved):
                    for item_key in group_item_keys(key, old):
                        self._drop(u, item_key)
            for key in moved:
                dirty.update((u, d) for d in users.get(key, ()))
        self._keys_changed = {}

    # -- entries ------------------------------------------------------------------------

    def _rebuild_routes(self, u, d, ingress, was_ingress, done) -> None:
        state = self._dests.get(d)
        if state is None:
            return
        shape = state.shapes.get(u)
        if shape is None:
            self._drop_routes(u, d, state)
            return
        made = self._made.get((u, shape))
        if made is None:  # the first pair this update with this shape: its groups
            made = self._made[(u, shape)] = shape_items(shape, self._group_ids[u],
                                                        self._buckets)
            for item in made[1]:
                self._put(u, item)
        actions = made[0]
        if state.routes.get(u) != actions:
            state.routes[u] = actions
            self._put_host_entries(u, d, actions, ingress, was_ingress)
            done.add((u, d))

    def _drop_routes(self, u, d, state) -> None:
        shape = state.shapes.pop(u, None)
        if shape is not None:
            self._release(u, d, shape)
        if state.routes.pop(u, None) is not None:
            self._drop(u, label_entry(self.labels[d], ()).key)
            for mac in self._hosts_at.get(d, ()):
                self._drop(u, ingress_entry(mac, ()).key)

    def _put_host_entries(self, u, d, actions, ingress, was_ingress) -> None:
        """u's label entry for d, and its ingress entries for d's hosts where u has
        hosts (dropped where it no longer has)."""
        self._put(u, label_entry(self.labels[d], actions))
        if u in ingress:
            for mac in self._hosts_at.get(d, ()):
                self._put(u, ingress_entry(mac, ingress_actions(self.label_addresses[mac],
                                                                actions)))
        elif u in was_ingress:
            for mac in self._hosts_at.get(d, ()):
                self._drop(u, ingress_entry(mac, ()).key)
