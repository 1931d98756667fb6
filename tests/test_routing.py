"""The incremental Routing equals a fresh computation, step after step.

Random link cuts and repairs, hosts coming, leaving and moving, switches leaving, on the
shipped topologies and random meshes; after each change Routing.update is held to
compute_next_hops + plan_protection + build_plan on the same topology (next hops,
backups, detours, every entry and group), and the plan keys it reports as touched must
cover everything that differs from the plan before.
"""

import random

import networkx as nx
import pytest
from shipped_topologies import SETTLED, model_of

from sdn_app.core.pipeline import TABLE_FORWARD, is_label_mac, label_of
from sdn_app.core.plan import build_plan
from sdn_app.core.protection import plan_protection
from sdn_app.core.routing import Routing
from sdn_app.core.te import compute_next_hops
from sdn_app.core.topology import Port, Topology

IDLE = 300


def fresh(topo, policy, stretch, protect, split):
    hops = compute_next_hops(topo, policy, stretch=stretch)
    protection = plan_protection(topo.graph, hops, stretch) if protect else None
    return hops, protection, build_plan(topo, IDLE, hops, protection, split)


def assert_equal_to_fresh(routing, topo, policy, stretch, protect, split):
    hops, protection, plan = fresh(topo, policy, stretch, protect, split)
    assert routing.next_hops == hops
    if protect:
        assert routing.backups == protection.backups
        assert routing.detours == protection.detours
        assert routing.unprotected == set(protection.unprotected)
    for dpid in set(plan) | set(routing.plan):
        assert routing.plan.get(dpid) == plan.get(dpid), dpid


def random_mesh(rng, switches=9, extra=6, hosts=7):
    """A connected random graph of switches (a spanning tree plus extra cables), with
    hosts on random switches."""
    topo = Topology(settle_time=0.0)
    dpids = [0x100 + i for i in range(switches)]
    cables = [(dpids[i], dpids[rng.randrange(i)]) for i in range(1, switches)]
    while len(cables) < switches - 1 + extra:
        a, b = rng.sample(dpids, 2)
        cables.append((a, b))  # parallel cables allowed
    ports = {dpid: 0 for dpid in dpids}
    wired = []
    for a, b in cables:
        ports[a] += 1
        ports[b] += 1
        wired.append((a, ports[a], b, ports[b]))
    host_ports = {}
    for n in range(hosts):
        dpid = rng.choice(dpids)
        ports[dpid] += 1
        host_ports["02:00:00:00:00:%02x" % (n + 1)] = (dpid, ports[dpid])
    for dpid in dpids:
        topo.switch_connected(dpid, [Port(p) for p in range(1, ports[dpid] + 1)], 0.0)
    for a, pa, b, pb in wired:
        topo.link_seen(a, pa, b, pb, 0.0)
        topo.link_seen(b, pb, a, pa, 0.0)
    for mac, (dpid, port) in host_ports.items():
        topo.learn_host(mac, dpid, port, 1.0)
    return topo


def cables_of(topo):
    return sorted({tuple(sorted(((lk.src, lk.src_port), (lk.dst, lk.dst_port))))
                   for lk in topo.links()})


def random_change(rng, topo, cut, parked, now):
    """One random change to ``topo``; ``cut`` holds cut cables, ``parked`` removed hosts."""
    kind = rng.choice(["cut", "cut", "repair", "repair", "host", "host", "move", "switch",
                       "port"])
    cables = cables_of(topo)
    if kind == "cut" and cables:
        (a, pa), (b, pb) = rng.choice(cables)
        topo.port_changed(a, Port(pa, live=False), now)
        topo.port_changed(b, Port(pb, live=False), now)
        cut.append(((a, pa), (b, pb)))
    elif kind == "repair" and cut:
        (a, pa), (b, pb) = cut.pop(rng.randrange(len(cut)))
        if a in topo.graph and b in topo.graph:
            topo.port_changed(a, Port(pa), now)
            topo.port_changed(b, Port(pb), now)
            topo.link_seen(a, pa, b, pb, now)
            topo.link_seen(b, pb, a, pa, now)
    elif kind == "host" and (topo.hosts or parked):
        if parked and (rng.random() < 0.5 or not topo.hosts):
            mac, dpid, port = parked.pop()
            if dpid in topo.graph:
                topo.port_changed(dpid, Port(port), now)
                topo.learn_host(mac, dpid, port, now + 1)
        else:
            host = rng.choice(sorted(topo.hosts.values(), key=lambda h: h.mac))
            topo.remove_host(host.mac)
            parked.append((host.mac, host.dpid, host.port))
    elif kind == "move" and len(topo.hosts) > 1:
        host, other = rng.sample(sorted(topo.hosts.values(), key=lambda h: h.mac), 2)
        topo.learn_host(host.mac, other.dpid, other.port, now + 1)
    elif kind == "port":  # a port plugged in, or one no link uses taken away
        dpid = rng.choice(sorted(topo.graph))
        ports = topo.switch(dpid).ports
        spare = [p for p in sorted(ports) if not topo.links_at(dpid, p)]
        if spare and rng.random() < 0.5:
            topo.port_deleted(dpid, rng.choice(spare))
        else:
            topo.port_changed(dpid, Port(max(ports, default=0) + 1), now)
    elif kind == "switch" and rng.random() < 0.3 and len(topo.graph) > 3:
        topo.remove_switch(rng.choice(sorted(topo.graph)))
    return kind


def snapshot(plan):
    return {dpid: dict(entries) for dpid, entries in plan.items()}


