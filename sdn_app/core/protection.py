"""Backups that let a switch divert traffic by itself the moment a port goes down.

For each switch u, destination switch d and next-hop port p (toward neighbour v) that
forwarding uses, a backup is chosen, in this order of preference:

1. another port u already uses toward d whose onward paths never visit v (or, when v
   is d itself, any other such port: only the link can be avoided then);
2. a loop-free alternate: another neighbour w whose forwarding toward d never visits
   u, nor v (unless v is d);
3. a tagged detour: the frame is given a VLAN tag naming what failed and follows the
   shortest path to d in the graph without v (protecting against the switch failing)
   or, where d is unreachable without v, without just the link.  Switches on the
   detour hold entries that match the tag and d's label (a frame toward d carries its
   label address, pipeline.py), so VLAN ids need only be unique per destination; d
   pops the tag and forwards normally.

The Ryu layer turns each (u, p, d) with a backup into an OpenFlow FAST_FAILOVER group:
bucket 1 watches p, bucket 2 the backup port.  OVS moves to bucket 2 as soon as p loses
carrier, with no controller round trip.

Why no backup can make a loop.  Untagged forwarding toward d follows a DAG whose every
hop is strictly closer to d (paths.Fabric.dag).  Backups of kinds 1 and 2 hand the
frame to a switch w from which, by the reachability check on that DAG, no forwarding
choice leads back to u or through the failed element; from w it follows ordinary
entries that only move closer to d, so it arrives.  Tagged frames are matched only by
tag entries, which follow a shortest-path tree toward d in a graph without the failed
element: each hop is strictly closer to d in that graph, so they neither loop nor
touch the failure, and no entry re-tags a tagged frame.  A second failure on a detour
drops the frame; the controller's recomputation (make-before-break) covers that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .memory import cycle_collector_paused
from .paths import fabric, hashed_start, stable_ids

TAG_FIRST, TAG_LAST = 1, 4094  # usable VLAN ids (per destination switch)


@dataclass(frozen=True)
class Backup:
    port: int
    tag: int | None = None  # VLAN id pushed on a detour; None: forwarded as it is


@dataclass
class Protection:
    backups: dict = field(default_factory=dict)  # (u, p, d) -> Backup
    # (d, tag) -> {switch: out port, or None at d}
    detours: dict = field(default_factory=dict)
    unprotected: list = field(default_factory=list)  # (u, p, d) with no backup at all


def plan_protection(graph, next_hops: dict, stretch: int = 0) -> Protection:
    """Backups for every (u, p, d) used by ``next_hops`` ({(u, d): ((port, w), ...)})."""
    with cycle_collector_paused():
        return _plan_protection(graph, next_hops, stretch)


def _plan_protection(graph, next_hops, stretch) -> Protection:
    result = Protection()
    fab = fabric(graph)
    bit = {node: 1 << i for i, node in enumerate(fab.nodes)}
    dags = {d: fab.dag(d, stretch) for d in sorted({d for _, d in next_hops})}
    reach_bits: dict = {}  # d -> {w: bitset of the switches forwarding from w can visit}
    trees: dict = {}
    tags: dict = {}
    tagged: dict = {}  # d -> how many detour keys toward d have a tag

    def tree(key):
        if key not in trees:
            trees[key] = detour_tree(fab, key)[0]
        return trees[key]

    def may_tag(key):  # a key allowed a VLAN id counts at once: one switch may ask for
        # several before any of them is used, and together they must still fit
        if key in tags:
            return True
        if tagged.get(key[1], 0) >= TAG_LAST - TAG_FIRST + 1:
            return False
        tags[key] = key
        tagged[key[1]] = tagged.get(key[1], 0) + 1
        return True

    # By destination, then switch: the order the incremental Routing also builds in, so
    # both give the same answer even when VLAN ids run out.
    for (u, d), hops in sorted(next_hops.items(), key=lambda item: (item[0][1], item[0][0])):
        if u not in fab.out or d not in dags:
            continue
        if d not in reach_bits:
            reach_bits[d] = reach_bitsets(dags[d], d, bit)
        for p, backup, path in backups_at(fab, u, d, [p for p, _ in hops], dags[d],
                                          reach_bits[d], bit, tree, may_tag):
            if backup is None:
                result.unprotected.append((u, p, d))
                continue
            result.backups[(u, p, d)] = backup
            if path is not None:  # its key is in tags: may_tag counted it
                result.detours.setdefault(backup.tag, {}).update(path)
    return _with_stable_tags(result, tags)


def backups_at(fab, u, d, used: list, dag: dict, reach: dict, bit: dict, tree, may_tag):
    """[(p, Backup or None, detour path or None)] for each port p in ``used`` (u's next
    hops toward d), in the order of preference of the module docstring.  ``reach`` is
    reach_bitsets of ``dag``; ``tree(key)`` the detour tree of a key (element, d) (see
    detour_tree), ``may_tag(key)`` whether a detour may take a VLAN id.  A tagged
    Backup's tag is still its key (see _with_stable_tags); its path is
    {switch: out port, d: None}."""
    neighbours = {port: nbr for nbr, port in fab.out[u]}
    found = []
    for p in used:
        v = neighbours.get(p)
        if v is None:
            continue
        avoid = 0 if v == d else bit[v]  # the failed neighbour, unless it is d
        backup = path = None
        for q in sorted(set(used) - {p}):  # 1. another next hop in use
            if q in neighbours and not avoid & reach.get(neighbours[q], bit[neighbours[q]]):
                backup = Backup(q)
                break
        if backup is None:  # 2. a loop-free alternate
            for q, w in sorted(neighbours.items()):
                if q in used or bit[w] & avoid or (w != d and w not in dag):
                    continue
                if w == d or not (bit[u] | avoid) & reach[w]:
                    backup = Backup(q)
                    break
        if backup is None:  # 3. a tagged detour
            backup, path = _detour(fab, u, p, v, d, tree, may_tag)
        found.append((p, backup, path))
    return found


def reach_bitsets(dag: dict, root: int, bit: dict) -> dict:
    """{w: bitset of every switch a frame can visit from w along ``dag``, w included}.
    ``dag`` lists switches by increasing distance to ``root`` (paths.Fabric.dag), so
    each switch's next hops are done before it."""
    reach = {root: bit[root]}
    for u, hops in dag.items():
        mask = bit[u]
        for v, _ in hops:
            mask |= reach[v]
        reach[u] = mask
    return reach


