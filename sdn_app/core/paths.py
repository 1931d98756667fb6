"""Path computations over the switch graph, shared by forwarding, traffic engineering and
protection.  All take a networkx MultiDiGraph of switches whose edges are keyed by
source port; ties are broken by the lowest (neighbour dpid, port) (protection's detour
trees: each in an order of its own, Fabric.tree_hop), so results are deterministic and
paths only move when the topology forces them to.

The searches run on ``Fabric``, the graph's adjacency copied into plain dicts and
lists once per graph version: networkx's views cost ~10x more per step, and protection
runs hundreds of searches per recomputation (measured: 26 s of 34 on fattree,16).
A Fabric is cached on the graph and brought up to date when the graph changes
(Topology bumps ``graph.graph["version"]`` on every change and records the switches
it changed at; a graph without a version is indexed afresh).
"""

from __future__ import annotations

import bisect
import heapq
import zlib


class Fabric:
    """The adjacency of one version of the switch graph.

    ``out[u]``: [(v, port)] sorted; ``into[v]``: predecessors in the graph's own order
    (the order networkx's reversed BFS visits them, so results equal what networkx gives);
    ``cable[(u, port)]``: the (v, port) edges carrying the other direction of that cable;
    ``ring[u]``: ([ring_position(v, port)], [(v, port)] twice over), in ring order
    (tree_hop).
    """

    def __init__(self, graph, previous: Fabric | None = None, changed_at=()):
        """Index ``graph``; with ``previous`` (the Fabric of an earlier version with the
        same switches), copy it and index again only the switches in ``changed_at``
        (those whose edges came or went, which Topology records)."""
        self.nodes = list(graph.nodes)
        self._dags: dict = {}  # (root, stretch) -> dag, see shared_dag
        if previous is None:
            self.out, self.into, self.into_ports, self.far = {}, {}, {}, {}
            self.ring: dict = {}
            self.cable: dict = {}
            self.links: dict = {}  # (u, port) -> (v, v's port), for edges carrying a Link
            changed_at = self.nodes
        else:
            self.out, self.into = dict(previous.out), dict(previous.into)
            self.ring = dict(previous.ring)
            self.into_ports, self.far = dict(previous.into_ports), dict(previous.far)
            self.cable, self.links = dict(previous.cable), dict(previous.links)
            for n in changed_at:
                for _, port in previous.out[n]:
                    self.far.pop((n, port), None)
                    self.links.pop((n, port), None)
                for edge in previous.into_ports[n]:
                    self.cable.pop(previous.links.get(edge), None)
        for n in changed_at:
            self._index(graph, n)

    def _index(self, graph, n) -> None:
        self.out[n] = sorted((v, port) for _, v, port in graph.out_edges(n, keys=True))
        ring = sorted((ring_position(v, port), v, port) for v, port in self.out[n])
        edges = [(v, port) for _, v, port in ring]
        self.ring[n] = ([h for h, _, _ in ring], edges + edges)  # twice: a slice wraps
        self.into[n] = list(graph.pred[n])
        self.into_ports[n] = [(u, port) for u, keys in graph.pred[n].items() for port in keys]
        for _, v, port, data in graph.out_edges(n, keys=True, data=True):
            self.far[(n, port)] = v
            link = data.get("link")
            if link is not None:
                self.links[(n, port)] = (v, link.dst_port)
        for u, _, port, data in graph.in_edges(n, keys=True, data=True):
            link = data.get("link")
            if link is not None:
                self.cable.setdefault((n, link.dst_port), []).append((u, port))

    def distances(self, root, skip_node=None, skip_edges=()) -> dict:
        """Hop count toward ``root`` from every switch that can reach it, in BFS order,
        without ``skip_node`` and the (u, port) edges in ``skip_edges``."""
        if root not in self.out or root == skip_node:
            return {}
        into = self.into
        if skip_edges:  # only the switches those edges land on lose predecessors
            into = dict(into)
            for v in {self.far[edge] for edge in skip_edges if edge in self.far}:
                # a neighbour still reaches v if any of its edges into v is kept
                into[v] = list(dict.fromkeys(u for u, port in self.into_ports[v]
                                             if (u, port) not in skip_edges))
        dist = {root: 0}
        level, frontier = 0, [root]
        while frontier:
            level += 1
            found = []
            for v in frontier:
                for u in into[v]:
                    if u not in dist and u != skip_node:
                        dist[u] = level
                        found.append(u)
            frontier = found
        return dist

    def tree(self, root, skip_node=None, skip_edges=()) -> dict:
        """For every switch that can reach ``root``: the output port of its first hop on
        a shortest path there, lowest (neighbour, port) first."""
        return self.tree_and_distances(root, skip_node, skip_edges)[0]

    def tree_and_distances(self, root, skip_node=None, skip_edges=(),
                           seed: int = 0) -> tuple[dict, dict]:
        """(tree, distances): see tree and distances; ``seed``: see tree_hop."""
        dist = self.distances(root, skip_node, skip_edges)
        return {node: self.tree_hop(node, dist, skip_edges, seed) for node in dist
                if node != root}, dist

    def tree_hop(self, node, dist: dict, skip_edges=(), seed: int = 0) -> int:
        """The port of ``node``'s first hop toward the root of ``dist`` (which must hold
        node): the lowest (neighbour, port) one hop closer, not in ``skip_edges``.

        With ``seed`` (32 bits), the first such (neighbour, port) at or after ``seed``
        on a ring of ring_position values: trees with different seeds (protection's
        detours toward many destinations) spread over the fabric instead of all
        crossing its lowest-numbered switches.  Each edge's place on the ring is its
        own, so a switch's choice moves only when a better neighbour comes or its own
        goes, as with the lowest-first rule (what the incremental repair relies on)."""
        d = dist[node] - 1
        if not seed:
            for nbr, port in self.out[node]:
                if dist.get(nbr) == d and (node, port) not in skip_edges:
                    return port
        else:
            positions, twice = self.ring[node]
            start = bisect.bisect_left(positions, seed)
            for nbr, port in twice[start:start + len(positions)]:
                if dist.get(nbr) == d and (node, port) not in skip_edges:
                    return port
        raise ValueError("%r has no hop toward the root of its distances" % (node,))

    def dag(self, root, stretch: int = 0) -> dict:
        """{u: [(v, port), ...]}: u's allowed next hops toward ``root``: neighbours
        strictly closer to it (so no choice of weights can loop).  Switches come by
        increasing distance to ``root``.  ``stretch`` was meant to admit paths that
        many hops longer than the shortest, but admits nothing more: in hop counts
        every strictly closer neighbour is exactly one hop closer, so the bound it
        set (1 + dist[v] <= dist[u] + stretch) always held (README, path_stretch)."""
        dist = self.distances(root)
        return {u: self.dag_row(u, dist, stretch) for u in dist if u != root}

    def shared_dag(self, root, stretch: int = 0) -> dict:
        """dag(root, stretch), computed once per Fabric (graph version) and shared by
        every caller, which must not change it: adaptive balancing asks for every
        destination's DAG at each rebalance, on a topology that rarely changed since
        (fattree,16: 0.1 s of a 1 s rebalance)."""
        dag = self._dags.get((root, stretch))
        if dag is None:
            dag = self._dags[(root, stretch)] = self.dag(root, stretch)
        return dag

    def dag_row(self, u, dist: dict, stretch: int = 0) -> list:
        """u's entry in the dag toward the root of ``dist`` (see dag)."""
        du = dist[u]
        return [(v, port) for v, port in self.out[u]
                if v in dist and dist[v] < du and 1 + dist[v] <= du + stretch]

    def without_cable(self, u, port) -> set:
        """The (node, port) edges of both directions of the cable leaving u by port."""
        v = self.far[(u, port)]
        return {(u, port), *((x, q) for x, q in self.cable.get((u, port), ()) if x == v)}


