"""The path searches (core/paths.py) against networkx on random switch graphs, through
random sequences of topology changes: the Fabric cached across changes must answer as
one built afresh, and both as networkx does (the implementation they replaced, kept
here as the oracle), ties and iteration order included."""

import random

import networkx as nx
import pytest

from sdn_app.core.paths import (
    Fabric,
    StableIds,
    fabric,
    redistance,
    ring_position,
    stable_ids,
)
from sdn_app.core.protection import reach_bitsets
from sdn_app.core.topology import Port, Topology


def oracle_distances(graph, root):
    if root not in graph:
        return {}
    return nx.single_source_shortest_path_length(graph.reverse(copy=False), root)


def oracle_tree(graph, root, seed=0):
    """``seed``: the first edge on the ring from seed on (ring_position), as a rank."""
    dist = oracle_distances(graph, root)

    def rank(nbr, port):
        return ((ring_position(nbr, port) - seed) % 2 ** 32, nbr, port) if seed else (nbr, port)
    return {node: min((rank(nbr, port), port) for _, nbr, port in graph.out_edges(node, keys=True)
                      if dist.get(nbr) == d - 1)[1]
            for node, d in dist.items() if node != root}


def oracle_dag(graph, root, stretch):
    dist = oracle_distances(graph, root)
    return {u: sorted((v, port) for _, v, port in graph.out_edges(u, keys=True)
                      if v in dist and dist[v] < du and 1 + dist[v] <= du + stretch)
            for u, du in dist.items() if u != root}


def reachable_in_dag(dag, start):
    seen, todo = {start}, [start]
    while todo:
        for v, _ in dag.get(todo.pop(), []):
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return seen


def oracle_without(graph, element):
    if element[0] == "node":
        return nx.subgraph_view(graph, filter_node=lambda n: n != element[1])
    _, u, p = element
    v = next(nbr for _, nbr, key in graph.out_edges(u, keys=True) if key == p)
    back = {key for _, nbr, key in graph.out_edges(v, keys=True)
            if nbr == u and graph.edges[v, u, key]["link"].dst_port == p}

    def keep(a, b, key):
        return not ((a, b, key) == (u, v, p) or (a == v and b == u and key in back))
    return nx.subgraph_view(graph, filter_edge=keep)


def random_topology(rng):
    """Switches with a few ports each, cables between random ports (parallel cables and
    one-way links included), built through the Topology API as LLDP would."""
    topo = Topology(settle_time=0.0)
    n = rng.randint(2, 10)
    switches = [0x100 + i for i in range(n)]
    for dpid in switches:
        topo.switch_connected(dpid, [Port(p) for p in range(1, 7)], 0.0)
    free = [(d, p) for d in switches for p in range(1, 7)]
    rng.shuffle(free)
    while len(free) >= 2 and rng.random() < 0.9:
        (a, pa), (b, pb) = free.pop(), free.pop()
        if a == b:
            continue
        topo.link_seen(a, pa, b, pb, 0.0)
        if rng.random() < 0.9:
            topo.link_seen(b, pb, a, pa, 0.0)
    return topo


def mutate(topo, rng, now):
    """One random change: a port down or back, a link (re)proven, a switch removed."""
    dpids = sorted(topo.graph)
    dpid = rng.choice(dpids)
    port = rng.randint(1, 6)
    choice = rng.random()
    if choice < 0.4:
        topo.port_changed(dpid, Port(port, live=False), now)
    elif choice < 0.6:
        topo.port_changed(dpid, Port(port, live=True), now)
    elif choice < 0.95:
        other = rng.choice(dpids)
        if other != dpid:
            topo.link_seen(dpid, port, other, rng.randint(1, 6), now)
    elif len(dpids) > 2:
        topo.remove_switch(dpid)


def check(graph, rng):
    cached, fresh = fabric(graph), Fabric(graph)
    for field in ("nodes", "out", "ring", "into", "into_ports", "far", "links"):
        assert getattr(cached, field) == getattr(fresh, field), field
    assert {k: set(v) for k, v in cached.cable.items()} == \
        {k: set(v) for k, v in fresh.cable.items()}
    for root in graph:
        want = oracle_distances(graph, root)
        got = cached.distances(root)
        assert got == want and list(got) == list(want)
        assert cached.tree(root) == oracle_tree(graph, root)
        for stretch in (0, 1):
            dag = cached.dag(root, stretch)
            assert dag == oracle_dag(graph, root, stretch)
            bits = reach_bitsets(dag, root, {n: 1 << i for i, n in enumerate(cached.nodes)})
            for w in dag:
                assert {n for i, n in enumerate(cached.nodes) if bits[w] >> i & 1} == \
                    reachable_in_dag(dag, w)
        for v in graph:
            if v != root:
                assert cached.tree(root, skip_node=v) == oracle_tree(
                    oracle_without(graph, ("node", v)), root)
                check_seeded_tree(cached, oracle_without(graph, ("node", v)), root,
                                  rng.getrandbits(32), skip_node=v)
        edges = list(graph.out_edges(keys=True))
        for u, _, port in rng.sample(edges, min(4, len(edges))):
            skip = cached.without_cable(u, port)
            assert cached.tree(root, skip_edges=skip) == \
                oracle_tree(oracle_without(graph, ("link", u, port)), root)
            check_seeded_tree(cached, oracle_without(graph, ("link", u, port)), root,
                              rng.getrandbits(32), skip_edges=skip)


