"""Next hops, protection and the plan in force, updated only where a change reaches.

On fattree,16 (320 switches, 1,024 hosts) a fresh computation of next hops, backups and
plan takes ~7 s, and a single link loss changes ~5,000 of the plan's 768,000 entries
and groups: nearly every destination's DAG crosses any one cable, but within each
destination only a few switches see it.  ``Routing`` keeps, per destination switch,
everything the fresh computation derives (distances, DAG rows, next hops, reachability
bitsets, backups and detour paths, each switch's actions) and after a change rebuilds
only the pieces whose inputs changed.  Each cached piece has an exact test:

* distances and DAG toward d change only when a removed edge was in the DAG (every
  shortest path survives otherwise) or an added edge leads to a switch strictly closer
  to d; then only the rows of switches whose distance, neighbours' distance or own
  edges changed are rebuilt;
* reachability bitsets (protection.reach_bitsets) change for rebuilt rows and, in DAG
  order, upstream of them;
* a switch's backups toward d (protection.backups_at) depend on its next hops, its
  edges, its neighbours' reachability and DAG membership, and the detour trees it
  consulted; a detour tree is kept with its distances and dropped when a removed edge
  was one of its branches or an added edge offers a shorter or earlier-tied branch;
* a switch's entries toward d (plan.route_items) depend on its next hops, their
  backups and the group ids; host entries on the destination's hosts.

So the result equals a fresh computation; tests/test_routing.py checks that through
random link, switch and host changes against compute_next_hops + plan_protection +
build_plan.  A change of the switch set, policy, or hash-splitting switches, or VLAN
ids running out, starts afresh (also exact, only slower).

``update`` returns the plan keys it touched per switch ({dpid: keys}, or None after a
fresh start), so the reconciler diffs those and not the whole table.
"""

from __future__ import annotations

import heapq

from .memory import cycle_collector_paused
from .paths import fabric, settled_after
from .pipeline import (
    control_entries,
    detour_entry,
    learning_entry,
    link_port_entry,
    split_miss_entry,
)
from .plan import Buckets, failover_ids, group_ids, host_route_items, route_items
from .protection import TAG_FIRST, TAG_LAST, Backup, backups_at, detour_tree, tag_ids
from .topology import Topology

INCREMENTAL_POLICIES = ("shortest", "ecmp")  # others pass their next hops in


class _Destination:
    """What is kept toward one destination switch."""

    __slots__ = ("dist", "dag", "hops", "reach", "backups", "routes", "items", "consulted")

    def __init__(self):
        self.dist: dict = {}  # switch -> hops to d
        self.dag: dict = {}  # switch (not d) -> [(neighbour, port)] strictly closer
        self.hops: dict = {}  # switch -> ((port, weight), ...) in force
        self.reach: dict = {}  # switch -> bitset (protection.reach_bitsets)
        self.backups: dict = {}  # switch -> [(port, Backup (tag: its key) | None, path)]
        self.routes: dict = {}  # switch -> actions of its entries for d's hosts
        self.items: dict = {}  # switch -> keys of its groups / split entries for d
        self.consulted: dict = {}  # switch -> detour keys its backups looked at


