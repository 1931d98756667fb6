"""Backups that let a switch divert traffic by itself the moment a port goes down.

For each switch u, destination switch d and next-hop port p (toward neighbour v) that
forwarding uses, a backup is chosen, in this order of preference:

1. another port u already uses toward d whose onward paths never visit v (or, when v
   is d itself, any other such port: only the link can be avoided then);
2. a loop-free alternate: another neighbour w whose forwarding toward d never visits
   u, nor v (unless v is d);
3. a tagged detour: the frame is given a VLAN tag naming (what failed, d) and follows
   the shortest path to d in the graph without v (protecting against the switch
   failing) or, where d is unreachable without v, without just the link.  Switches on
   the detour hold entries that match the tag alone; d pops it and forwards normally.

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

import zlib
from dataclasses import dataclass, field

from .memory import cycle_collector_paused
from .paths import fabric, stable_ids

TAG_FIRST, TAG_LAST = 1, 4094  # usable VLAN ids


@dataclass(frozen=True)
class Backup:
    port: int
    tag: int | None = None  # VLAN id pushed on a detour; None: forwarded as it is


@dataclass
class Protection:
    backups: dict = field(default_factory=dict)  # (u, p, d) -> Backup
    detours: dict = field(default_factory=dict)  # tag -> {switch: out port, or None at d}
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

    def reach(d, w) -> int:
        if d not in reach_bits:
            reach_bits[d] = _reach_bits(dags[d], d, bit)
        return reach_bits[d].get(w, bit[w])

    for (u, d), hops in sorted(next_hops.items()):
        if u not in fab.out or d not in dags:
            continue
        neighbours = {port: nbr for nbr, port in fab.out[u]}
        used = [p for p, _ in hops]
        for p in used:
            v = neighbours.get(p)
            if v is None:
                continue
            avoid = 0 if v == d else bit[v]  # the failed neighbour, unless it is d
            backup = None
            for q in sorted(set(used) - {p}):  # 1. another next hop in use
                if q in neighbours and not avoid & reach(d, neighbours[q]):
                    backup = Backup(q)
                    break
            if backup is None:  # 2. a loop-free alternate
                for q, w in sorted(neighbours.items()):
                    if q in used or bit[w] & avoid or (w != d and w not in dags[d]):
                        continue
                    if w == d or not (bit[u] | avoid) & reach(d, w):
                        backup = Backup(q)
                        break
            if backup is None:  # 3. a tagged detour
                backup = _detour(fab, u, p, v, d, trees, tags, result)
            if backup is None:
                result.unprotected.append((u, p, d))
            else:
                result.backups[(u, p, d)] = backup
    return _with_stable_tags(result, tags)


def _reach_bits(dag: dict, root: int, bit: dict) -> dict:
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


def _with_stable_tags(result: Protection, keys: dict) -> Protection:
    """Replace the provisional tags (detour keys) by VLAN ids derived from the keys, so a
    recomputation after one failure rewrites only the detours that changed."""
    ids = stable_ids(list(keys), lambda key: zlib.crc32(repr(key).encode()), TAG_FIRST,
                     TAG_LAST - TAG_FIRST + 1)
    result.backups = {k: Backup(b.port, ids[b.tag]) if b.tag is not None else b
                      for k, b in result.backups.items()}
    result.detours = {ids[key]: hops for key, hops in result.detours.items()}
    return result


def _detour(fab, u, p, v, d, trees, tags, result):
    """A tagged detour from u to d around v (or the u-v cable), recording the entries the
    switches on it need.  None when no path is left or VLAN ids ran out."""
    for element in ((("node", v),) if v != d else ()) + (("link", u, p),):
        key = (element, d)
        if key not in trees:
            if element[0] == "node":
                trees[key] = fab.tree(d, skip_node=v)
            else:
                trees[key] = fab.tree(d, skip_edges=fab.without_cable(u, p))
        tree = trees[key]
        if u not in tree:
            continue
        if key not in tags:
            if len(tags) >= TAG_LAST - TAG_FIRST + 1:
                return None
            tags[key] = key  # a provisional tag: the key; see _with_stable_tags
        tag = tags[key]
        entries = result.detours.setdefault(tag, {})
        node = fab.far[(u, tree[u])]
        while node != d:
            entries[node] = tree[node]
            node = fab.far[(node, tree[node])]
        entries[d] = None
        return Backup(tree[u], tag)
    return None
