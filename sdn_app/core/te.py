"""Next hops and their weights toward every destination switch, under a policy.

For each destination switch d the allowed next hops form a DAG: from switch u, only
neighbours strictly closer to d (in hops) are used, so whatever the weights, no packet
can loop.  ``stretch`` admits paths up to that many hops longer than the shortest.

Policies:

* ``shortest``: one next hop (the stable tie-break of paths.tree_towards);
* ``ecmp``: every next hop of the DAG, equal weights;
* ``adaptive``: weights that minimise the maximum link utilisation for the measured
  demand (a linear program over the DAGs), ties broken toward a capacity-proportional
  split so the answer is unique and stable; with no demand measured, capacity-
  proportional weights.  A Damper keeps the weights from flapping.

  A switch hashes whole flows onto buckets, so a fluid split only comes true for many
  small flows.  VR streams are few and large (a handful per destination, each a sizable
  part of a link): hashed, two land on one link as often as not, and the LP's balance
  stays on paper.  So destinations are *placed whole* where that costs little: one next
  hop per switch, chosen greedily, largest aggregates first, for the least loaded
  bottleneck along the way (``place_whole``); what is planned is then exactly what
  flows.  First every destination whose aggregates (traffic entering at one switch)
  each fit a link is placed; if that leaves the busiest link above ``WHOLE_OK`` and
  more than ``WHOLE_SLACK`` above the LP's fluid optimum (big aggregates that need
  splitting), only those whose aggregates fit half a link are; and if even that costs
  more (measured: on a fat tree with a fifth of its cables at a quarter of their
  capacity, placing at half a link left one at 118% where the split reached 90%),
  nothing is placed.  The rest, and destinations with no demand yet, keep the LP
  split.

Result type: NextHops = {(u, d): ((port, weight), ...)} with integer weights.
"""

from __future__ import annotations

import math
from functools import lru_cache, reduce

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, vstack

from . import paths
from .topology import Topology

POLICIES = ("shortest", "ecmp", "adaptive")
WEIGHT_SCALE = 100  # integer weights are shares in percent, reduced by their gcd
# dp_hash in OVS spreads a group over at most 256 hash slots: ceil(sum/min) must fit.
MAX_WEIGHT_RATIO = 256
# An LP runs inside the controller's event loop: past this many seconds its answer is
# given up for a simpler one (min_max_utilization_split).
LP_TIME_LIMIT = 5.0


def destinations(topo: Topology) -> list[int]:
    """Switches with hosts behind them: the only ones traffic is forwarded toward."""
    return sorted({h.dpid for h in topo.hosts.values() if h.dpid in topo.graph})


def dag_towards(topo: Topology, root: int, stretch: int = 0) -> dict[int, list[tuple]]:
    return paths.dag_towards(topo.graph, root, stretch)


def integer_weights(shares: dict[int, float]) -> tuple:
    """((port, weight), ...) from fractional shares: whole percents, at least 1 so every
    allowed next hop stays in the group (the set then changes only with the topology),
    reduced by the gcd (3:1 rather than 75:25).  Keeps ceil(sum/min) <= 256 for dp_hash."""
    total = sum(shares.values())
    if total <= 0:
        shares, total = {p: 1.0 for p in shares}, float(len(shares))
    return _reduced(tuple(sorted((p, max(1, round(s / total * WEIGHT_SCALE)))
                                 for p, s in shares.items())))