def ring_position(neighbour: int, port: int) -> int:
    """Where the edge to ``neighbour`` by ``port`` sits on the 32-bit ring seeded tree
    hops start from (Fabric.tree_hop): a fixed mix of both, the same in every process."""
    mixed = (neighbour * 0x9E3779B97F4A7C15 + port * 0xBF58476D1CE4E5B9) & (2 ** 64 - 1)
    return (mixed ^ (mixed >> 29)) >> 32


def redistance(fab: Fabric, dist: dict, removed, added, usable=None) -> dict:
    """Bring hop counts toward a root (``dist``, from Fabric.distances before the edge
    changes ``removed`` and ``added``, [(u, port, v, v_port)]; ``fab`` after them) up to
    date in place, searching only where they change (the switches are the same; a
    switch set that changed needs a new search).  Returns {switch: its old distance,
    or None where it had none} for the switches whose distance changed (removed from
    ``dist`` where the root is out of reach).  ``usable(u, port, v, v_port)`` leaves out
    edges the search skips (v_port may be None).

    Removals first, on the graph without the added edges: a switch keeps its distance
    while a neighbour one hop closer keeps its own; the switches left without one (found
    by increasing distance, so each level's losses are known before the next) are
    searched again from the switches around them.  Then the added edges can only
    shorten distances, which spread to the predecessors as in a BFS.  Each step sees
    only the switches whose distance changes and their neighbours."""
    heap = [(dist[u], u) for u, port, v, v_port in removed
            if u in dist and dist.get(v) == dist[u] - 1
            and (usable is None or usable(u, port, v, v_port))]
    if not heap and not any(_shortens(dist, edge, usable) for edge in added):
        return {}  # the common case: nothing to search
    new_edges = {(u, port) for u, port, _, _ in added}

    def kept(u, port, w):
        return (u, port) not in new_edges and (usable is None or usable(u, port, w, None))

    changed: dict = {}
    heapq.heapify(heap)
    lost: set = set()
    seen: set = set()
    while heap:
        du, u = heapq.heappop(heap)
        if u in seen:
            continue
        seen.add(u)
        if any(dist.get(w) == du - 1 and w not in lost and kept(u, q, w) for w, q in fab.out[u]):
            continue
        lost.add(u)
        for x, q in fab.into_ports[u]:
            if dist.get(x) == du + 1 and x not in seen and kept(x, q, u):
                heapq.heappush(heap, (du + 1, x))
    if lost:
        for u in lost:
            changed[u] = dist.pop(u)
        heap = []
        for u in lost:
            best = min((dist[w] + 1 for w, q in fab.out[u] if w in dist and kept(u, q, w)),
                       default=None)
            if best is not None:
                heap.append((best, u))
        heapq.heapify(heap)
        while heap:
            du, u = heapq.heappop(heap)
            if u in dist:
                continue
            dist[u] = du
            for x, q in fab.into_ports[u]:
                if x in lost and x not in dist and kept(x, q, u):
                    heapq.heappush(heap, (du + 1, x))
        for u in lost:
            if dist.get(u) == changed[u]:
                del changed[u]
    heap = [(dist[edge[2]] + 1, edge[0]) for edge in added if _shortens(dist, edge, usable)]
    heapq.heapify(heap)
    while heap:
        du, u = heapq.heappop(heap)
        if dist.get(u, du + 1) <= du:
            continue
        changed.setdefault(u, dist.get(u))
        dist[u] = du
        for x, q in fab.into_ports[u]:
            if dist.get(x, du + 2) > du + 1 and (usable is None or usable(x, q, u, None)):
                heapq.heappush(heap, (du + 1, x))
    return {u: old for u, old in changed.items() if dist.get(u) != old}