class Routing:
    """See the module docstring.  ``plan``, ``next_hops`` and ``backups`` are the state
    in force (read them, do not change them)."""

    def __init__(self, stretch: int = 0, protect: bool = True, host_idle_timeout: int = 0):
        self.stretch = stretch
        self.protect = protect
        self.host_idle_timeout = host_idle_timeout
        self._fresh_key = None
        self._starting = True
        self.plan: dict = {}
        self.next_hops: dict = {}
        self.backups: dict = {}
        self.unprotected: set = set()
        self.detours: dict = {}

    # -- state ------------------------------------------------------------------------

    def _reset(self, fab, key) -> None:
        self._fresh_key = key
        self.plan: dict = {dpid: {} for dpid in fab.nodes}
        self.next_hops: dict = {}  # (u, d) -> ((port, weight), ...)
        self.backups: dict = {}  # (u, p, d) -> Backup, tags as VLAN ids
        self.unprotected: set = set()  # (u, p, d)
        self.detours: dict = {}  # VLAN id -> {switch: out port, or None at d}
        self._bit = {node: 1 << i for i, node in enumerate(fab.nodes)}
        self._gids = group_ids(fab.nodes)
        self._dests: dict = {}  # d -> _Destination
        self._links: dict = {}  # (src, src_port) -> (dst, dst_port)
        self._hosts: dict = {}  # mac -> (dpid, port)
        self._hosts_at: dict = {}  # d -> {mac: port}
        self._trees: dict = {}  # detour key -> (tree, distances)
        self._tree_users: dict = {}  # detour key -> switches whose backups consulted it
        self._detour_users: dict = {}  # detour key -> {(u, p): path}
        self._tags: dict = {}  # detour key -> VLAN id
        self._protected: dict = {dpid: set() for dpid in fab.nodes}  # u -> {(d, p)}
        self._ff_ids: dict = {dpid: {} for dpid in fab.nodes}
        self._buckets = Buckets()
        self._overflow = False
        self._protected_changed: set = set()
        self._changed_detours: set = set()  # detour keys whose users or paths changed
        self._touched: dict = {}
        for dpid in fab.nodes:
            for item in control_entries():
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
            fresh = key != self._fresh_key
            if fresh:
                self._reset(fab, key)
            self._touched = {}
            self._starting = fresh
            self._update(topo, fab, proposed)
            if self._overflow and not fresh:  # VLAN ids ran out: as a fresh computation
                self._reset(fab, key)
                self._starting = fresh = True
                self._update(topo, fab, proposed)
            self._starting = False
            return None if fresh else self._touched

    def _update(self, topo, fab, proposed) -> None:
        self._overflow = False
        links = {(link.src, link.src_port): (link.dst, link.dst_port) for link in topo.links()}
        removed, added = [], []  # (u, port, v, v_port): directed edges gone and come
        for u, port in set(self._links) | set(links):
            old, new = self._links.get((u, port)), links.get((u, port))
            if old != new:
                if old is not None:
                    removed.append((u, port, *old))
                if new is not None:
                    added.append((u, port, *new))
        for dst, dst_port in {v for v in self._links.values()} - set(links.values()):
            self._drop(dst, link_port_entry(dst_port).key)
        for dst, dst_port in set(links.values()) - set(self._links.values()):
            self._put(dst, link_port_entry(dst_port))
        self._links = links

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

        for d in sorted(set(self._dests) - ingress):
            self._drop_destination(d)
        dirty: set = set()  # (u, d) whose entries must be rebuilt
        stale_trees = self._repair_trees(fab, removed, added)
        by_destination = self._proposed_by_destination(proposed)
        for d in sorted(ingress):
            if d not in self._dests:
                self._dests[d] = _Destination()
                self._refresh_destination(fab, d, self._dests[d], None, removed, added,
                                          by_destination.get(d), stale_trees, dirty)
            else:
                self._refresh_destination(fab, d, self._dests[d], removed + added, removed,
                                          added, by_destination.get(d), stale_trees, dirty)
        if self._overflow:
            return
        self._renumber_tags(dirty)
        self._renumber_failover_groups(dirty)
        done: set = set()  # (u, d) whose entries for all of d's hosts were just written
        for u, d in sorted(dirty):
            self._rebuild_routes(u, d, ingress, was_ingress, done)
        for u in ingress ^ was_ingress:  # counting entries come and go with a switch's hosts
            for d, state in self._dests.items():
                if u in state.routes and (u, d) not in done:
                    self._put_host_entries(u, d, state.routes[u], ingress, was_ingress)
        for mac, (dpid, port) in came:
            self._put(dpid, learning_entry(mac, port, self.host_idle_timeout))
            for item in host_route_items(mac, (("output", port),), True):
                self._put(dpid, item)
            for u, actions in self._dests[dpid].routes.items():
                if (u, dpid) not in done:
                    for item in host_route_items(mac, actions, u in ingress):
                        self._put(u, item)

    # -- hosts and destinations ---------------------------------------------------------

    def _drop_host(self, mac: str, dpid: int, port: int) -> None:
        self._drop(dpid, learning_entry(mac, port, 0).key)
        state = self._dests.get(dpid)
        for u in [dpid, *(state.routes if state else ())]:
            for item in host_route_items(mac, (), True):
                self._drop(u, item.key)

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

    def _refresh_destination(self, fab, d, state, edges, removed, added, proposed,
                             stale_trees, dirty) -> None:
        """Bring one destination's distances, DAG, next hops and backups up to date.
        ``edges`` None: everything anew."""
        rows = None if edges is None else settled_after(fab, state.dist, removed, added)
        if rows is None:  # distances changed: search again
            old_dist = state.dist
            state.dist = fab.distances(d)
            if edges is None:
                rows = set(state.dist) - {d}
            else:
                moved = {n for n in set(old_dist) | set(state.dist)
                         if old_dist.get(n) != state.dist.get(n)}
                rows = moved | {u for n in moved if n in fab.into for u in fab.into[n]}
                rows |= {edge[0] for edge in edges}
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
        if not self.protect:
            return
        if edges is not None:
            recheck.update(self._neighbours_changed(state, removed, added))
        # A switch's backups read its neighbours' bitsets only at its own bit and its
        # next hops' (protection.backups_at), and their DAG membership.
        for w, flipped in self._update_reach(fab, d, state, rows).items():
            for u in fab.into.get(w, ()):
                if flipped is None or flipped & self._watched_bits(fab, state, u):
                    recheck.add(u)
        for key, users in stale_trees.items():
            if key[1] == d:
                recheck.update(users)
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
                    row = dag.get(x)
                    if row and x not in done and any(v == n for v, _ in row):
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
        if key in self._detour_users or len(self._detour_users) < TAG_LAST - TAG_FIRST + 1:
            return True
        self._overflow = True
        return False

    def _repair_trees(self, fab, removed, added) -> dict:
        """Bring the kept detour trees up to date with the edge changes: a changed first
        hop is mended in place (paths.settled_after), changed distances search again
        (a tree whose cable is gone is dropped).  Returns {key: switches whose backups
        must be looked at again}: the users whose path crosses a mended switch, or all
        who consulted a tree searched again."""
        recheck = {}
        for key, (tree, dist) in list(self._trees.items()):
            element = key[0]
            if element[0] == "link" and (element[1], element[2]) not in fab.far:
                del self._trees[key]
                recheck[key] = set(self._tree_users.get(key, ()))
                continue
            usable = self._usable(fab, element)
            touched = settled_after(fab, dist, removed, added, usable)
            if touched is None:
                self._trees[key] = detour_tree(fab, key)
                recheck[key] = set(self._tree_users.get(key, ()))
                continue
            mended = set()
            for x in touched:
                port = next((q for w, q in fab.out[x]
                             if dist.get(w) == dist[x] - 1 and usable(x, q, w, None)), None)
                if port != tree.get(x):
                    tree[x] = port
                    mended.add(x)
            if mended:
                recheck[key] = {u for (u, _p), path in self._detour_users.get(key, {}).items()
                                if u in mended or not mended.isdisjoint(path)}
        return recheck

    def _usable(self, fab, element):
        """The edges a detour tree around ``element`` may use (see Fabric.without_cable)."""
        if element[0] == "node":
            skipped = element[1]
            return lambda u, port, v, v_port: skipped not in (u, v)
        u0, p0 = element[1], element[2]
        far = fab.far[(u0, p0)]
        links = self._links

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
        self._protected_changed.add(u)
        for p, backup, path in state.backups.get(u, []):
            self.backups.pop((u, p, d), None)
            self.unprotected.discard((u, p, d))
            self._protected[u].discard((d, p))
            if path is not None:
                self._set_detour_path(backup.tag, (u, p), None)
        for p, backup, path in found:
            if backup is None:
                self.unprotected.add((u, p, d))
                continue
            self._protected[u].add((d, p))
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
        self._changed_detours.add(key)

    def _renumber_tags(self, dirty: set) -> None:
        """VLAN ids for the detour keys in use (protection.tag_ids, a function of the set
        of keys), detour entries where they changed, and the pairs whose backups carry a
        tag that moved."""
        changed, self._changed_detours = self._changed_detours, set()
        for key in [k for k, users in self._detour_users.items() if not users]:
            del self._detour_users[key]
        old = self._tags
        if set(old) != set(self._detour_users):
            self._tags = tag_ids(self._detour_users)
        moved = {key for key in set(old) | set(self._tags) if old.get(key) != self._tags.get(key)}
        for key in moved | changed:
            vlan = old.get(key)
            if vlan is not None and self.detours.get(vlan) is not None:
                for dpid, port in self.detours.pop(vlan).items():
                    self._drop(dpid, detour_entry(vlan, port).key)
        for key in moved | changed:
            vlan = self._tags.get(key)
            if vlan is None:
                continue
            union: dict = {}
            for path in self._detour_users[key].values():
                union.update(path)
            self.detours[vlan] = union
            for dpid, port in union.items():
                if dpid in self.plan:
                    self._put(dpid, detour_entry(vlan, port))
        for key in moved | changed:
            d = key[1]
            for u, p in self._detour_users.get(key, {}):
                self.backups[(u, p, d)] = Backup(self.backups[(u, p, d)].port, self._tags[key])
                dirty.add((u, d))

    def _renumber_failover_groups(self, dirty: set) -> None:
        """FAST_FAILOVER group ids (plan.failover_ids, a function of a switch's set of
        protected (destination, port)) where that set changed."""
        for u in self._protected_changed:
            keys = self._protected[u]
            old = self._ff_ids[u]
            if set(old) == keys:
                continue
            new = failover_ids(keys)
            self._ff_ids[u] = new
            for d, p in keys:
                if old.get((d, p)) != new[(d, p)]:
                    dirty.add((u, d))
        self._protected_changed = set()

    # -- entries ------------------------------------------------------------------------

    def _rebuild_routes(self, u, d, ingress, was_ingress, done) -> None:
        state = self._dests.get(d)
        if state is None:
            return
        hops = state.hops.get(u)
        if hops is None:
            self._drop_routes(u, d, state)
            return
        actions, items = route_items(u, d, hops, self.backups, self._ff_ids[u], self._gids[d],
                                     u in self._fresh_key[2], self._buckets)
        keys = [item.key for item in items]
        for key in set(state.items.get(u, ())) - set(keys):
            self._drop(u, key)
        for item in items:
            self._put(u, item)
        state.items[u] = keys
        if state.routes.get(u) != actions:
            state.routes[u] = actions
            self._put_host_entries(u, d, actions, ingress, was_ingress)
            done.add((u, d))

    def _drop_routes(self, u, d, state) -> None:
        for key in state.items.pop(u, ()):
            self._drop(u, key)
        if state.routes.pop(u, None) is not None:
            for mac in self._hosts_at.get(d, ()):
                for item in host_route_items(mac, (), True):
                    self._drop(u, item.key)

    def _put_host_entries(self, u, d, actions, ingress, was_ingress) -> None:
        counting = u in ingress
        uncount = not counting and u in was_ingress
        for mac in self._hosts_at.get(d, ()):
            for item in host_route_items(mac, actions, counting):
                self._put(u, item)
            if uncount:
                self._drop(u, host_route_items(mac, actions, True)[1].key)
