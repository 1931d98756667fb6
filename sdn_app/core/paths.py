"""Path computations over the switch graph, shared by forwarding, balancing and
protection.  All work on a networkx MultiDiGraph of switches whose edges are keyed by
source port; ties are broken by the lowest (neighbour dpid, port), so results are
deterministic and paths only move when the topology forces them to."""

from __future__ import annotations

import networkx as nx


def distances_to(graph, root: int) -> dict[int, int]:
    """Hop count from every switch that can reach ``root``."""
    if root not in graph:
        return {}
    return nx.single_source_shortest_path_length(graph.reverse(copy=False), root)


def tree_towards(graph, root: int) -> dict[int, int]:
    """For every switch that can reach ``root``, the output port of its first hop on a
    shortest path there (a shortest-path tree, so following it cannot loop)."""
    dist = distances_to(graph, root)
    hops = {}
    for node, d in dist.items():
        if node != root:
            hops[node] = min((nbr, port) for _, nbr, port in graph.out_edges(node, keys=True)
                             if dist.get(nbr) == d - 1)[1]
    return hops


def dag_towards(graph, root: int, stretch: int = 0) -> dict[int, list[tuple]]:
    """{u: [(v, port), ...]}: u's allowed next hops toward ``root``: neighbours strictly
    closer to it (so no choice of weights can loop), on paths at most ``stretch`` hops
    longer than the shortest."""
    dist = distances_to(graph, root)
    dag = {}
    for u, du in dist.items():
        if u != root:
            dag[u] = sorted((v, port) for _, v, port in graph.out_edges(u, keys=True)
                            if v in dist and dist[v] < du and 1 + dist[v] <= du + stretch)
    return dag


def reachable_in_dag(dag: dict, start: int) -> set[int]:
    """Every switch a frame can visit from ``start`` when forwarded along ``dag``."""
    seen, todo = {start}, [start]
    while todo:
        for v, _ in dag.get(todo.pop(), []):
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return seen


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
