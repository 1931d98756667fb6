import math
import random

import networkx as nx
import pytest
from shipped_topologies import SETTLED, model_of

from sdn_app.core.te import (
    WHOLE_OK,
    WHOLE_SLACK,
    Damper,
    SplitProblem,
    compute_next_hops,
    dag_towards,
    integer_weights,
    link_loads,
    min_max_utilization_split,
    port_loads,
    route_demand,
    shares_of,
)
from sdn_app.core.topology import Port
from sdn_app.core.yardsticks import optimal_max_utilization

S1, S2, S3, S4 = 0x10101, 0x10102, 0x10103, 0x10104
MBIT = 1e6


def unequal_diamond(main=10, alt=40):
    topo, _ = model_of("diamond")
    for u, port in ((S1, 2), (S2, 2), (S2, 1), (S4, 2)):
        topo.capacity_overrides[(u, port)] = main * MBIT
    for u, port in ((S1, 3), (S3, 2), (S3, 1), (S4, 3)):
        topo.capacity_overrides[(u, port)] = alt * MBIT
    return topo


def max_utilization(topo, next_hops, demand):
    loads = link_loads(topo, next_hops, demand)
    return max(load / topo.capacity(u, port) for (u, port), load in loads.items())


def test_dags_never_go_uphill_and_stretch_adds_only_downhill_hops():
    for spec in ("ring,5", "fattree,4", "leafspine,3,3,1"):
        topo, _ = model_of(spec)
        for root in topo.graph:
            for stretch in (0, 1, 2):
                dag = dag_towards(topo, root, stretch)
                assert set(dag) == set(topo.graph) - {root}
                g = nx.DiGraph([(u, v) for u, hops in dag.items() for v, _ in hops])
                assert nx.is_directed_acyclic_graph(g)
    topo, _ = model_of("ring,6")
    counts = {u: len(h) for u, h in dag_towards(topo, 0x10101).items()}
    assert counts.pop(0x10104) == 2, "the switch opposite the root has two ways"
    assert set(counts.values()) == {1}


def test_ecmp_uses_every_equal_cost_next_hop_with_equal_weights():
    topo, _ = model_of("fattree,4")
    hops = compute_next_hops(topo, "ecmp")
    edge, far = 0x30101, 0x30402
    assert hops[(edge, far)] == ((3, 1), (4, 1))  # both aggregation switches
    assert compute_next_hops(topo, "shortest")[(edge, far)] in (((3, 1),), ((4, 1),))


def test_adaptive_without_demand_splits_by_capacity():
    topo = unequal_diamond(10, 40)
    assert compute_next_hops(topo, "adaptive")[(S1, S4)] == ((2, 1), (3, 4))


def test_adaptive_with_demand_minimizes_the_maximum_utilization():
    topo = unequal_diamond(10, 40)
    demand = {(S1, S4): 30 * MBIT}
    hops = compute_next_hops(topo, "adaptive", demand)
    assert max_utilization(topo, hops, demand) == pytest.approx(0.6, abs=0.01)
    assert max_utilization(topo, compute_next_hops(topo, "ecmp"), demand) == pytest.approx(1.5)


def test_adaptive_matches_the_lp_optimum_on_leafspine_with_a_slow_spine():
    topo, _ = model_of("leafspine,3,3,1")
    slow_spine = 0x10103
    for lk in topo.links():
        fast = slow_spine not in (lk.src, lk.dst)
        topo.capacity_overrides[(lk.src, lk.src_port)] = (20 if fast else 5) * MBIT
    leaves = [0x20101, 0x20102, 0x20103]
    demand = {(a, b): 12 * MBIT for a in leaves for b in leaves if a != b}
    hops = compute_next_hops(topo, "adaptive", demand)
    # Each leaf sends 24 Mbit/s over uplinks of 20+20+5: the best is 24/45 everywhere.
    assert max_utilization(topo, hops, demand) == pytest.approx(24 / 45, abs=0.02)
    assert max_utilization(topo, hops, demand) < max_utilization(
        topo, compute_next_hops(topo, "ecmp"), demand)