def _shortens(dist: dict, edge, usable) -> bool:
    """Whether the edge (u, port, v, v_port) offers u a shorter way to the root."""
    u, port, v, v_port = edge
    return v in dist and dist.get(u, dist[v] + 2) > dist[v] + 1 and (
        usable is None or usable(u, port, v, v_port))


def choices_to_redo(fab: Fabric, dist: dict, moved: dict, removed, added) -> set:
    """The switches whose closer neighbours (DAG row, tree hop) toward the root of
    ``dist`` may differ after the edge changes and the distance changes ``moved``
    (what redistance returned): the moved switches, their predecessors, and the tails
    of the changed edges that lead, or led, closer to the root."""
    rows = set(moved)
    for n in moved:
        rows.update(fab.into.get(n, ()))

    def before(x):
        return moved[x] if x in moved else dist.get(x)
    for u, _, v, _ in removed:
        du, dv = before(u), before(v)
        if du is not None and dv is not None and dv < du:
            rows.add(u)
    for u, _, v, _ in added:
        if u in dist and v in dist and dist[v] < dist[u]:
            rows.add(u)
    return rows


def fabric(graph) -> Fabric:
    """The Fabric of ``graph`` as it is now (cached per graph version)."""
    version = graph.graph.get("version")
    cached = graph.graph.get("_fabric")
    if version is not None and cached is not None and cached[0] == version:
        return cached[1]
    changed_at = graph.graph.pop("changed_at", None)
    if cached is not None and changed_at is not None and cached[1].nodes == list(graph.nodes):
        index = Fabric(graph, cached[1], changed_at)
    else:
        index = Fabric(graph)
    if version is not None:
        graph.graph["_fabric"] = (version, index)
    return index