def run_steps(topo, rng, steps, policy, stretch=0, protect=True, split=frozenset()):
    routing = Routing(stretch=stretch, protect=protect, host_idle_timeout=IDLE)
    assert routing.update(topo, policy, hash_split_switches=split) is None  # a fresh start
    assert_equal_to_fresh(routing, topo, policy, stretch, protect, split)
    cut, parked = [], []
    incremental = 0
    for step in range(steps):
        before = snapshot(routing.plan)
        kind = random_change(rng, topo, cut, parked, SETTLED + 10 * (step + 1))
        touched = routing.update(topo, policy, hash_split_switches=split)
        assert_equal_to_fresh(routing, topo, policy, stretch, protect, split)
        if touched is not None:
            incremental += 1
            for dpid in set(before) | set(routing.plan):
                old, new = before.get(dpid, {}), routing.plan.get(dpid, {})
                differ = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
                assert differ <= touched.get(dpid, set()), (kind, dpid, differ)
    return incremental


@pytest.mark.parametrize("spec", ["diamond", "ring,5", "leafspine,2,3,2", "fattree,4"])
@pytest.mark.parametrize("policy", ["ecmp", "shortest"])
def test_shipped_topologies_through_random_changes(spec, policy):
    topo, _ = model_of(spec)
    rng = random.Random("%s/%s" % (spec, policy))
    assert run_steps(topo, rng, 25, policy) > 10  # most steps were incremental


@pytest.mark.parametrize("seed", range(12))
def test_random_meshes_through_random_changes(seed):
    rng = random.Random(seed)
    topo = random_mesh(rng)
    stretch = seed % 2
    split = frozenset(rng.sample(sorted(topo.graph), 3)) if seed % 3 == 0 else frozenset()
    run_steps(topo, rng, 30, "ecmp", stretch=stretch, split=split)


def test_without_protection_and_with_next_hops_passed_in():
    """Policies computed elsewhere (adaptive's LP) pass their next hops in."""
    rng = random.Random(7)
    topo = random_mesh(rng, switches=8, extra=5)
    routing = Routing(protect=False, host_idle_timeout=IDLE)
    for step in range(20):
        random_change(rng, topo, [], [], SETTLED + step)
        hops = compute_next_hops(topo, "ecmp")
        # keep one next hop per key at random: what a placement would do
        placed = {key: (rng.choice(value),) for key, value in hops.items()}
        routing.update(topo, "adaptive", proposed=placed)
        assert routing.next_hops == placed
        assert routing.plan == build_plan(topo, IDLE, placed, None)


def test_a_link_loss_on_a_fat_tree_touches_few_switches():
    """The point of it: a cable's loss rebuilds only the switches that see it (on the
    fabric's first core cable, where lowest-numbered tie-breaks once sent every
    destination's detours)."""
    topo, _ = model_of("fattree,8")
    routing = Routing(host_idle_timeout=IDLE)
    routing.update(topo, "ecmp")
    entries = sum(len(items) for items in routing.plan.values())
    (a, pa), (b, pb) = cables_of(topo)[0]
    topo.port_changed(a, Port(pa, live=False), SETTLED + 1)
    topo.port_changed(b, Port(pb, live=False), SETTLED + 1)
    touched = routing.update(topo, "ecmp")
    assert touched is not None
    assert len(touched) < len(topo.graph) / 4
    assert sum(len(keys) for keys in touched.values()) < entries / 20
    assert nx.is_weakly_connected(topo.graph)


def test_before_its_first_update_the_state_is_empty():
    routing = Routing()
    assert (routing.plan, routing.next_hops, routing.backups) == ({}, {}, {})


@pytest.mark.parametrize("seed", range(4))
def test_when_vlan_ids_run_out_the_rest_goes_unprotected_as_in_a_fresh_computation(
        seed, monkeypatch):
    """A fabric needing more detours toward one destination than VLAN ids
    protects what fits, in the order a fresh computation takes, and still forwards
    everything: here with room for only a few detours."""
    import sdn_app.core.protection as protection
    import sdn_app.core.routing as routing
    for module in (protection, routing):
        monkeypatch.setattr(module, "TAG_LAST", protection.TAG_FIRST + 3)
    rng = random.Random(seed)
    topo = random_mesh(rng, switches=10, extra=8, hosts=8)
    _, at_start, plan = fresh(topo, "ecmp", 0, True, frozenset())
    assert at_start.unprotected, "the ids ran out: some next hops go unprotected"
    assert any(key[0] == TABLE_FORWARD for entries in plan.values() for key in entries)
    run_steps(topo, rng, 20, "ecmp")  # each step equal to a fresh computation


def test_label_addresses_name_their_hosts_and_follow_a_move():
    """A frame that reaches the controller under a label address is delivered under the
    host's own (Routing.host_of): the address names the host's switch and follows it."""
    topo, _ = model_of("fattree,4")
    routing = Routing(host_idle_timeout=IDLE)
    routing.update(topo, "ecmp")
    hosts = sorted(topo.hosts.values(), key=lambda h: h.dpid)
    host, there = hosts[0], hosts[-1]
    before = routing.label_addresses[host.mac]
    assert is_label_mac(before) and label_of(before) == routing.labels[host.dpid]
    assert routing.host_of(before) == host.mac
    topo.learn_host(host.mac, there.dpid, there.port, SETTLED + 1)
    routing.update(topo, "ecmp")
    after = routing.label_addresses[host.mac]
    assert label_of(after) == routing.labels[there.dpid] and routing.host_of(after) == host.mac
    assert routing.host_of(before) is None
    assert routing.host_of("0e:5d:ff:ff:ff:ff") is None