def test_lp_split_is_deterministic_and_shares_sum_to_one():
    topo, _ = model_of("fattree,4")
    dsts = sorted({h.dpid for h in topo.hosts.values()})
    dags = {d: dag_towards(topo, d) for d in dsts}
    demand = {(a, b): (1 + (a * 7 + b) % 5) * MBIT for a in dsts for b in dsts if a != b}
    first = min_max_utilization_split(topo, dags, demand)
    assert first == min_max_utilization_split(topo, dags, demand)
    assert all(sum(s.values()) == pytest.approx(1) for s in first.values())


@pytest.mark.parametrize("seed", range(4))
def test_the_split_problems_optimum_is_what_its_split_and_its_first_flows_reach(seed):
    """Placement is bounded by SplitProblem.optimum and built on optimal_flows, without
    the second LP: both must be what the full split reaches."""
    import random
    rng = random.Random(seed)
    topo, _ = model_of("fattree,4")
    for lk in rng.sample(topo.links(), 6):
        topo.capacity_overrides[(lk.src, lk.src_port)] = rng.choice((2, 5)) * MBIT
    dsts = sorted({h.dpid for h in topo.hosts.values()})
    dags = {d: dag_towards(topo, d) for d in dsts}
    demand = {(a, b): rng.uniform(0, 6) * MBIT for a in dsts for b in dsts
              if a != b and rng.random() < 0.5}
    problem = SplitProblem(topo, dags, demand)
    optimum = problem.optimum()
    flows = problem.optimal_flows(dags)
    first = max(load / topo.capacity(u, port)
                for (u, port), load in port_loads(flows).items())
    split = max(load / topo.capacity(u, port) for (u, port), load in
                port_loads(route_demand(dags, demand, problem.split())).items())
    assert first == pytest.approx(optimum, rel=1e-4)
    assert split == pytest.approx(optimum, rel=1e-4)
    assert optimum < max_utilization(topo, compute_next_hops(topo, "ecmp"), demand)


@pytest.mark.parametrize("shares", [
    {1: 0.75, 2: 0.25}, {1: 1.0, 2: 0.0}, {1: 0.001, 2: 0.999}, {1: 0.5, 2: 0.5},
    {1: 1, 2: 1, 3: 1}, {1: 0.0, 2: 0.0}, {4: 0.3333, 5: 0.6667}, {1: 1e-9, 2: 1.0},
])
def test_integer_weights_respect_the_dp_hash_rule(shares):
    weights = integer_weights(shares)
    assert [p for p, _ in weights] == sorted(shares), "every allowed next hop stays"
    values = [w for _, w in weights]
    assert min(values) >= 1
    assert math.ceil(sum(values) / min(values)) <= 256
    assert math.gcd(*values) == 1
    total = sum(shares.values())
    for port, share in shares_of(weights).items():
        wanted = shares[port] / total if total else 1 / len(shares)
        assert abs(share - wanted) < 0.02


def test_integer_weights_reduce():
    assert integer_weights({1: 0.75, 2: 0.25}) == ((1, 3), (2, 1))
    assert integer_weights({3: 1.0}) == ((3, 1),)


def test_damper_holds_small_moves_and_rate_limits_big_ones():
    damper = Damper(threshold=0.05, hold=5)
    first = {("u", "d"): ((1, 1), (2, 1))}
    assert damper.apply(first, {}, 0) == first
    small = {("u", "d"): ((1, 52), (2, 48))}
    assert damper.apply(small, first, 10) == first, "a 2% move is noise"
    big = {("u", "d"): ((1, 3), (2, 1))}
    assert damper.apply(big, first, 10) == big
    bigger = {("u", "d"): ((1, 9), (2, 1))}
    assert damper.apply(bigger, big, 12) == big, "held: changed 2 s ago"
    assert damper.apply(bigger, big, 15.5) == bigger


