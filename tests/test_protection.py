"""Fast reroute, proven on the simulated dataplane: the plan is NOT recomputed after a
failure; only the switches' own FAST_FAILOVER groups react, as they do in the first
milliseconds before the controller hears of it."""

import itertools

import pytest
from fakedataplane import FakeDataplane
from shipped_topologies import SETTLED, model_of

from sdn_app.core.pipeline import FAST_FAILOVER
from sdn_app.core.plan import build_plan
from sdn_app.core.protection import plan_protection
from sdn_app.core.reconcile import update_waves
from sdn_app.core.te import compute_next_hops
from sdn_app.core.topology import Port

PROTECTED = ["diamond", "ring,4", "ring,5", "leafspine,2,3,2", "fattree,4"]


def protected_plan(topo, policy):
    hops = compute_next_hops(topo, policy)
    protection = plan_protection(topo.graph, hops)
    return build_plan(topo, next_hops=hops, protection=protection), protection


def cables(topo):
    """Each physical link once, as the (dpid, port) of both ends."""
    seen = {}
    for lk in topo.links():
        key = frozenset(((lk.src, lk.src_port), (lk.dst, lk.dst_port)))
        seen[key] = ((lk.src, lk.src_port), (lk.dst, lk.dst_port))
    return sorted(seen.values())


def check_all_pairs(topo, plan, failed, skip_switch=None):
    dataplane = FakeDataplane(topo, plan, failed)
    failed_ports = set(failed)
    for src, dst in itertools.permutations(topo.hosts.values(), 2):
        if skip_switch in (src.dpid, dst.dpid):
            continue
        result = dataplane.inject(src.dpid, src.port, src.mac, dst.mac)
        assert not result.dropped, ("dropped at a failed port", src.mac, dst.mac, result)
        assert result.delivered and set(result.delivered) == {(dst.dpid, dst.port)}, (
            src.mac, dst.mac, result)
        assert not result.to_controller, "no controller round trip"
        used = {(d, o) for d, _, o in result.hops}
        assert not used & failed_ports


@pytest.mark.parametrize("policy", ["shortest", "ecmp"])
@pytest.mark.parametrize("spec", PROTECTED)
def test_every_single_link_failure_is_survived_by_the_switches_alone(spec, policy):
    topo, _ = model_of(spec)
    plan, protection = protected_plan(topo, policy)
    assert not protection.unprotected, protection.unprotected
    for ends in cables(topo):
        check_all_pairs(topo, plan, ends)


@pytest.mark.parametrize("spec", ["ring,5", "leafspine,2,3,2", "fattree,4"])
def test_a_whole_switch_failing_is_survived_where_the_topology_allows(spec):
    topo, _ = model_of(spec)
    plan, _ = protected_plan(topo, "shortest")
    hosts_at = {h.dpid for h in topo.hosts.values()}
    transit = [d for d in topo.graph if d not in hosts_at]
    for victim in transit or sorted(topo.graph):
        failed = set()
        for lk in topo.links():
            if victim in (lk.src, lk.dst):
                failed |= {(lk.src, lk.src_port), (lk.dst, lk.dst_port)}
        check_all_pairs(topo, plan, failed, skip_switch=victim)


def test_rings_need_tagged_detours_and_get_them():
    topo, _ = model_of("ring,5")
    _, protection = protected_plan(topo, "shortest")
    assert protection.detours, "no loop-free alternate exists in a ring"
    tagged = [b for b in protection.backups.values() if b.tag]
    assert tagged and all(1 <= b.tag <= 4094 for b in tagged)


def test_fat_tree_uses_alternates_without_tags_where_they_exist():
    topo, _ = model_of("fattree,4")
    _, protection = protected_plan(topo, "ecmp")
    edge_up = [(u, p, d) for (u, p, d), b in protection.backups.items()
               if u == 0x30101 and d != u and b.tag is None]
    assert edge_up, "the other aggregation switch is a plain backup"


def test_plan_has_one_failover_group_per_protected_next_hop():
    topo, _ = model_of("diamond")
    plan, protection = protected_plan(topo, "ecmp")
    groups = [g for g in plan[0x10101].values() if getattr(g, "kind", None) == FAST_FAILOVER]
    assert len(groups) == sum(1 for (u, _, _) in protection.backups if u == 0x10101)
    assert all(len(g.buckets) == 2 and g.buckets[0].watch_port != g.buckets[1].watch_port
               for g in groups)


def test_double_failure_is_repaired_by_recomputation():
    topo, _ = model_of("ring,6")
    for dpid, port in ((0x10101, 2), (0x10104, 2)):  # two cables, ring cut in two places
        topo.port_changed(dpid, Port(port, live=False), SETTLED + 1)
    plan, _ = protected_plan(topo, "shortest")
    dataplane = FakeDataplane(topo, plan)
    reachable = 0
    for src, dst in itertools.permutations(topo.hosts.values(), 2):
        result = dataplane.inject(src.dpid, src.port, src.mac, dst.mac)
        if result.delivered:
            reachable += 1
            assert set(result.delivered) == {(dst.dpid, dst.port)}
    assert reachable > 0


def test_ids_are_stable_across_recomputation():
    topo, _ = model_of("fattree,4")
    first, _ = protected_plan(topo, "ecmp")
    again, _ = protected_plan(topo, "ecmp")
    assert first == again


def staged_plans(spec, ends):
    """The plan before the cable ``ends`` failed, the plan after, and the waves in which
    the controller moves switches from one to the other."""
    topo, _ = model_of(spec)
    old_hops = compute_next_hops(topo, "shortest")
    old = build_plan(topo, next_hops=old_hops, protection=plan_protection(topo.graph, old_hops))
    for dpid, port in ends:
        topo.port_changed(dpid, Port(port, live=False), SETTLED + 1)
    new_hops = compute_next_hops(topo, "shortest")
    new = build_plan(topo, next_hops=new_hops, protection=plan_protection(topo.graph, new_hops))
    return topo, old, new, update_waves(topo, old_hops, new_hops)


def mixed(old, new, done):
    """Switches in ``done`` hold the new plan plus the old entries it retires later."""
    return {d: {**old.get(d, {}), **new.get(d, {})} if d in done else old.get(d, {})
            for d in set(old) | set(new)}


@pytest.mark.parametrize("spec", PROTECTED)
def test_moving_to_the_new_plan_wave_by_wave_never_drops_or_loops(spec):
    """After each wave of the controller's update, every pair is still delivered over
    the surviving links: packets never meet a switch still sending them back."""
    topo, _ = model_of(spec)
    for ends in cables(topo):
        topo_after, old, new, waves = staged_plans(spec, ends)
        done = set()
        for wave in waves:
            done |= set(wave)
            check_all_pairs(topo_after, mixed(old, new, done), ends)


def test_the_wrong_order_would_drop():
    """The check above can fail: on the diamond, moving the switch before the cut ahead
    of the switch it now sends back to hands packets to one still sending them back."""
    topo, old, new, waves = staged_plans("diamond", ((0x10102, 2), (0x10104, 2)))
    assert len(waves) > 1
    with pytest.raises(AssertionError):
        done = set()
        for wave in reversed(waves):
            done |= set(wave)
            check_all_pairs(topo, mixed(old, new, done), ((0x10102, 2), (0x10104, 2)))
