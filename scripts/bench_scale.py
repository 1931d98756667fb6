#!/usr/bin/env python3
"""How the pure core scales: what the controller computes after a topology change on
k-ary fat trees, from fattree,4 (20 switches) up, timed phase by phase.

For each fabric (built straight into the core's Topology model, no Mininet), in a
process of its own so peak memory and the allocator start fresh:

* cold: next hops (``ecmp``), protection (FAST_FAILOVER backups and detours), the plan,
  --cold-repeats times on fresh state (the median, with the range: one run varies by
  30-50% on a 2-core machine);
* link losses and restorations, one at a time, on several cables (the first
  core-aggregation cable, then random ones of both kinds, the same on every revision):
  the same three again (median and worst), and for the first cable how many entries
  and groups differ from the plan before (what the reconciler sends), against the
  number of destination switches whose paths used the cable;
* hosts joining, one at a time: the same recomputation (median);
* where the revision has it (core/routing.py), all of these are one call of the
  incremental ``Routing.update`` on the state the previous step left, as in the
  controller (no phases apart); older revisions compute everything afresh each time;
* entries and groups per switch (max / mean) and the process's peak memory (each
  child is capped at --memory-gb, so a fabric too big for the machine reports an
  error rather than swapping);
* optionally ``adaptive`` with a random-permutation demand between edge switches.

``--compare REV`` runs the same measurement on another revision of this repository
(checked out into a temporary worktree), fabric by fabric in turn with this tree, and
prints both side by side, with ratios.
Growth exponents (time ~ switches^e, least squares over the fabrics) close the table.

Usage: .venv/bin/python scripts/bench_scale.py [--k 4 8 12 16] [--compare HEAD~3]
       [--adaptive-k 4 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PHASES = ("next_hops", "protection", "plan")
SAMPLES = 5  # cables cut (and restored) and hosts joined per fabric (--samples)


def incremental_routing():
    """The incremental Routing (core/routing.py) where the revision has one, else None."""
    try:
        from sdn_app.core.routing import Routing
    except ImportError:
        return None
    return Routing


def core_api():
    """The core's functions, from this layout (sdn_app/core) or the flat one before it,
    so --compare can measure older revisions with the same code."""
    try:
        from sdn_app.core.plan import build_plan
        from sdn_app.core.protection import plan_protection
        from sdn_app.core.te import compute_next_hops
        from sdn_app.core.topology import Port, Topology
    except ImportError:
        from sdn_app.balance import compute_next_hops
        from sdn_app.forwarding import build_plan
        from sdn_app.protection import plan_protection
        from sdn_app.topology import Port, Topology
    return compute_next_hops, plan_protection, build_plan, Port, Topology


def fat_tree(k: int, Port, Topology):  # noqa: N803 - classes passed in
    """A k-ary fat tree as the controller would learn it: (Topology, edge switches,
    its cables as ((dpid, port), (dpid, port)), the core-aggregation ones first)."""
    half = k // 2
    topo = Topology(settle_time=0.0)
    ports: dict = {}
    wires = []

    def port_of(dpid):
        ports.setdefault(dpid, 0)
        ports[dpid] += 1
        return ports[dpid]

    cores = [0x10000 + i for i in range(half * half)]
    edges = []
    for pod in range(k):
        aggs = [0x20000 + pod * 256 + i for i in range(half)]
        for i, agg in enumerate(aggs):
            for j in range(half):
                wires.append((agg, port_of(agg), cores[i * half + j], port_of(cores[i * half + j])))
        for e in range(half):
            edge = 0x30000 + pod * 256 + e
            edges.append(edge)
            for _ in range(half):  # host ports first, as in topologies/topos.py
                port_of(edge)
            for agg in aggs:
                wires.append((edge, port_of(edge), agg, port_of(agg)))
    for dpid, count in ports.items():
        topo.switch_connected(dpid, [Port(p) for p in range(1, count + 1)], 0.0)
    for a, pa, b, pb in wires:
        topo.link_seen(a, pa, b, pb, 0.0)
        topo.link_seen(b, pb, a, pa, 0.0)
    n = 0
    for edge in edges:
        for port in range(1, half + 1):
            n += 1
            mac = "02:00:00:%02x:%02x:%02x" % (n >> 16, (n >> 8) & 0xFF, n & 0xFF)
            topo.learn_host(mac, edge, port, 10.0, "10.%d.%d.%d" % (n >> 16, (n >> 8) & 0xFF,
                                                                    n & 0xFF))
    return topo, edges, [((a, pa), (b, pb)) for a, pa, b, pb in wires]


def note(text: str) -> None:
    """A progress line from the child, on the terminal as it runs (stdout is its JSON)."""
    print("[bench_scale]     " + text, file=sys.stderr, flush=True)


def measure(k: int, adaptive: bool, samples: int = SAMPLES, cold_repeats: int = 1) -> dict:
    """One fabric, in this process (the child side of the benchmark).  The cold
    computation runs ``cold_repeats`` times, each on a state of its own (the median
    counts, the spread is kept): one run varies by 30-50% on this machine."""
    compute_next_hops, plan_protection, build_plan, Port, Topology = core_api()
    topo, edges, cables = fat_tree(k, Port, Topology)
    out = {"k": k, "switches": len(topo.graph), "hosts": len(topo.hosts)}

    routing_class = incremental_routing()
    routing = routing_class(host_idle_timeout=300) if routing_class else None

    def recompute(policy="ecmp", demand=None):
        if routing is not None:  # one incremental update: no phases apart
            start = time.perf_counter()
            routing.update(topo, policy)
            total = time.perf_counter() - start
            return routing.next_hops, routing.plan, dict.fromkeys(PHASES, None) | {"total": total}
        times = {}
        start = time.perf_counter()
        hops = compute_next_hops(topo, policy, demand)
        times["next_hops"] = time.perf_counter() - start
        start = time.perf_counter()
        protection = plan_protection(topo.graph, hops)
        times["protection"] = time.perf_counter() - start
        start = time.perf_counter()
        plan = build_plan(topo, 300, hops, protection)
        times["plan"] = time.perf_counter() - start
        times["total"] = sum(times.values())
        return hops, plan, times

    colds = []
    for n in range(max(1, cold_repeats)):
        if routing_class:
            routing = None  # the last state goes before the next is built
            routing = routing_class(host_idle_timeout=300)
        hops, plan, cold = recompute()
        colds.append(cold)
        note("fattree,%d cold %d of %d: %.2f s" % (k, n + 1, max(1, cold_repeats),
                                                   cold["total"]))
    out["cold"] = dict(sorted(colds, key=lambda c: c["total"])[len(colds) // 2],
                       low=min(c["total"] for c in colds),
                       high=max(c["total"] for c in colds), samples=len(colds))
    flows = [sum(1 for key in e if key[0] != "group") for e in plan.values()]
    groups = [sum(1 for key in e if key[0] == "group") for e in plan.values()]
    out["entries_per_switch"] = {"max": max(flows), "mean": round(sum(flows) / len(flows), 1)}
    out["groups_per_switch"] = {"max": max(groups), "mean": round(sum(groups) / len(groups), 1)}
    out["incremental"] = routing is not None
    rng = random.Random(k)
    sample = [cables[0]] + rng.sample(cables[1:], min(samples - 1, len(cables) - 1))
    times: dict = {"link_loss": [], "link_back": []}
    for n, ((a, pa), (b, pb)) in enumerate(sample):
        crossing = {d for (u, d), hop in hops.items()
                    if u == a and any(p == pa for p, _ in hop)}
        for name, live in (("link_loss", False), ("link_back", True)):
            topo.port_changed(a, Port(pa, live=live), 20.0 + n)
            topo.port_changed(b, Port(pb, live=live), 20.0 + n)
            if live:
                topo.link_seen(a, pa, b, pb, 20.5 + n)
                topo.link_seen(b, pb, a, pa, 20.5 + n)
            before = {dpid: dict(entries) for dpid, entries in plan.items()} if n == 0 \
                else None  # Routing mutates the plan: keep a copy to compare with
            hops, plan, step = recompute()
            times[name].append(step["total"])
            note("fattree,%d cable %d of %d, %s: %.3f s" % (k, n + 1, len(sample),
                                                          name.replace("_", " "),
                                                          step["total"]))
            if before is not None:
                out[name] = dict(step, destinations_crossing=len(crossing), changed=sum(
                    1 for dpid, entries in plan.items() for key, item in entries.items()
                    if before.get(dpid, {}).get(key) != item), removed=sum(
                    1 for dpid, entries in before.items() for key in entries
                    if key not in plan.get(dpid, {})))
    for name, values in times.items():
        out[name].update(total=statistics.median(values), worst=max(values),
                         samples=len(values))
    joins = []
    for n in range(samples):
        topo.learn_host("02:ff:00:00:00:%02x" % n, edges[n % len(edges)], 1, 30.0 + n,
                        "10.255.0.%d" % (n + 1))
        joins.append(recompute()[2]["total"])
    out["host_join"] = {"total": statistics.median(joins), "worst": max(joins),
                        "samples": len(joins)}
    note("fattree,%d: %d host joins, median %.4f s" % (k, len(joins), out["host_join"]["total"]))
    if adaptive:
        note("fattree,%d: adaptive rebalances ..." % k)
        try:
            out["adaptive"] = measure_adaptive(topo, edges, k, compute_next_hops)
        except ImportError as error:  # a revision from before core/te.py's layout
            out["adaptive_error"] = str(error)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def measure_adaptive(topo, edges, k, compute_next_hops) -> dict:
    """One ``adaptive`` rebalance (LP + whole placement, what the controller runs each
    statistics period) under a random-permutation demand between edge switches, each
    aggregate 50, 200 or 400 Mbit/s ("light"), the same scaled so the LP optimum is 0.9
    ("heavy"), and heavy again with a fifth of the cables cut to a quarter of their
    capacity ("uneven", where an even split is far from the best); then a second
    rebalance with the first in force and the demand moved by up to 10%.  Max link
    utilisation (fluid) of the result, of the LP's own split (the optimum over the
    DAGs) and of ecmp."""
    from sdn_app.core.te import (
        dag_towards,
        destinations,
        integer_weights,
        min_max_utilization_split,
    )
    rng = random.Random(k)
    shuffled = edges[:]
    while any(a == b for a, b in zip(edges, shuffled, strict=False)):
        rng.shuffle(shuffled)
    light = {(a, b): float(rng.choice((50e6, 200e6, 400e6)))
             for a, b in zip(edges, shuffled, strict=False)}
    dags = {d: dag_towards(topo, d) for d in destinations(topo)}

    def optimum(demand):
        split = min_max_utilization_split(topo, dags, demand)
        return fluid_max_utilization(topo, {key: integer_weights(shares)
                                            for key, shares in split.items()}, demand)
    result = {}
    light_optimum = optimum(light)
    for name, scale in (("light", 1.0), ("heavy", 0.9 / light_optimum), ("uneven", None)):
        if scale is None:
            for lk in rng.sample(topo.links(), len(topo.links()) // 5):
                topo.capacity_overrides[(lk.src, lk.src_port)] = \
                    topo.capacity(lk.src, lk.src_port) / 4
            scale = 0.9 / optimum(light)
        demand = {key: v * scale for key, v in light.items()}
        # the first rebalance as right after a topology change: nothing cached (the
        # DAGs are kept per graph version, paths.Fabric.shared_dag)
        topo.graph.graph.pop("_fabric", None)
        start = time.perf_counter()
        first = compute_next_hops(topo, "adaptive", demand)
        first_s = time.perf_counter() - start
        moved = {key: v * rng.uniform(0.9, 1.1) for key, v in demand.items()}
        start = time.perf_counter()
        compute_next_hops(topo, "adaptive", moved, current=first)
        second_s = time.perf_counter() - start
        result[name] = {
            "first_s": first_s, "with_current_s": second_s,
            "lp_optimum": optimum(demand),
            "adaptive": fluid_max_utilization(topo, first, demand),
            "ecmp": fluid_max_utilization(topo, compute_next_hops(topo, "ecmp"), demand)}
    return result


def fluid_max_utilization(topo, next_hops: dict, demand: dict) -> float:
    """The highest link utilisation when ``demand`` splits over ``next_hops`` by weight,
    as a fluid (the core's yardstick)."""
    from sdn_app.core.te import link_loads
    return max((load / topo.capacity(u, port)
                for (u, port), load in link_loads(topo, next_hops, demand).items()),
               default=0.0)


def run_child(tree: Path, k: int, adaptive: bool, timeout: float,
              memory_gb: float, samples: int, cold_repeats: int) -> dict | None:
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(k),
           "--memory-gb", str(memory_gb), "--samples", str(samples),
           "--cold-repeats", str(cold_repeats)]
    if adaptive:
        cmd.append("--adaptive")
    try:
        # stderr stays on the terminal: the child's progress lines (and any traceback)
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout,
                              env=env, cwd=tree)
    except subprocess.TimeoutExpired:
        return {"k": k, "error": "over %.0f s" % timeout}
    if done.returncode != 0:
        return {"k": k, "error": "exit status %d (its output is above)" % done.returncode}
    return json.loads(done.stdout)


