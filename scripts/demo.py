#!/usr/bin/env python3
"""The main job: an emulated network with loops under our controller, end to end.

Starts ryu-manager with sdn_app.controller and a Mininet network of userspace Open
vSwitch bridges, waits for the controller to discover it, proves all-pairs reachability,
prints the topology as the controller sees it, then fails a link on a busy path and
repairs it, and ends with a report.  Run through scripts/demo.sh (which sets up first).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.emulation import (  # noqa: E402
    ControllerProcess,
    emulated_network,
    expected_topology,
    ping_pairs,
    probe_run,
    switch_by_dpid,
    switches_and_links_match,
    wait_reachable,
    wait_until,
)
from sdn_app.report import format_path, format_topology, table  # noqa: E402

START = time.monotonic()


def say(text: str) -> None:
    print("[%6.1fs] %s" % (time.monotonic() - START, text), flush=True)


def run(args) -> list[list]:
    results = []
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    say("starting ryu-manager sdn_app.controller, policy %s (log: %s)"
        % (args.policy, logdir / "controller.log"))
    with ControllerProcess(log_path=logdir / "controller.log",
                           settings={"policy": args.policy}) as ctl:
        say("starting Mininet topology %s (OVS userspace datapath)" % args.topo)
        with emulated_network(args.topo, ctl.of_port) as net:
            t0 = net.started_at
            expected = expected_topology(net)  # for the discovery timing below
            say("network up: %d switches, %d hosts, %d inter-switch links"
                % (len(net.switches), len(net.hosts), len(expected["links"]) // 2))

            say("phase discovery: waiting for the controller to see every switch and link")
            found = wait_until(lambda: switches_and_links_match(ctl, expected), 30)
            took = time.monotonic() - t0
            results.append(["discovery", "complete" if found else "INCOMPLETE",
                            "%.1f s after start" % took])
            say("topology %s in %.1f s" % ("complete" if found else "INCOMPLETE", took))

            say("phase reachability: every host pings every other")
            reach = wait_reachable(net, 30)
            sent, lost = ping_pairs(net)
            lost = len(lost)
            results.append(["reachability", "%d/%d pairs" % (sent - lost, sent),
                            "all pairs after %.1f s" % (time.monotonic() - t0)
                            if reach is not None else "NOT all pairs within 30 s"])
            say("all-pairs ping: %d sent, %d lost" % (sent, lost))

            print()
            print(format_topology(ctl.get("/v1/topology")))
            print()

            src, dst = net.hosts[0], net.hosts[-1]
            query = "/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP())
            path = ctl.get(query)
            say("path %s -> %s: %s" % (src.name, dst.name, format_path(path)))
            a = switch_by_dpid(net, path["hops"][0]["dpid"])
            b = switch_by_dpid(net, path["hops"][1]["dpid"])

            say("phase failure: link %s-%s on that path goes down under a probe stream "
                "(1 packet/ms %s -> %s)" % (a.name, b.name, src.name, dst.name))
            cut = probe_run(src, dst, 3.0, event=lambda: net.configLinkStatus(
                a.name, b.name, "down"))
            seen = any(lk["state"] == "down" for lk in ctl.get("/v1/links"))
            new_path = ctl.get(query)
            sent, lost = ping_pairs(net)
            lost = len(lost)
            say("%d probes lost (= ms of outage); new path %s"
                % (cut["lost"], format_path(new_path)))
            results.append(["failure", "%d/%d pairs" % (sent - lost, sent),
                            ("%d probes lost at 1/ms, longest gap %.0f ms, rerouted"
                             % (cut["lost"], cut["longest_gap_ms"]))
                            if seen else "link down NOT seen"])

            say("phase recovery: link %s-%s comes back" % (a.name, b.name))
            repair = probe_run(src, dst, 3.0, event=lambda: net.configLinkStatus(
                a.name, b.name, "up"))
            back = wait_until(lambda: ctl.get(query) == path, 10, 0.05)
            sent, lost = ping_pairs(net)
            lost = len(lost)
            results.append(["recovery", "%d/%d pairs" % (sent - lost, sent),
                            "%d probes lost, original path back" % repair["lost"] if back
                            else "original path NOT back"])
            say("recovery: %s" % results[-1][2])
            if not ctl.alive():
                results.append(["controller", "DIED", ctl.log_tail(5)])
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", default="fattree,4",
                        help="topology spec as for mn --topo (default fattree,4; also "
                             "diamond, ring,N, leafspine,S,L,H)")
    parser.add_argument("--logdir", default="results/demo", help="where logs go")
    parser.add_argument("--policy", default="shortest", choices=["shortest", "ecmp", "adaptive"],
                        help="forwarding policy (default shortest: with multipath the probe "
                             "flow may hash onto a path other than the one cut)")
    args = parser.parse_args(argv)
    try:
        results = run(args)
    except KeyboardInterrupt:
        say("interrupted: controller and network stopped, nothing left behind")
        return 130
    print()
    print("Report: %s under sdn_app.controller (policy %s, fast reroute on)"
          % (args.topo, args.policy))
    print(table(["phase", "reachability", "result"], results))
    ok = all("NOT" not in row[2] and "INCOMPLETE" not in row[1] and
             row[1].split("/")[0] == row[1].split("/")[-1].split()[0]
             for row in results if "/" in row[1])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
