"""Hash splits (the split table, pipeline.py): what OpenFlow 1.3 Open vSwitch switches
get instead of SELECT groups, proven on the simulated dataplane like the groups are."""

import pytest
from shipped_topologies import SETTLED, model_of
from test_protection import PROTECTED, cables, check_all_pairs

from sdn_app.core.pipeline import MAX_SPLIT_SLOTS, SELECT, TABLE_SPLIT, GroupEntry
from sdn_app.core.plan import build_plan, split_slots
from sdn_app.core.protection import plan_protection
from sdn_app.core.te import compute_next_hops
from sdn_app.core.trace import trace


def split_plan(topo, policy="ecmp"):
    hops = compute_next_hops(topo, policy)
    return build_plan(topo, next_hops=hops, protection=plan_protection(topo.graph, hops),
                      hash_split_switches=frozenset(topo.graph))


@pytest.mark.parametrize("hops,want", [
    (((1, 1), (2, 1)), [1, 2]),
    (((1, 1), (2, 4)), [1, 2, 2, 2, 2]),
    (((2, 63), (1, 37)), [1] * 6 + [2] * 10),
    (((1, 1), (2, 1), (3, 98)), [1, 2] + [3] * 14),
])
def test_slots_follow_the_weights(hops, want):
    assert split_slots(hops) == want


def test_more_next_hops_than_slots_keep_one_slot_each():
    hops = tuple((port, 1 + port % 3) for port in range(1, MAX_SPLIT_SLOTS + 3))
    assert sorted(split_slots(hops)) == [p for p, _ in hops]


@pytest.mark.parametrize("spec", PROTECTED)
def test_split_switches_survive_every_single_link_failure_alone(spec):
    topo, _ = model_of(spec)
    plan = split_plan(topo)
    for ends in cables(topo):
        check_all_pairs(topo, plan, ends)


def test_split_switches_hold_no_select_groups_and_trace_the_same_shares():
    topo, macs = model_of("fattree,4")
    split, grouped = split_plan(topo), build_plan(topo, next_hops=compute_next_hops(topo, "ecmp"))
    assert not any(isinstance(g, GroupEntry) and g.kind == SELECT
                   for entries in split.values() for g in entries.values())
    assert any(key[0] == TABLE_SPLIT for entries in split.values() for key in entries)
    src, dst = topo.hosts[macs["h1"]], topo.hosts[macs["h16"]]
    shares = sorted(p["share"] for p in trace(split, topo, src, dst))
    assert shares == sorted(p["share"] for p in trace(grouped, topo, src, dst)) == [0.25] * 4


def test_a_split_stays_loop_free_after_a_cut_and_recomputation():
    topo, _ = model_of("leafspine,4,4,1")
    link = topo.links()[0]
    for dpid, port in ((link.src, link.src_port), (link.dst, link.dst_port)):
        from sdn_app.core.topology import Port
        topo.port_changed(dpid, Port(port, live=False), SETTLED + 1)
    check_all_pairs(topo, split_plan(topo), ())
