#!/usr/bin/env python3
"""Weighted multipath: shortest vs ecmp vs adaptive, side by side on the same network.

For each scenario one controller and one emulated network run; the policy is switched
over REST between phases, so every policy sees the same links, hosts and traffic.
Traffic: a fixed host-pair matrix of UDP flows (many per pair, differing only in their
source ports) scaled so that the best possible routing (an LP over every path of the
graph) would load the busiest link to ``--load`` (default 0.9): near capacity.  Then
TCP (iperf3) over the same pairs.

Per policy it prints, from the switches' own counters: UDP Mbit/s offered (received
from the source hosts) and delivered (sent to the destination hosts), the loss between
them, the highest link utilisation; the highest utilisation the offered
load puts on a link under the weights actually installed (fluid model from
GET /v1/paths), its ratio to the LP optimum, and TCP delivered Mbit/s.  Then the cost:
controller CPU with 1 s polling on fattree,4, and the time to recompute and push all
weights.

Usage: .venv/bin/python scripts/bench_balance.py [--scenarios diamond leafspine fattree]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.core.settings import parse_capacity_text  # noqa: E402
from sdn_app.core.topology import Port, Topology  # noqa: E402
from sdn_app.core.yardsticks import optimal_max_utilization  # noqa: E402
from sdn_app.lab.emulation import (  # noqa: E402
    ControllerProcess,
    capacity_settings,
    emulated_network,
    host_port,
    iperf3,
    ping_pairs,
    port_bytes,
    wait_converged,
)
from sdn_app.lab.report import table  # noqa: E402

POLICIES = ("shortest", "ecmp", "adaptive")
PROTOCOLS = "OpenFlow13,OpenFlow15"
PACKET = 1400
# Faster damping than the defaults so adaptive settles within the warm-up.
SETTINGS = {"rebalance_interval": 1.0, "rebalance_hold": 2.0}


def diamond_pairs(net, rng):
    return [("h1", "h3"), ("h2", "h4")]


def leafspine_pairs(net, rng):
    # every leaf sends to the next one, from each of its hosts
    return [("h1", "h3"), ("h2", "h4"), ("h3", "h5"), ("h4", "h6"), ("h5", "h1"), ("h6", "h2")]


def fattree_pairs(net, rng):
    """A random permutation between pods: every host sends to one host of another pod."""
    hosts = [h.name for h in net.hosts]
    pod = {h: (int(h[1:]) - 1) // 4 for h in hosts}
    while True:
        dsts = hosts[:]
        rng.shuffle(dsts)
        if all(pod[a] != pod[b] for a, b in zip(hosts, dsts, strict=True)):
            return list(zip(hosts, dsts, strict=True))[::2]  # half of them: 8 pairs


SCENARIOS = {
    "diamond": ("diamond,hosts=2,bw_main=10,bw_alt=60", diamond_pairs),
    "leafspine": ("leafspine,2,3,2,bw=20,bw_slow=5", leafspine_pairs),
    "fattree": ("fattree,4,bw=5", fattree_pairs),
}


def model_from_rest(ctl, settings) -> Topology:
    """The controller's view as a Topology, with the configured capacities."""
    topo = Topology()
    data = ctl.get("/v1/topology")
    for sw in data["switches"]:
        topo.switch_connected(int(sw["dpid"], 16),
                              [Port(p["port_no"]) for p in sw["ports"]], 0.0)
    for lk in data["links"]:
        topo.link_seen(int(lk["src"]["dpid"], 16), lk["src"]["port_no"],
                       int(lk["dst"]["dpid"], 16), lk["dst"]["port_no"], 0.0)
    for dpid, port, mbps in parse_capacity_text(settings.get("link_capacity_mbps", "")):
        topo.capacity_overrides[(dpid, port)] = mbps * 1e6
    return topo


def run_traffic(net, pairs, rate_mbps, seconds, udp, flows):
    with ThreadPoolExecutor(len(pairs)) as pool:
        futures = [pool.submit(iperf3, net.get(a), net.get(b), udp=udp, flows=flows,
                               seconds=seconds, mbps_per_flow=rate_mbps / flows,
                               port=5300 + i, packet_bytes=PACKET)
                   for i, (a, b) in enumerate(pairs)]
        return [f.result() for f in futures]