def test_damper_lets_topology_changes_through_at_once():
    damper = Damper(threshold=0.05, hold=5)
    current = {("u", "d"): ((1, 1), (2, 1))}
    damper.apply(current, {}, 0)
    rerouted = {("u", "d"): ((2, 1),)}
    assert damper.apply(rerouted, current, 0.1) == rerouted


def test_adaptive_reroutes_around_a_failed_link():
    topo = unequal_diamond()
    topo.port_changed(S1, Port(3, live=False), SETTLED + 1)
    assert compute_next_hops(topo, "adaptive", {(S1, S4): 30 * MBIT})[(S1, S4)] == ((2, 1),)


def test_unknown_policy_is_rejected():
    topo, _ = model_of("diamond")
    with pytest.raises(ValueError, match="policy"):
        compute_next_hops(topo, "fastest")


def test_optimum_over_all_paths_bounds_every_policy():
    topo = unequal_diamond(10, 40)
    demand = {(S1, S4): 30 * MBIT}
    assert optimal_max_utilization(topo, demand) == pytest.approx(0.6, abs=1e-6)
    topo, _ = model_of("ring,5")
    ring_demand = {(0x10101, 0x10103): 100 * MBIT}
    best = optimal_max_utilization(topo, ring_demand)
    # 1 Gbit/s links: half each way round the ring at best.
    assert best == pytest.approx(0.05, abs=1e-6)
    for policy in ("shortest", "ecmp", "adaptive"):
        hops = compute_next_hops(topo, policy, ring_demand)
        assert max_utilization(topo, hops, ring_demand) >= best - 1e-9


def fat_tree_at(mbit):
    topo, _ = model_of("fattree,4")
    for lk in topo.links():
        topo.capacity_overrides[(lk.src, lk.src_port)] = mbit * MBIT
    return topo


def follow(next_hops, topo, u, d):
    """The switches a frame visits from u to d when every hop is a single next hop."""
    ports = {(lk.src, lk.src_port): lk.dst for lk in topo.links()}
    seen = [u]
    while u != d:
        (port, _), = next_hops[(u, d)]
        u = ports[(u, port)]
        assert u not in seen, "loop"
        seen.append(u)
    return seen


def test_few_large_flows_are_placed_whole_and_packed_evenly():
    """VR-like: one server edge sends 4, 3, 3 and 2 Mbit/s to four far edges over two
    10 Mbit/s uplinks.  Placed whole, each aggregate takes one path (what is planned is
    what flows, hashing or not) and the uplinks carry 6 and 6."""
    topo = fat_tree_at(10)
    server = 0x30201
    demand = {(server, 0x30101): 4 * MBIT, (server, 0x30102): 3 * MBIT,
              (server, 0x30301): 3 * MBIT, (server, 0x30401): 2 * MBIT}
    hops = compute_next_hops(topo, "adaptive", demand)
    for (u, d) in demand:
        assert len(hops[(u, d)]) == 1, hops[(u, d)]
        path = follow(hops, topo, u, d)
        assert len(path) == 5  # edge, aggregation, core, aggregation, edge
    loads = link_loads(topo, hops, demand)
    uplinks = sorted(loads.get((server, port), 0.0) / MBIT for port in (3, 4))
    assert uplinks == [6, 6]
    assert max_utilization(topo, hops, demand) == pytest.approx(
        optimal_max_utilization(topo, demand))


def test_placement_keeps_good_choices_and_leaves_big_aggregates_split():
    topo = fat_tree_at(10)
    server = 0x30201
    demand = {(server, d): 3 * MBIT for d in (0x30101, 0x30102, 0x30301, 0x30401)}
    first = compute_next_hops(topo, "adaptive", demand)
    nudged = {**demand, (server, 0x30101): 3.4 * MBIT}
    assert compute_next_hops(topo, "adaptive", nudged, current=first) == first, \
        "a small change in demand moves nothing"
    big = {(server, 0x30101): 9 * MBIT}  # whole, one uplink would run at 0.9: split
    assert len(compute_next_hops(topo, "adaptive", big)[(server, 0x30101)]) == 2
    idle = compute_next_hops(topo, "adaptive", {})
    assert len(idle[(server, 0x30101)]) == 2, "no demand yet: capacity-proportional split"