def tree_towards(graph, root: int) -> dict[int, int]:
    """For every switch that can reach ``root``, the output port of its first hop on a
    shortest path there (a shortest-path tree, so following it cannot loop)."""
    return fabric(graph).tree(root)


def dag_towards(graph, root: int, stretch: int = 0) -> dict[int, list[tuple]]:
    """{u: [(v, port), ...]}: see Fabric.dag (shared: read only, Fabric.shared_dag)."""
    return fabric(graph).shared_dag(root, stretch)


def hashed_start(key) -> int:
    """A stable_ids start for keys made of ints, strings and tuples of them: a hash of
    the key's text, the same in every process and on every restart."""
    return zlib.crc32(repr(key).encode())


def stable_ids(keys, start, first: int, span: int) -> dict:
    """An id in [first, first + span) per key, from ``start(key)``; a collision probes
    upward, in key order, so ids are stable while the set of keys is.  Ids that stay put
    across recomputations keep unrelated entries untouched (one change, few mods)."""
    if len(keys) > span:
        raise ValueError("%d keys do not fit %d ids" % (len(keys), span))
    ids, taken = {}, set()
    for key in sorted(keys):
        gid = first + (start(key) - first) % span
        while gid in taken:
            gid = first + (gid - first + 1) % span
        ids[key] = gid
        taken.add(gid)
    return ids


class StableIds:
    """stable_ids of a set of keys that changes a few keys at a time.  While no key's
    id was displaced by a collision (the rule in wide id spaces), each key's id is its
    home and only the keys that come and go are looked at; otherwise stable_ids runs
    again.  ``homes`` (key -> home id) may be shared by assignments with the same
    ``start``, ``first`` and ``span``."""

    def __init__(self, start, first: int, span: int, homes: dict | None = None):
        self.start, self.first, self.span = start, first, span
        self.homes = {} if homes is None else homes
        self.ids: dict = {}
        self._taken: set = set()
        self._displaced = 0  # keys whose id is not their home

    def _home(self, key) -> int:
        home = self.homes.get(key)
        if home is None:
            home = self.homes[key] = self.first + (self.start(key) - self.first) % self.span
        return home

    def assign(self, keys: set, maybe=None) -> set:
        """Make ``ids`` stable_ids(keys); returns the keys whose id is new or moved.
        ``maybe``: the only keys that may have come or gone (default: any)."""
        ids = self.ids
        if maybe is None:
            came = keys - ids.keys()
            went = ids.keys() - keys if len(ids) + len(came) != len(keys) else ()
        else:
            came = {key for key in maybe if key in keys and key not in ids}
            went = [key for key in maybe if key in ids and key not in keys]
        if not came and not went:
            return set()
        homes = {key: self._home(key) for key in came}
        if not self._displaced and len(set(homes.values())) == len(homes) \
                and self._taken.isdisjoint(homes.values()):
            for key in went:
                self._taken.discard(ids.pop(key))
            ids.update(homes)
            self._taken.update(homes.values())
            return came
        old, self.ids = ids, stable_ids(keys, self.start, self.first, self.span)
        self._taken = set(self.ids.values())
        self._displaced = sum(1 for key, gid in self.ids.items() if gid != self._home(key))
        return {key for key, gid in self.ids.items() if old.get(key) != gid}