def offered_max_utilization(ctl, topo, net, pairs, rate_mbps) -> float:
    """Fluid model: each pair's rate spread over the paths the controller reports, with
    their shares, summed per link."""
    load = {}
    for a, b in pairs:
        report = ctl.get("/v1/paths?src=%s&dst=%s" % (net.get(a).IP(), net.get(b).IP()))
        for path in report["paths"]:
            for hop in path["hops"]:
                key = (int(hop["dpid"], 16), hop["out_port"])
                load[key] = load.get(key, 0.0) + rate_mbps * 1e6 * path["share"]
    link_ports = {(lk.src, lk.src_port) for lk in topo.links()}
    return max(v / topo.capacity(*k) for k, v in load.items() if k in link_ports)


def counters(net):
    return {sw.name: port_bytes(sw.name, "OpenFlow15") for sw in net.switches}


def measure(net, topo, pairs, run, seconds) -> dict:
    """Run traffic; from the switches' counters: Mbit/s the sources put in, Mbit/s the
    destinations got, and the highest inter-switch link utilisation."""
    before = counters(net)
    run()
    after = counters(net)

    def mbps(switch, port, direction):
        sent = after[switch][port][direction] - before[switch][port][direction]
        return 8 * sent / seconds / 1e6

    offered = sum(mbps(*host_port(net.get(a)), "rx") for a, _ in pairs)
    delivered = sum(mbps(*host_port(net.get(b)), "tx") for b in {b for _, b in pairs})
    worst = 0.0
    for lk in topo.links():
        name = next(sw.name for sw in net.switches if int(sw.dpid, 16) == lk.src)
        worst = max(worst, mbps(name, lk.src_port, "tx") * 1e6 / topo.capacity(lk.src, lk.src_port))
    return {"offered": offered, "delivered": delivered, "max_util": worst}


def scenario(name, args, rng, logdir):
    spec, make_pairs = SCENARIOS[name]
    settings = dict(SETTINGS, **capacity_settings(spec))
    rows = []
    with ControllerProcess(settings=settings, log_path=logdir / ("%s.log" % name)) as ctl, \
            emulated_network(spec, ctl.of_port, PROTOCOLS) as net:
        wait_converged(ctl, net)
        ping_pairs(net)
        pairs = make_pairs(net, rng)
        topo = model_from_rest(ctl, settings)
        host_at = {h["ipv4"][0]: int(h["dpid"], 16) for h in ctl.get("/v1/hosts")}
        unit = {}
        for a, b in pairs:
            key = (host_at[net.get(a).IP()], host_at[net.get(b).IP()])
            unit[key] = unit.get(key, 0.0) + 1e6  # 1 Mbit/s per pair
        best_at_unit = optimal_max_utilization(topo, unit)
        rate = args.load / best_at_unit  # Mbit/s per pair: the optimum loads to --load
        print("[bench] %s: %d pairs at %.2f Mbit/s each (%.1f Mbit/s offered, %d UDP "
              "flows per pair); LP optimum max utilisation %.3f"
              % (name, len(pairs), rate, rate * len(pairs), args.flows, args.load), flush=True)
        for policy in POLICIES:
            status, body = ctl.request("/v1/policy", "PUT",
                                       json.dumps({"policy": policy}).encode())
            if status != 200:
                raise RuntimeError("policy %s: %s" % (policy, body))
            print("[bench]   %s: warm-up %ds" % (policy, args.warmup), flush=True)
            run_traffic(net, pairs, rate, args.warmup, True, args.flows)
            udp = measure(net, topo, pairs, lambda: run_traffic(
                net, pairs, rate, args.seconds, True, args.flows), args.seconds)
            offered_util = offered_max_utilization(ctl, topo, net, pairs, rate)
            tcp = measure(net, topo, pairs, lambda: run_traffic(
                net, pairs, 0, args.seconds, False, 4), args.seconds)
            delivered, offered = udp["delivered"], udp["offered"]
            rows.append({
                "scenario": name, "policy": policy,
                "udp_offered": offered, "udp_delivered": delivered,
                "udp_loss": 100 * max(0.0, 1 - delivered / offered) if offered else 0.0,
                "max_util_counters": udp["max_util"],
                "max_util_offered": offered_util, "optimum": args.load,
                "tcp_delivered": tcp["delivered"]})
            print("[bench]   %s: UDP %.1f/%.1f Mbit/s, TCP %.1f Mbit/s"
                  % (policy, delivered, offered, rows[-1]["tcp_delivered"]), flush=True)
        if not ctl.alive():
            raise RuntimeError("controller died:\n" + ctl.log_tail())
    return rows