def test_every_destination_placed_whole_is_a_loop_free_tree():
    topo = fat_tree_at(10)
    edges = [u for u in topo.graph if u >> 16 == 3]
    demand = {(u, d): 1 * MBIT for u in edges for d in edges if u != d}
    hops = compute_next_hops(topo, "adaptive", demand)
    for d in edges:
        for u in topo.graph:
            if u != d:
                assert follow(hops, topo, u, d)[-1] == d


def test_damper_holds_a_placement_move_but_not_a_forced_one():
    damper = Damper(threshold=0.05, hold=5)
    allowed = {("u", "d"): {1, 2}}
    first = {("u", "d"): ((1, 1),)}
    damper.apply(first, {}, 0, allowed)
    moved = {("u", "d"): ((2, 1),)}
    assert damper.apply(moved, first, 2, allowed) == first, "held: placed 2 s ago"
    assert damper.apply(moved, first, 6, allowed) == moved
    assert damper.apply(first, moved, 6.5, {("u", "d"): {1}}) == first, \
        "port 2 left the DAG: at once"


def test_demand_hovering_at_the_line_does_not_flip_placement_and_split():
    """A 9 Mbit/s aggregate beside it makes whole placement too costly, so only
    aggregates under half a link are placed; one hovering just above stays placed."""
    topo = fat_tree_at(10)
    server, far, big = 0x30201, 0x30101, 0x30102
    placed = compute_next_hops(topo, "adaptive", {(server, far): 4.9 * MBIT,
                                                  (server, big): 9 * MBIT})
    assert len(placed[(server, far)]) == 1 and len(placed[(server, big)]) == 2
    both = {(server, far): 4.9 * MBIT, (server, big): 9 * MBIT}
    assert max_utilization(topo, placed, both) == pytest.approx(0.695, abs=0.01), \
        "the split goes around what was placed"
    above = {(server, far): 5.5 * MBIT, (server, big): 9 * MBIT}  # within the hysteresis
    assert compute_next_hops(topo, "adaptive", above, current=placed)[(server, far)] \
        == placed[(server, far)]
    assert len(compute_next_hops(topo, "adaptive", above)[(server, far)]) == 2
    beyond = {(server, far): 7 * MBIT, (server, big): 12 * MBIT}
    assert len(compute_next_hops(topo, "adaptive", beyond, current=placed)[(server, far)]) == 2


def test_damper_lets_a_revert_through_after_a_repair():
    damper = Damper(threshold=0.05, hold=5)
    allowed = {("u", "d"): {1, 2}}
    detour = {("u", "d"): ((2, 1),)}
    damper.apply(detour, {}, 0, allowed)
    original = {("u", "d"): ((1, 1),)}
    assert damper.apply(original, detour, 1, allowed) == detour
    assert damper.apply(original, detour, 1, allowed, revert={"d"}) == original


def test_placement_ignores_noise_but_moves_off_a_hot_link():
    import random
    topo = fat_tree_at(10)
    edges = sorted(u for u in topo.graph if u >> 16 == 3)
    rng = random.Random(1)
    demand = {}
    for _ in range(16):
        a, b = rng.sample(edges, 2)
        demand[(a, b)] = demand.get((a, b), 0) + 2.2 * MBIT
    placed = compute_next_hops(topo, "adaptive", demand)
    for _ in range(10):
        noisy = {k: v * rng.uniform(0.9, 1.1) for k, v in demand.items()}
        assert compute_next_hops(topo, "adaptive", noisy, current=placed) == placed
    # Demand shifts so the current placement would run an uplink at 0.9: it moves.
    server, a, b, c = 0x30201, 0x30101, 0x30102, 0x30301
    before = {(server, a): 1 * MBIT, (server, b): 1 * MBIT, (server, c): 4 * MBIT}
    placed = compute_next_hops(topo, "adaptive", before)
    after = {(server, a): 4.5 * MBIT, (server, b): 4.5 * MBIT, (server, c): 1 * MBIT}
    assert max_utilization(topo, placed, after) >= 0.9
    moved = compute_next_hops(topo, "adaptive", after, current=placed)
    assert max_utilization(topo, moved, after) <= 0.55 + 1e-9