def _with_stable_tags(result: Protection, keys) -> Protection:
    """Replace the provisional tags (detour keys) by VLAN ids derived from the keys, so a
    recomputation after one failure rewrites only the detours that changed."""
    ids = tag_ids(keys)
    result.backups = {k: Backup(b.port, ids[b.tag]) if b.tag is not None else b
                      for k, b in result.backups.items()}
    result.detours = {(key[1], ids[key]): hops for key, hops in result.detours.items()}
    return result


def tag_ids(keys) -> dict:
    """The VLAN id of each detour key (element, d): unique among the keys toward d."""
    by_destination: dict = {}
    for key in keys:
        by_destination.setdefault(key[1], []).append(key)
    ids: dict = {}
    for same_d in by_destination.values():
        ids.update(stable_ids(same_d, hashed_start, TAG_FIRST, TAG_LAST - TAG_FIRST + 1))
    return ids



def detour_keys(u, p, v, d) -> tuple:
    """The keys (element, d) of the detours u may take around its next hop v by port p,
    in order of preference: around the switch v (unless v is d), then the cable."""
    return tuple((element, d) for element in
                 ((("node", v),) if v != d else ()) + (("link", u, p),))


def detour_tree(fab, key) -> tuple[dict, dict]:
    """(tree, distances) toward d in the graph without the key's element, its ties
    broken in the order of tree_seed(key)."""
    (element, d) = key
    if element[0] == "node":
        return fab.tree_and_distances(d, skip_node=element[1], seed=tree_seed(key))
    return fab.tree_and_distances(d, skip_edges=fab.without_cable(element[1], element[2]),
                                  seed=tree_seed(key))


def tree_seed(key) -> int:
    """The order a detour tree breaks its ties in (paths.Fabric.tree_hop).  Lowest
    numbers first would send every destination's detours over the same few switches:
    on fattree,16, ~7,000 detours crossed its first core cable, all rewritten when it
    failed, and all their traffic would meet there in a failure."""
    return hashed_start(key) | 1  # 32 bits, never 0 (0 means lowest first)


def _detour(fab, u, p, v, d, tree, may_tag):
    """A tagged detour from u to d around v (or the u-v cable): (Backup whose tag is the
    detour's key, {switch: out port, d: None}), or (None, None) when no path is left or
    VLAN ids ran out."""
    for key in detour_keys(u, p, v, d):
        hops = tree(key)
        if u not in hops:
            continue
        if not may_tag(key):
            return None, None
        return Backup(hops[u], key), detour_path(fab, hops, u, d)
    return None, None


def detour_path(fab, hops: dict, u, d) -> dict:
    """{switch: out port, d: None}: where a frame u tags goes on the detour tree
    ``hops`` toward d, after u."""
    path = {}
    node = fab.far[(u, hops[u])]
    while node != d:
        path[node] = hops[node]
        node = fab.far[(node, hops[node])]
    path[d] = None
    return path