def cpu_seconds(pid: int) -> float:
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cost(logdir, seconds=20):
    """Controller CPU with 1 s polling on fattree,4 (idle network), and the time to
    recompute and push all weights (a policy change rewrites every group)."""
    spec = "fattree,4,bw=5"
    settings = dict(capacity_settings(spec), stats_interval=1.0)
    with ControllerProcess(settings=settings, log_path=logdir / "cost.log") as ctl, \
            emulated_network(spec, ctl.of_port, PROTOCOLS) as net:
        wait_converged(ctl, net)
        ping_pairs(net)
        time.sleep(2)
        start = cpu_seconds(ctl.proc.pid)
        time.sleep(seconds)
        cpu = (cpu_seconds(ctl.proc.pid) - start) / seconds
        pushes = []
        for policy in ("ecmp", "adaptive", "shortest", "adaptive"):
            ctl.request("/v1/policy", "PUT", json.dumps({"policy": policy}).encode())
            time.sleep(1.0)
            pushes.append(dict(ctl.get("/v1/policy")["last_change"], policy=policy))
        groups = ctl.get("/v1/policy")["select_groups"]
    return cpu, pushes, groups


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS),
                        choices=list(SCENARIOS))
    parser.add_argument("--load", type=float, default=0.9,
                        help="max link utilisation the LP optimum would reach")
    parser.add_argument("--flows", type=int, default=16, help="UDP flows per host pair")
    parser.add_argument("--seconds", type=int, default=8, help="measured phase length")
    parser.add_argument("--warmup", type=int, default=6, help="traffic before measuring")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logdir", default="results/bench_balance")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost measurement")
    args = parser.parse_args(argv)
    if not 0 < args.load <= 1.5 or args.flows < 1 or args.seconds < 2 or args.warmup < 0:
        parser.error("need 0 < --load <= 1.5, --flows >= 1, --seconds >= 2, --warmup >= 0")
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    rows = []
    for name in args.scenarios:
        rows += scenario(name, args, rng, logdir)
    (logdir / "results.json").write_text(json.dumps(rows, indent=1))

    print()
    print("Weighted multipath, %d UDP flows per pair, LP optimum at max utilisation %.2f"
          % (args.flows, args.load))
    print(table(
        ["scenario", "policy", "UDP offered", "UDP delivered", "loss %",
         "max util (counters)", "max util (offered)", "ratio to optimum", "TCP delivered"],
        [[r["scenario"], r["policy"], "%.1f" % r["udp_offered"], "%.1f" % r["udp_delivered"],
          "%.1f" % r["udp_loss"], "%.2f" % r["max_util_counters"],
          "%.2f" % r["max_util_offered"], "%.2f" % (r["max_util_offered"] / r["optimum"]),
          "%.1f" % r["tcp_delivered"]] for r in rows]))
    print()
    by = {(r["scenario"], r["policy"]): r for r in rows}
    ratios = []
    for name in args.scenarios:
        ad = by[(name, "adaptive")]
        ratios.append([name,
                       "%.2f" % (ad["udp_delivered"] / by[(name, "ecmp")]["udp_delivered"]),
                       "%.2f" % (ad["udp_delivered"] / by[(name, "shortest")]["udp_delivered"]),
                       "%.2f" % (ad["max_util_offered"] / ad["optimum"]),
                       "%.2f" % (ad["max_util_offered"] / by[(name, "ecmp")]["max_util_offered"])])
    print(table(["scenario", "adaptive/ecmp UDP delivered", "adaptive/shortest UDP delivered",
                 "adaptive max util / optimum", "adaptive/ecmp max util"], ratios))
    if not args.no_cost:
        cpu, pushes, groups = cost(logdir)
        print()
        print("Cost on fattree,4: controller CPU %.1f%% of one core with 1 s polling; "
              "%d SELECT groups" % (100 * cpu, groups))
        print(table(["policy change to", "compute ms", "compute + push ms", "flow mods",
                     "group mods"],
                    [[p["policy"], "%.1f" % (1000 * p.get("compute_seconds", 0)),
                      "%.1f" % (1000 * p.get("total_seconds", 0)), p.get("flow_mods", 0),
                      p.get("group_mods", 0)] for p in pushes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