def test_a_pause_in_demand_keeps_the_placement():
    topo = fat_tree_at(10)
    server, far = 0x30201, 0x30101
    placed = compute_next_hops(topo, "adaptive", {(server, far): 2 * MBIT})
    assert len(placed[(server, far)]) == 1
    assert compute_next_hops(topo, "adaptive", {}, current=placed) == placed


def test_a_stream_still_ramping_up_is_not_placed_whole_on_its_smoothed_rate():
    """16 Mbit/s starts toward a far edge: a second in, its smoothed rate reads 6 Mbit/s
    (it would fit one 10 Mbit/s uplink) but the last interval says 16; it stays split
    until its rate has settled, then counts at its real size.  A light one is placed
    whole once settled, and a placed one leaves placement as soon as the last interval
    outgrows the link, not a time constant later."""
    topo = fat_tree_at(10)
    server, far = 0x30201, 0x30101
    key = (server, far)
    ramping = compute_next_hops(topo, "adaptive", {key: 6 * MBIT}, latest={key: 16 * MBIT})
    assert len(ramping[key]) == 2
    settled = compute_next_hops(topo, "adaptive", {key: 15 * MBIT}, latest={key: 16 * MBIT})
    assert len(settled[key]) == 2
    light = compute_next_hops(topo, "adaptive", {key: 1.9 * MBIT}, latest={key: 2 * MBIT})
    assert len(light[key]) == 1
    assert compute_next_hops(topo, "adaptive", {key: 4 * MBIT}, current=light,
                             latest={key: 6 * MBIT}) == light, "grows, still fits: stays"
    grown = compute_next_hops(topo, "adaptive", {key: 8 * MBIT}, current=light,
                              latest={key: 16 * MBIT})
    assert len(grown[key]) == 2
    assert compute_next_hops(topo, "adaptive", {key: 1 * MBIT}, current=light,
                             latest={key: 0.0}) == light, "paused: stays"


def test_aggregates_over_half_a_link_are_placed_whole_when_that_costs_little():
    """Three VR streams to one far edge (6.6 Mbit/s) and two to another (4.4): each fits
    a 10 Mbit/s link, and placed whole the uplinks run at 0.66 and 0.44 (fluid optimum
    0.55), so neither is hashed.  Eight streams of 2 Mbit/s to one edge plus one to
    another cannot be placed well (1.6 on a link): split."""
    topo = fat_tree_at(10)
    server, a, b = 0x30201, 0x30101, 0x30102
    vr_like = {(server, a): 6.6 * MBIT, (server, b): 4.4 * MBIT}
    hops = compute_next_hops(topo, "adaptive", vr_like)
    assert len(hops[(server, a)]) == len(hops[(server, b)]) == 1
    assert hops[(server, a)] != hops[(server, b)]
    assert max_utilization(topo, hops, vr_like) == pytest.approx(0.66)
    heavy = {(server, a): 16 * MBIT, (server, b): 2 * MBIT}
    assert len(compute_next_hops(topo, "adaptive", heavy)[(server, a)]) == 2