@lru_cache(maxsize=4096)
def _reduced(percents: tuple) -> tuple:
    """((port, percent), ...) divided by their gcd; a few thousand distinct ones recur
    across the tens of thousands of groups of a big fabric."""
    gcd = reduce(math.gcd, (w for _, w in percents))
    result = tuple((p, w // gcd) for p, w in percents)
    assert math.ceil(sum(w for _, w in result) / min(w for _, w in result)) <= MAX_WEIGHT_RATIO
    return result


def shares_of(weights: tuple) -> dict[int, float]:
    total = sum(w for _, w in weights)
    return {p: w / total for p, w in weights}


PIN_FRACTIONS = (1.0, 0.5)  # aggregates up to this share of a link are placed whole
PIN_HYSTERESIS = 1.3  # ... and stay placed whole until they pass 1.3 times that
# An aggregate whose last interval ran above this many times its smoothed rate is still
# ramping up: its smoothed rate says too little about its size to place it whole yet.
RISING = 1.2
WHOLE_SLACK = 0.15  # utilisation placement may cost over the fluid optimum ...
WHOLE_OK = 0.8  # ... or any, as long as no link goes above this
JOINT_MARGIN = 0.05  # how much damping may load the busiest link beyond the proposal
STABLE_SLACK = 0.02  # utilisation a split may cost over the optimum to stay as it is


def compute_next_hops(topo: Topology, policy: str, demand: dict | None = None,
                      stretch: int = 0, current: dict | None = None,
                      latest: dict | None = None) -> dict:
    """NextHops for every switch toward every destination switch.  ``demand`` is the
    smoothed traffic matrix, ``latest`` the same over the last interval alone (see
    ``placeable``); ``current`` (the NextHops in force) lets adaptive placement keep a
    choice that is still good."""
    if policy not in POLICIES:
        raise ValueError("policy must be one of %s, got %r" % (", ".join(POLICIES), policy))
    result = {}
    if policy == "shortest":
        for d in destinations(topo):
            for u, port in paths.tree_towards(topo.graph, d).items():
                result[(u, d)] = ((port, 1),)
        return result
    dags = {d: dag_towards(topo, d, stretch) for d in destinations(topo)}
    if policy == "ecmp":
        for d, dag in dags.items():
            for u, hops in dag.items():
                if hops:
                    result[(u, d)] = tuple(sorted((port, 1) for _, port in hops))
        return result
    demand = demand or {}
    problem = SplitProblem(topo, dags, demand, current=current)
    bound = max(problem.optimum() + WHOLE_SLACK, WHOLE_OK)
    for fraction in PIN_FRACTIONS:
        pinned = placeable(topo, dags, demand, current, fraction, latest)
        if not pinned:
            continue
        fluid = {d: dags[d] for d in dags if d not in pinned}
        base = port_loads(problem.optimal_flows(fluid))
        placed, highest = place_whole(topo, {d: dags[d] for d in pinned}, demand, base,
                                      current or {})
        # ``highest`` counts the rest at the split made before placing: an upper bound
        if highest > bound and fraction != PIN_FRACTIONS[-1]:
            continue
        candidate = {key: ((port, 1),) for key, port in placed.items()}
        if fluid:  # split the rest around what was placed
            pinned_dags = {d: dags[d] for d in pinned}
            trees = {key: {port: 1.0} for key, port in placed.items()}
            around = port_loads(route_demand(pinned_dags, demand, trees))
            candidate.update(weighted(min_max_utilization_split(topo, fluid, demand,
                                                                 around, current)))
        if highest <= bound or highest_utilization(topo, port_loads(route_demand(
                dags, demand, {key: shares_of(w) for key, w in candidate.items()}))) <= bound:
            if any(hops and (u, d) not in candidate
                   for d, dag in dags.items() for u, hops in dag.items()):
                return {**weighted(problem.split()), **candidate}
            return candidate  # no need for the split's second LP
        break
    return weighted(problem.split())


def weighted(split: dict) -> dict:
    """NextHops from a split {(u, d): {port: share}}."""
    result, weights = {}, {}  # many groups share a split (capacity-proportional above all)
    for key, shares in split.items():
        signature = tuple(shares.items())
        if signature not in weights:
            weights[signature] = integer_weights(shares)
        result[key] = weights[signature]
    return result


def port_loads(flow: dict) -> dict:
    """{(u, port): bits/s} from per-DAG-edge flows."""
    loads = {}
    for (_d, u, _v, port), amount in flow.items():
        loads[(u, port)] = loads.get((u, port), 0.0) + amount
    return loads


def link_loads(topo: Topology, next_hops: dict, demand: dict) -> dict:
    """{(u, port): bits/s} when ``demand`` follows ``next_hops`` (fluid model): what a
    set of next hops would put on each link.  (bench_balance.py computes the same from
    the shares the running controller reports, GET /v1/paths.)"""
    neighbour = {(lk.src, lk.src_port): lk.dst for lk in topo.links()}
    dags, shares = {}, {}
    for (u, d), hops in next_hops.items():
        dags.setdefault(d, {})[u] = [(neighbour[(u, p)], p) for p, _ in hops
                                     if (u, p) in neighbour]
        shares[(u, d)] = dict(hops)
    return port_loads(route_demand(dags, demand, shares))


def highest_utilization(topo: Topology, loads: dict) -> float:
    return max((amount / topo.capacity(u, port) for (u, port), amount in loads.items()
                if topo.capacity(u, port)), default=0.0)


def allowed_ports(topo: Topology, stretch: int = 0) -> dict:
    """{(u, d): set of ports} every policy may use (the DAGs): what the Damper needs to
    tell a forced change (a port left the DAG) from an optimisation."""
    return {(u, d): {port for _, port in hops}
            for d in destinations(topo)
            for u, hops in dag_towards(topo, d, stretch).items() if hops}


def placeable(topo: Topology, dags: dict, demand: dict, current: dict | None = None,
              fraction: float = 1.0, latest: dict | None = None) -> set:
    """Destinations with measured demand whose every aggregate fits ``fraction`` of the
    smallest link it could leave by.  A destination placed whole now (``current``) stays
    so until an aggregate passes PIN_HYSTERESIS times that, and while its traffic pauses
    (an on/off source): demand hovering at the line or coming in bursts must not flip it
    between placement and split at every recomputation.

    An aggregate counts at the larger of its smoothed and its ``latest`` rate, and one
    still ramping up (``latest`` above RISING times the smoothed rate) keeps a destination
    from being newly placed: the smoothed rate of a 16 Mbit/s stream that just started
    read 6 Mbit/s, which fits a 10 Mbit/s link, and the stream went whole onto one path
    for as long as the Damper held the choice."""
    current, latest = current or {}, latest or {}
    result = set()
    for d, dag in dags.items():
        loads = [(u, v, latest.get((u, dd), v)) for (u, dd), v in demand.items()
                 if dd == d and dag.get(u)]
        placed_now = any(len(dag[u]) > 1 and len(current.get((u, d), ())) == 1 for u in dag)
        if not placed_now and (not any(v > 0 for _, v, _ in loads)
                               or any(last > RISING * v for _, v, last in loads)):
            continue
        limit = fraction * (PIN_HYSTERESIS if placed_now else 1.0)
        if all(max(v, last) <= limit * min(topo.capacity(u, p) for _, p in dag[u])
               for u, v, last in loads):
            result.add(d)
    return result


def place_whole(topo: Topology, dags: dict, demand: dict, base: dict | None = None,
                current: dict | None = None, keep_within: float = 0.1) -> tuple:
    """({(u, d): port}, highest link utilisation): one next hop per switch toward each
    destination in ``dags``, so each destination's traffic follows a tree whose busiest
    link is as idle as possible.

    Greedy: destinations by total demand, then their aggregates, largest first; from the
    aggregate's ingress, a bottleneck DP over the DAG (the best achievable max link
    utilisation to d, given the load placed so far and the choices already fixed)
    picks each next hop, and the aggregate's load is added along the path.

    Stability matters more than the last percent: every move shifts live streams onto
    other queues and can reorder them (measured: a placement that changed every second
    cost frames on every stream).  So the current placement (``current``:
    NextHops) is kept whole, placing only what is new, unless a fresh placement lowers
    the busiest link by more than ``keep_within``; even a fresh placement keeps each
    current choice that is within ``keep_within`` of the best.  Switches no demand passes
    keep their choice, or get the least loaded next hop.  ``base``: {(u, port): bits/s}
    already on links."""
    current = current or {}
    fresh, fresh_max = _place(topo, dags, demand, base, current, keep_within, keep_all=False)
    if not current:  # nothing to keep: keeping it would place the same
        return fresh, fresh_max
    kept, kept_max = _place(topo, dags, demand, base, current, keep_within, keep_all=True)
    return (kept, kept_max) if kept_max <= fresh_max + keep_within else (fresh, fresh_max)


def _place(topo, dags, demand, base, current, keep_within, keep_all):
    """One greedy placement (see place_whole): (choices, highest link utilisation)."""
    load = dict(base or {})
    choice: dict = {}

    def current_port(u, d, hops):
        mine = current.get((u, d), ())
        if len(mine) == 1 and any(p == mine[0][0] for _, p in hops):
            return mine[0][0]
        return None

    if keep_all:
        for d, dag in dags.items():
            ports = {u: current_port(u, d, hops) for u, hops in dag.items() if hops}
            if ports and None not in ports.values():
                choice.update({(u, d): port for u, port in ports.items()})

    capacities: dict = {}

    def utilization(u, port, extra):
        capacity = capacities.get((u, port))
        if capacity is None:
            capacity = capacities[(u, port)] = topo.capacity(u, port)
        return (load.get((u, port), 0.0) + extra) / capacity if capacity else math.inf

    def best_paths(d, dag, amount, nearest_first):
        """{u: (bottleneck, port)} toward d from the switches ``nearest_first`` (each
        after every switch it sends to), respecting fixed choices."""
        cost = {d: (0.0, None)}
        for u in nearest_first:
            hops = dag.get(u)
            if not hops:
                continue
            fixed = choice.get((u, d))
            options = []
            for v, port in hops:
                onward = cost.get(v)
                if onward is not None and (fixed is None or fixed == port):
                    options.append((max(utilization(u, port, amount), onward[0]), port))
            if not options:
                continue
            best = min(c for c, _ in options)
            mine = current_port(u, d, hops)
            kept = [c_p for c_p in options if c_p[1] == mine and c_p[0] <= best + keep_within]
            if kept:
                cost[u] = kept[0]
            else:
                ties = sorted(p for c, p in options if c <= best + 1e-9)
                cost[u] = (best, ties[d % len(ties)])  # spread idle choices by destination
        return cost

    totals, entering = {}, {}
    for (u, d), v in demand.items():
        if d in dags:
            totals[d] = totals.get(d, 0.0) + v
            if v > 0 and dags[d].get(u):
                entering.setdefault(d, []).append((v, u))
    for d in sorted(dags, key=lambda d: (-totals.get(d, 0.0), d)):
        dag = dags[d]
        aggregates = sorted(entering.get(d, ()), reverse=True)
        open_keys = any(hops and (u, d) not in choice for u, hops in dag.items())
        for amount, u in aggregates:
            if open_keys:
                cost = best_paths(d, dag, amount, reversed(upstream_first(dag, [u])))
            else:  # every choice toward d is fixed (kept): the path is known
                cost = {node: (None, choice[(node, d)]) for node, hops in dag.items() if hops}
            node = u
            while node != d and node in cost and cost[node][1] is not None:
                port = cost[node][1]
                choice[(node, d)] = port
                load[(node, port)] = load.get((node, port), 0.0) + amount
                node = next(v for v, p in dag[node] if p == port)
        if not open_keys:
            continue
        # the DAG lists switches nearest first (paths.Fabric.dag)
        cost = best_paths(d, dag, 0.0, list(dag))
        for u, hops in dag.items():
            if hops and (u, d) not in choice and u in cost:
                choice[(u, d)] = current_port(u, d, hops) or cost[u][1]
    return choice, highest_utilization(topo, load)


def capacity_split(topo: Topology, u: int, hops: list[tuple]) -> dict[int, float]:
    return _normalized({port: topo.capacity(u, port) for _, port in hops})


def min_max_utilization_split(topo: Topology, dags: dict, demand: dict,
                              background: dict | None = None,
                              current: dict | None = None) -> dict:
    """{(u, d): {port: share}} minimising the highest link utilisation for ``demand``
    ({(u, d): bits/s entering at u for hosts behind d}), over the given DAGs, on top of
    ``background`` ({(u, port): bits/s} already on links, e.g. placed whole), staying
    near ``current`` (NextHops in force).  See SplitProblem."""
    return SplitProblem(topo, dags, demand, background, current).split()


class SplitProblem:
    """The LPs behind min_max_utilization_split, solved as far as asked.

    Two LPs over variables f[d, e] >= 0 (flow toward d on DAG edge e) and U, subject to
    flow conservation per destination and sum_d f[d, e] <= U * capacity(e): the first
    finds the lowest U (``optimum``); the second, with U held there, adds
    t[d, e] >= |f - ref| and minimises sum(t) (``split``).  ``ref`` routes the same
    demand with capacity-proportional splits, so among equally good answers the one
    closest to it wins, which makes the answer unique and keeps weights stable from one
    run to the next.  (One LP with an eps * sum(t) term approximates this order of
    aims; measured on fattree,12, HiGHS took 5.6 s on it against 0.2 s for the two.)
    The second LP, twice the size of the first, is most of the cost (fattree,16,
    uneven load: 0.76 s against 0.22 s), and placement needs only the optimum as its
    bound, so it runs only when the split itself is asked for.  Each LP has
    LP_TIME_LIMIT: past it the first falls back to the capacity-proportional split, the
    second to the first's answer.  Where the capacity-proportional split is itself
    optimal, it is the answer (t = 0).

    With ``current`` (the NextHops in force), the reference is the split in force
    wherever it spreads over the same next hops, and the second LP may go STABLE_SLACK
    above the optimum: among answers that good, the one nearest what the switches hold.
    Against a capacity-proportional reference, an L1 objective answers at a vertex, and
    small changes in demand flipped one leaf-spine group between 100:1:1 and 1:40:60
    every second or two (each flip rehashes live streams onto other paths); held to
    the split in force, a group moves only as far as the optimum needs it to.
    """

    SCALE = 1e6  # work in Mbit/s so coefficients stay near 1

    def __init__(self, topo: Topology, dags: dict, demand: dict,
                 background: dict | None = None, current: dict | None = None):
        self.topo, self.dags, self.demand = topo, dags, demand
        self.background = background or {}
        self.slack = STABLE_SLACK if current else 0.0
        current = current or {}
        splits: dict = {}  # (u, its ports): capacity_split, the same toward many d

        def capacity_shares(u, hops):
            key = (u, tuple(port for _, port in hops))
            if key not in splits:
                splits[key] = capacity_split(topo, u, hops)
            return splits[key]
        self.capacity_shares = {(u, d): capacity_shares(u, hops) for d, dag in dags.items()
                                for u, hops in dag.items() if hops}
        self.capacity_flow = route_demand(dags, demand, self.capacity_shares)
        self.ref_shares = dict(self.capacity_shares)
        for key, shares in self.capacity_shares.items():
            in_force = current.get(key)
            if in_force and {p for p, _ in in_force} == set(shares):
                self.ref_shares[key] = shares_of(in_force)
        self.ref_flow = route_demand(dags, demand, self.ref_shares) if current \
            else self.capacity_flow
        self.total = sum(v for (u, d), v in demand.items() if u in dags.get(d, {}))
        self._lowest = None  # the first LP's result, once solved
        self._answer = None  # the split, once known
        self._ref_optimal = None  # whether the reference reaches the optimum, once known
        self._capacity_optimal = None  # ... and the capacity-proportional split

    def optimum(self) -> float:
        """The lowest highest-link utilisation any split over the DAGs reaches (of
        the capacity-proportional split where the first LP had no answer in time)."""
        self._solve_lowest()
        if self._lowest is not None:
            return self._lowest.fun
        loads = port_loads(self.capacity_flow)
        for link, amount in self.background.items():
            loads[link] = loads.get(link, 0.0) + amount
        return highest_utilization(self.topo, loads)

    def optimal_flows(self, dags: dict) -> dict:
        """{(d, u, v, port): bits/s} toward the destinations of ``dags`` in the first
        LP's answer: an optimal split, though not the closest to the reference (the
        capacity-proportional flows where that LP had no answer, or where they are
        optimal themselves)."""
        self._solve_lowest()
        if self._capacity_optimal is None and self._lowest is not None:
            self._capacity_optimal = self._is_optimal(self.capacity_flow, 0.0)
        if self._lowest is None or self._capacity_optimal:
            return {e: f for e, f in self.capacity_flow.items() if e[0] in dags}
        x, scale = self._lowest.x, self.SCALE
        return {e: x[i] * scale for i, e in enumerate(self.edges) if e[0] in dags}

    def split(self) -> dict:
        if self._answer is None:
            self._answer = self._closest()
        return {k: dict(v) for k, v in self._answer.items()}

    def _solve_lowest(self) -> None:
        if self._lowest is not None or self._answer is not None:
            return
        if self.total <= 0:
            self._answer = self.capacity_shares
            return
        topo, dags, demand, scale = self.topo, self.dags, self.demand, self.SCALE
        # Only the part of each DAG that its demand can reach carries flow: every other
        # variable is zero in any solution, so leaving it out changes nothing but the
        # size (fattree,16 under a permutation: ~18k DAG edges instead of ~260k).
        sources: dict = {}
        for (u, d), v in demand.items():
            if v > 0:
                sources.setdefault(d, []).append(u)
        self.carrying = carrying = {d: set(upstream_first(dag, sources.get(d, ())))
                                    for d, dag in dags.items()}
        self.edges = edges = [(d, u, v, port) for d, dag in dags.items()
                              for u in carrying[d] for v, port in dag.get(u, ())]
        self.index = index = {e: i for i, e in enumerate(edges)}
        n = len(edges)
        n_vars = 2 * n + 1  # f, U (variable n), then t[i] as variable n + 1 + i
        eq, self.b_eq = SparseRows(n_vars), []
        for d, dag in dags.items():
            into = {}
            for w in carrying[d]:
                for v, port in dag.get(w, ()):
                    into.setdefault(v, []).append(index[(d, w, v, port)])
            for u in carrying[d]:  # out - in = demand entering at u
                if dag.get(u):
                    eq.add_row([(index[(d, u, v, port)], 1.0) for v, port in dag[u]]
                               + [(i, -1.0) for i in into.get(u, [])])
                    self.b_eq.append(demand.get((u, d), 0.0) / scale)
        links, self.b_links = SparseRows(n_vars), []
        self.by_link = by_link = {}
        for i, (_d, u, _v, port) in enumerate(edges):
            by_link.setdefault((u, port), []).append(i)
        for (u, port), members in by_link.items():  # load + background <= U * capacity
            links.add_row([(i, 1.0) for i in members]
                          + [(n, -topo.capacity(u, port) / scale)])
            self.b_links.append(-self.background.get((u, port), 0.0) / scale)
        self.a_eq, self.a_links = eq.matrix(), links.matrix()
        lowest = linprog(np.eye(1, n + 1, n).ravel(), A_ub=self.a_links[:, :n + 1],
                         b_ub=self.b_links, A_eq=self.a_eq[:, :n + 1], b_eq=self.b_eq,
                         bounds=(0, None), method="highs",
                         options={"time_limit": LP_TIME_LIMIT})
        if lowest.status != 0:  # no answer in time: capacity-proportional, as with no demand
            self._answer = self.capacity_shares
        else:
            self._lowest = lowest

    def _ceiling(self, slack: float) -> float:
        return self._lowest.fun * (1 + 1e-6) + 1e-9 + slack

    def _reference_is_optimal(self) -> bool:
        if self._ref_optimal is None:
            self._ref_optimal = self._is_optimal(self.ref_flow, self.slack)
        return self._ref_optimal

    def _is_optimal(self, flow: dict, slack: float) -> bool:
        """Whether ``flow`` loads no link above the optimum (plus ``slack``)."""
        ceiling = self._ceiling(slack)
        loads = port_loads(flow)
        return all(loads.get(link, 0.0) + self.background.get(link, 0.0)
                   <= ceiling * self.topo.capacity(*link) for link in self.by_link)

    def _closest(self) -> dict:
        self._solve_lowest()
        if self._answer is not None:
            return self._answer
        if self._reference_is_optimal():
            return self.ref_shares
        lowest = self._lowest
        ceiling = self._ceiling(self.slack)
        edges, n, scale = self.edges, len(self.edges), self.SCALE
        near, b_near = SparseRows(2 * n + 1), []
        for i, e in enumerate(edges):  # t >= |f - ref|
            ref = self.ref_flow.get(e, 0.0) / scale
            near.add_row([(i, 1.0), (n + 1 + i, -1.0)])
            b_near.append(ref)
            near.add_row([(i, -1.0), (n + 1 + i, -1.0)])
            b_near.append(-ref)
        bounds = [(0, None)] * (2 * n + 1)
        bounds[n] = (0, ceiling)
        closest = linprog(np.concatenate([np.zeros(n + 1), np.ones(n)]),
                          A_ub=vstack([self.a_links, near.matrix()]),
                          b_ub=self.b_links + b_near, A_eq=self.a_eq, b_eq=self.b_eq,
                          bounds=bounds, method="highs",
                          options={"time_limit": LP_TIME_LIMIT})
        x = closest.x if closest.status == 0 else lowest.x
        carrying, index, total = self.carrying, self.index, self.total
        result = {}
        for d, dag in self.dags.items():
            for u, hops in dag.items():
                if not hops:
                    continue
                if u not in carrying[d]:
                    result[(u, d)] = self.ref_shares[(u, d)]
                    continue
                out = {port: x[index[(d, u, v, port)]] for v, port in hops}
                if sum(out.values()) > 1e-6 * total / scale:
                    result[(u, d)] = _normalized(out)
                else:
                    result[(u, d)] = self.ref_shares[(u, d)]
        return result


class SparseRows:
    """Builds a constraint matrix row by row from (column, coefficient) pairs."""

    def __init__(self, n_cols: int):
        self.n_cols = n_cols
        self.rows, self.cols, self.vals = [], [], []
        self.n_rows = 0

    def add_row(self, terms) -> None:
        for col, val in terms:
            self.rows.append(self.n_rows)
            self.cols.append(col)
            self.vals.append(val)
        self.n_rows += 1

    def matrix(self):
        return coo_matrix((self.vals, (self.rows, self.cols)),
                          shape=(self.n_rows, self.n_cols)).tocsr()


def _normalized(values: dict) -> dict:
    total = sum(values.values())
    return {k: v / total for k, v in values.items()} if total > 0 else values


def route_demand(dags: dict, demand: dict, shares: dict) -> dict:
    """Flow on each DAG edge {(d, u, v, port): bits/s} when demand follows ``shares``
    (edges no demand reaches are left out: they carry nothing)."""
    entering: dict = {}
    for (u, d), amount in demand.items():
        if amount > 0 and u in dags.get(d, ()):
            entering.setdefault(d, {})[u] = amount
    flow = {}
    for d, inflow in entering.items():
        dag = dags[d]
        inflow = dict(inflow)
        for u in upstream_first(dag, list(inflow)):
            hops = dag.get(u)
            if not hops:
                continue
            split = _normalized(shares[(u, d)])
            for v, port in hops:
                amount = inflow.get(u, 0.0) * split.get(port, 0.0)
                flow[(d, u, v, port)] = amount
                inflow[v] = inflow.get(v, 0.0) + amount
    return flow


def upstream_first(dag: dict, sources) -> list:
    """The switches of ``dag`` reachable from ``sources``, each before every switch it
    sends to (reversed depth-first postorder), so flow can be pushed in one pass."""
    order, seen = [], set()
    for source in sources:
        if source in seen:
            continue
        seen.add(source)
        stack = [(source, iter(dag.get(source, ())))]
        while stack:
            node, onward = stack[-1]
            for v, _ in onward:
                if v not in seen:
                    seen.add(v)
                    stack.append((v, iter(dag.get(v, ()))))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


class Damper:
    """Lets adaptive weights through only when they moved enough, and not too often.

    A next-hop set that had to change (a port left it) passes at once: correctness
    first.  Otherwise a group's weights, or its placement, change only when some share
    moved by more than ``threshold`` and its last change is at least ``hold`` s old.

    Damping is per group, but a placement is joint: it moves one aggregate off a link
    to make room for another.  Holding the first move while the second (forced by a
    cut, say) goes through stacks both on one link, for as long as the hold lasts.  So
    when the damped result would load its busiest link above WHOLE_OK and more than
    JOINT_MARGIN above what the proposal itself reaches, the proposal passes whole.
    """

    def __init__(self, threshold: float, hold: float):
        self.threshold = threshold
        self.hold = hold
        self.changed_at: dict = {}
        self.passed_whole = False  # the last apply() let the proposal through whole

    def apply(self, proposed: dict, current: dict, now: float,
              allowed: dict | None = None, revert=(), busiest=None) -> dict:
        """``allowed``: {(u, d): ports} the topology permits (``allowed_ports``); a
        group using a port outside it must change at once.  Without it, any change of
        the next-hop set counts as forced.  ``revert``: destinations a repaired link
        serves again; their next-hop set changes pass (traffic returns at once).
        ``busiest``: NextHops -> the busiest link's utilisation under the measured
        demand, for the joint check (without it, none is made)."""
        self.passed_whole = False
        result = self._damped(proposed, current, now, allowed, revert)
        if busiest is not None and result != proposed:
            damped_load = busiest(result)
            if damped_load > max(WHOLE_OK, busiest(proposed) + JOINT_MARGIN):
                for key, hops in proposed.items():
                    if result[key] != hops:
                        self.changed_at[key] = now
                self.passed_whole = True
                return dict(proposed)
        return result

    def _damped(self, proposed, current, now, allowed, revert) -> dict:
        result = {}
        for key, hops in proposed.items():
            old = current.get(key)
            old_ports = {p for p, _ in old} if old is not None else None
            if old is None or (old_ports != {p for p, _ in hops} and (
                    key[1] in revert or allowed is None
                    or not old_ports <= allowed.get(key, set()))):
                result[key] = hops
                self.changed_at[key] = now
                continue
            new_s, old_s = shares_of(hops), shares_of(old)
            moved = max(abs(new_s.get(p, 0.0) - old_s.get(p, 0.0))
                        for p in set(new_s) | set(old_s))
            if moved > self.threshold and now - self.changed_at.get(key, -math.inf) >= self.hold:
                result[key] = hops
                self.changed_at[key] = now
            else:
                result[key] = old
        for key in [k for k in self.changed_at if k not in proposed]:
            del self.changed_at[key]
        return result