def exponent(rows: list[dict], phase: str, key: str = "total") -> float | None:
    """e in time ~ switches^e, least squares over the fabrics measured."""
    points = [(math.log(r["switches"]), math.log(r[phase][key])) for r in rows
              if "error" not in r and r[phase].get(key)]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None


def table(headers, rows) -> str:
    """The lab's table, imported here: a --compare child must import only the core of
    the revision it measures (PYTHONPATH), so this module imports no sdn_app at the top."""
    from sdn_app.lab.report import table as lab_table
    return lab_table(headers, rows)


def report(label: str, rows: list[dict]) -> str:
    def secs(value):
        return "%.3f" % value
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(["fattree,%d" % r["k"], r["error"]] + [""] * 9)
            continue
        lines.append([
            "fattree,%d" % r["k"], "%d/%d" % (r["switches"], r["hosts"]),
            secs(r["cold"]["total"]) + ("" if "low" not in r["cold"] else
                                        " (%s-%s)" % (secs(r["cold"]["low"]),
                                                      secs(r["cold"]["high"]))),
            "incremental" if r.get("incremental") else "/".join(secs(r["cold"][p])
                                                                 for p in PHASES),
            "%s (%s)" % (secs(r["link_loss"]["total"]), secs(r["link_loss"]["worst"])),
            "%d (+%d del) for %d dst" % (r["link_loss"]["changed"], r["link_loss"]["removed"],
                                         r["link_loss"]["destinations_crossing"]),
            "%s (%s)" % (secs(r["link_back"]["total"]), secs(r["link_back"]["worst"])),
            secs(r["host_join"]["total"]),
            "%d / %.0f" % (r["entries_per_switch"]["max"], r["entries_per_switch"]["mean"]),
            "%d / %.0f" % (r["groups_per_switch"]["max"], r["groups_per_switch"]["mean"]),
            "%s" % r["peak_rss_mb"],
        ])
    out = [label, table(["fabric", "switches/hosts", "cold s, median (range)",
                         "hops/protect/plan s",
                         "link loss s, median (worst)", "changed entries+groups (1st cable)",
                         "link back s, median (worst)", "host join s (median)",
                         "entries max/mean", "groups max/mean", "peak MB"], lines)]
    growth = ["%s %s" % (phase, "%.2f" % e if (e := exponent(rows, "cold", phase)) else "-")
              for phase in PHASES + ("total",)]
    out.append("growth exponents (cold, time ~ switches^e): " + ", ".join(growth))
    adaptive = [r for r in rows if "adaptive" in r]
    if adaptive:
        lines = [["fattree,%d" % r["k"], name, "%.2f" % a["first_s"], "%.2f" % a["with_current_s"],
                  "%.3f" % a["lp_optimum"], "%.3f" % a["adaptive"], "%.3f" % a["ecmp"]]
                 for r in adaptive for name, a in r["adaptive"].items()]
        out.append("adaptive: one rebalance (LP + whole placement), permutation demand")
        out.append(table(["fabric", "load", "first s", "with current s", "LP optimum util",
                          "adaptive util", "ecmp util"], lines))
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8, 12, 16])
    parser.add_argument("--adaptive-k", type=int, nargs="*", default=[4, 8],
                        help="fabrics on which to time one adaptive rebalance as well")
    parser.add_argument("--compare", metavar="REV", help="measure this revision too")
    parser.add_argument("--timeout", type=float, default=900, help="per fabric, seconds")
    parser.add_argument("--memory-gb", type=float, default=16,
                        help="address-space cap of each fabric's process")
    parser.add_argument("--samples", type=int, default=SAMPLES,
                        help="cables cut and hosts joined per fabric")
    parser.add_argument("--cold-repeats", type=int, default=3,
                        help="cold computations per fabric, each on a fresh state (median)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--adaptive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        cap = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            print(json.dumps(measure(args.child, args.adaptive, args.samples,
                                     args.cold_repeats)))
        except MemoryError:
            print(json.dumps({"k": args.child,
                              "error": "over the %.0f GB memory cap" % args.memory_gb}))
        return 0
    trees = [("this tree", REPO)]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        if args.compare:
            worktree = Path(tmp) / "compare"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f",
                            str(worktree), args.compare], check=True, capture_output=True)
            trees.insert(0, (args.compare, worktree))
        results = {label: [] for label, _ in trees}
        try:
            # revisions side by side per fabric, so a slow spell of the machine hits both
            for k in args.k:
                for label, tree in trees:
                    print("[bench_scale] %s: fattree,%d ..." % (label, k), file=sys.stderr,
                          flush=True)
                    started = time.monotonic()
                    row = run_child(tree, k, k in args.adaptive_k, args.timeout,
                                    args.memory_gb, args.samples, args.cold_repeats)
                    print("[bench_scale]   done in %.1f s" % (time.monotonic() - started),
                          file=sys.stderr, flush=True)
                    results[label].append(row)
        finally:
            if args.compare:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(worktree)], capture_output=True)
    for label, rows in results.items():
        print(report(label, rows))
        print()
    if len(results) == 2:
        (old_label, old), (new_label, new) = results.items()
        ratios = []
        for a, b in zip(old, new, strict=True):
            if "error" in a or "error" in b:
                continue
            ratios.append(["fattree,%d" % a["k"]] + ["%.1fx" % (a[ph]["total"] / b[ph]["total"])
                                                     for ph in ("cold", "link_loss",
                                                                "host_join")])
        print("speed-up, %s over %s" % (new_label, old_label))
        print(table(["fabric", "cold", "link loss", "host join"], ratios))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