def test_whole_placement_is_kept_while_no_link_passes_0_8():
    """Placed whole, 7.7 and 3.3 Mbit/s run the uplinks at 0.77 where the fluid optimum is
    0.55: more than 0.15 worse, but no link is near full, so hashing is not risked."""
    topo = fat_tree_at(10)
    server, a, b = 0x30201, 0x30101, 0x30102
    demand = {(server, a): 7.7 * MBIT, (server, b): 3.3 * MBIT}
    hops = compute_next_hops(topo, "adaptive", demand)
    assert len(hops[(server, a)]) == len(hops[(server, b)]) == 1
    assert max_utilization(topo, hops, demand) == pytest.approx(0.77)


@pytest.mark.parametrize("seed", range(6))
def test_whole_placement_never_costs_more_than_its_allowance(seed):
    """On fat trees with a fifth of the cables at a quarter of their capacity and
    aggregates a permutation of edge switches sends, near the LP's optimum: whatever is
    placed whole, the busiest link stays within max(optimum + WHOLE_SLACK, WHOLE_OK).
    (Placing at half a link once left one at 118% where the split reached 90%.)"""
    import random
    rng = random.Random(seed)
    topo = fat_tree_at(1000)
    for lk in rng.sample(topo.links(), len(topo.links()) // 5):
        topo.capacity_overrides[(lk.src, lk.src_port)] = 250 * MBIT
    edges = sorted(u for u in topo.graph if u >> 16 == 3)
    shuffled = edges[:]
    while any(a == b for a, b in zip(edges, shuffled, strict=True)):
        rng.shuffle(shuffled)
    demand = {(a, b): rng.choice((50, 200, 400)) * MBIT
              for a, b in zip(edges, shuffled, strict=True)}
    dags = {d: dag_towards(topo, d) for d in {d for _, d in demand}}
    fluid = max_utilization(topo, {key: integer_weights(shares) for key, shares in
                                   min_max_utilization_split(topo, dags, demand).items()},
                            demand)
    demand = {key: v * 0.9 / fluid for key, v in demand.items()}  # near the optimum
    optimum = 0.9
    hops = compute_next_hops(topo, "adaptive", demand)
    assert max_utilization(topo, hops, demand) <= max(optimum + WHOLE_SLACK, WHOLE_OK) + 0.02


def test_an_lp_out_of_time_falls_back_to_the_capacity_split(monkeypatch):
    """The LP runs inside the controller's event loop; past LP_TIME_LIMIT its answer is
    given up for the capacity-proportional split, not waited for."""
    import sdn_app.core.te as te
    topo = unequal_diamond()
    dags = {S4: dag_towards(topo, S4)}
    demand = {(S1, S4): 30 * MBIT}
    busy = {(S1, 3): 20 * MBIT}  # traffic placed on the wide path already
    solved = min_max_utilization_split(topo, dags, demand, busy)
    monkeypatch.setattr(te, "LP_TIME_LIMIT", 0.0)
    fallback = min_max_utilization_split(topo, dags, demand, busy)
    assert fallback == {(u, S4): te.capacity_split(topo, u, hops)
                        for u, hops in dags[S4].items() if hops}
    assert fallback != solved


def test_damper_passes_a_joint_move_whole_rather_than_stack_two_aggregates():
    """A cut forces aggregate b onto port 1, and the placement makes room by moving a
    (placed 1 s ago) to port 3.  Holding a's move alone would put both on port 1."""
    damper = Damper(threshold=0.05, hold=5)
    a, b = ("u", "da"), ("u", "db")
    allowed = {a: {1, 2, 3}, b: {1, 2, 3}}
    placed = {a: ((1, 1),), b: ((2, 1),)}
    damper.apply(placed, {}, 0, allowed)

    def busiest(hops):  # each aggregate 6 Mbit/s, every port 10 Mbit/s
        per_port = {}
        for key in (a, b):
            for port, share in shares_of(hops[key]).items():
                per_port[port] = per_port.get(port, 0.0) + 0.6 * share
        return max(per_port.values())

    after_cut = {a: ((3, 1),), b: ((1, 1),)}
    cut = {a: {1, 3}, b: {1, 3}}
    assert damper.apply(after_cut, placed, 1, cut) == {a: ((1, 1),), b: ((1, 1),)}, \
        "without the joint check a's move is held and port 1 carries both"
    damper = Damper(threshold=0.05, hold=5)
    damper.apply(placed, {}, 0, allowed)
    assert damper.apply(after_cut, placed, 1, cut, busiest=busiest) == after_cut
    assert damper.passed_whole
    assert damper.apply({a: ((1, 1),), b: ((1, 1),)}, after_cut, 2, cut,
                        busiest=busiest) == after_cut, "a's move counts as a change: held"


def test_damper_still_holds_moves_whose_damped_result_is_within_bounds():
    damper = Damper(threshold=0.05, hold=5)
    a, b = ("u", "da"), ("u", "db")
    allowed = {a: {1, 2, 3}, b: {1, 2, 3}}
    placed = {a: ((1, 1),), b: ((2, 1),)}
    damper.apply(placed, {}, 0, allowed)
    light = lambda hops: 0.5 if hops[a] == hops[b] else 0.25  # noqa: E731
    moved = {a: ((3, 1),), b: ((1, 1),)}
    assert damper.apply(moved, placed, 1, {a: {1, 3}, b: {1, 3}}, busiest=light) \
        == {a: ((1, 1),), b: ((1, 1),)}, "both on one link at 50%: damping stands"
    assert not damper.passed_whole


def test_a_split_in_force_stays_while_it_is_within_the_slack_of_the_optimum():
    """Demand wobbling by 1% (measurement noise) moves a few groups at most when the
    split in force is passed in, where solving afresh moves many (every move rehashes
    live flows); a shift the split in force cannot absorb still moves it."""
    rng = random.Random(5)
    topo, _ = model_of("fattree,4")
    for lk in topo.links():  # unequal links: the LP's answer is not capacity-proportional
        topo.capacity_overrides[(lk.src, lk.src_port)] = rng.choice((5, 10, 20)) * MBIT
    edges = [0x30101, 0x30102, 0x30201, 0x30202, 0x30301, 0x30302, 0x30401, 0x30402]
    demand = {(u, d): rng.uniform(1.6, 3.6) * MBIT for u in edges for d in edges
              if u != d and rng.random() < 0.3}
    first = compute_next_hops(topo, "adaptive", demand)
    split = [key for key, hops in first.items() if len(hops) > 1 and key in demand]
    assert any(len({w for _, w in first[key]}) > 1 for key in split), "an uneven split"
    held = afresh = first
    moves_held = moves_afresh = 0
    dags = {d: dag_towards(topo, d) for d in {d for _, d in demand}}
    for _ in range(5):
        wobbled = {key: v * rng.uniform(0.99, 1.01) for key, v in demand.items()}
        new_held = compute_next_hops(topo, "adaptive", wobbled, current=held)
        new_afresh = compute_next_hops(topo, "adaptive", wobbled)
        moves_held += sum(new_held[k] != held.get(k) for k in new_held)
        moves_afresh += sum(new_afresh[k] != afresh.get(k) for k in new_afresh)
        held, afresh = new_held, new_afresh
        assert max_utilization(topo, held, wobbled) <= \
            SplitProblem(topo, dags, wobbled).optimum() + 0.03
    assert moves_held * 2 < moves_afresh, (moves_held, moves_afresh)
    shifts = ({**demand, key: factor * demand[key]} for factor in (1.5, 2.0, 3.0)
              for key in sorted(split, key=lambda key: -demand[key]))
    for shifted in shifts:  # one the split in force cannot absorb
        if max_utilization(topo, first, shifted) > \
                SplitProblem(topo, dags, shifted).optimum() + 0.05:
            break
    else:
        raise AssertionError("no shift the split in force cannot absorb")
    moved = compute_next_hops(topo, "adaptive", shifted, current=first)
    assert max_utilization(topo, moved, shifted) < max_utilization(topo, first, shifted)
