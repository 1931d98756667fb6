"""Yardsticks the tests and benchmarks hold the policies against; the controller never
runs these."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from .te import SparseRows
from .topology import Topology


def optimal_max_utilization(topo: Topology, demand: dict) -> float:
    """The lowest maximum link utilisation any routing could reach for ``demand``
    ({(u, d): bits/s}), splitting freely over every path of the graph: the yardstick
    the benchmarks hold the policies against."""
    links = [(lk.src, lk.src_port, lk.dst) for lk in topo.links()]
    dsts = sorted({d for (_, d), v in demand.items() if v > 0})
    if not dsts:
        return 0.0
    index = {(d, i): k for k, (d, i) in enumerate((d, i) for d in dsts
                                                 for i in range(len(links)))}
    n = len(index)
    u_var = n
    leaving, entering = {}, {}
    for i, (a, _, b) in enumerate(links):
        leaving.setdefault(a, []).append(i)
        entering.setdefault(b, []).append(i)
    eq, b_eq = SparseRows(n + 1), []
    for d in dsts:
        for node in topo.graph:
            if node == d:
                continue
            eq.add_row([(index[(d, i)], 1.0) for i in leaving.get(node, ())]
                       + [(index[(d, i)], -1.0) for i in entering.get(node, ())])
            b_eq.append(demand.get((node, d), 0.0) / 1e6)
    ub, b_ub = SparseRows(n + 1), []
    for i, (a, port, _) in enumerate(links):
        ub.add_row([(index[(d, i)], 1.0) for d in dsts]
                   + [(u_var, -topo.capacity(a, port) / 1e6)])
        b_ub.append(0.0)
    cost = np.zeros(n + 1)
    cost[u_var] = 1.0
    res = linprog(cost, A_ub=ub.matrix(), b_ub=b_ub, A_eq=eq.matrix(), b_eq=b_eq,
                  bounds=(0, None), method="highs")
    if res.status != 0:
        raise ValueError("no routing carries this demand: %s" % res.message)
    return float(res.x[u_var])