def check_seeded_tree(cached, graph_without, root, seed, skip_node=None, skip_edges=()):
    """A detour tree's own tie-break order (protection.tree_seed): the one search and
    the hop-by-hop repair (tree_hop) agree with each other and with the oracle."""
    tree, dist = cached.tree_and_distances(root, skip_node, skip_edges, seed)
    assert dist == cached.distances(root, skip_node, skip_edges)
    assert tree == oracle_tree(graph_without, root, seed)
    assert tree == {node: cached.tree_hop(node, dist, skip_edges, seed)
                    for node in dist if node != root}


@pytest.mark.parametrize("seed", range(12))
def test_searches_equal_networkx_through_random_changes(seed):
    rng = random.Random(seed)
    topo = random_topology(rng)
    check(topo.graph, rng)
    for step in range(12):
        mutate(topo, rng, 1.0 + step)
        check(topo.graph, rng)


def test_the_cache_follows_the_graph_version():
    topo = random_topology(random.Random(3))
    first = fabric(topo.graph)
    assert fabric(topo.graph) is first
    link = topo.links()[0]
    topo.port_changed(link.src, Port(link.src_port, live=False), 5.0)
    assert fabric(topo.graph) is not first
    assert (link.src, link.src_port) not in fabric(topo.graph).far


def directed_edges(graph):
    return {(u, port, v, data["link"].dst_port) for u, v, port, data in
            graph.edges(keys=True, data=True)}


@pytest.mark.parametrize("seed", range(12))
def test_distances_brought_up_to_date_equal_a_new_search(seed):
    """redistance after several changes at once, toward every root, in the whole graph
    and without one switch: the distances a new search finds, and exactly the switches
    whose distance differs reported, with their old distance."""
    rng = random.Random(seed)
    topo = random_topology(rng)
    for step in range(15):
        before_edges, before = directed_edges(topo.graph), fabric(topo.graph)
        kept = {(root, skip): before.distances(root, skip_node=skip)
                for root in topo.graph for skip in (None, rng.choice(sorted(topo.graph)))}
        for _ in range(rng.randint(1, 3)):
            mutate(topo, rng, 1.0 + step)
        after_edges, fab = directed_edges(topo.graph), fabric(topo.graph)
        if fab.nodes != before.nodes:  # a switch gone: callers search afresh
            continue
        removed, added = sorted(before_edges - after_edges), sorted(after_edges - before_edges)
        for (root, skip), dist in kept.items():
            old = dict(dist)
            usable = None if skip is None else (lambda u, p, v, vp, s=skip: s not in (u, v))
            moved = redistance(fab, dist, removed, added, usable)
            assert dist == fab.distances(root, skip_node=skip)
            assert moved == {n: old.get(n) for n in set(old) | set(dist)
                             if old.get(n) != dist.get(n)}


@pytest.mark.parametrize("span", [40, 1000, 2**31])
def test_stable_ids_kept_up_to_date_equal_ones_assigned_afresh(span):
    """StableIds through random key sets (a narrow span forces collisions, so the slow
    path runs too): always stable_ids of the keys, and the keys reported are exactly
    those whose id is new or moved."""
    rng = random.Random(span)
    kept = StableIds(lambda key: key * 7919, 5, span)
    keys: set = set()
    for _ in range(200):
        before = dict(kept.ids)
        maybe = set(rng.sample(range(60), rng.randint(1, 8)))
        for key in maybe:
            if rng.random() < 0.5:
                keys.add(key)
            else:
                keys.discard(key)
        moved = kept.assign(set(keys), maybe if rng.random() < 0.5 else None)
        assert kept.ids == stable_ids(keys, lambda key: key * 7919, 5, span)
        assert moved == {key for key, gid in kept.ids.items() if before.get(key) != gid}
