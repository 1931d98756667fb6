#!/usr/bin/env python3
"""Failover: probes lost when each link of a path fails and comes back, side by side.

Variants, each on a fresh controller and network in the same run:
  ours-ff      our controller with FAST_FAILOVER protection (the default)
  ours-ctl     our controller with protection off: only its own recomputation reroutes
  ours-ff+idle ours-ff with --idle-interfaces N idle veth interfaces added to the host
(all with the shortest policy, so the cut link is surely on the probe flow's path)
  ryu-stp      Ryu's simple_switch_stp_13 (diamond only: it needs ~30 s per change)

For every link on the path from the first to the last host, a probe stream (UDP,
1 packet/ms, sequence numbers and send times) runs for a few seconds while the link is
cut (`ip link set down` on both ends through Mininet's configLinkStatus), and another
while it is restored.  At 1 probe/ms, probes lost = the loss window in ms.  A control
stream with no failure runs in the same network first: on this shared 2-core machine
scheduling alone causes gaps, so judge by probes lost, not by the longest gap.  For our
controller it also prints how long after the cut its re-optimized paths were sent
(from GET /v1/events).  VR video streams (--vr-streams) run between the same hosts the
whole time, so the cut link carries load; the frames their worst stream missed in the
second after each event are printed too.

Usage: .venv/bin/python scripts/bench_failover.py [--topos diamond ring,5 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab import vr  # noqa: E402
from sdn_app.lab.emulation import (  # noqa: E402
    ControllerProcess,
    after_cut,
    emulated_network,
    host_interface_count,
    idle_interfaces,
    ping_pairs,
    probe_run,
    switch_by_dpid,
    vr_load,
    wait_converged,
    wait_reachable,
)
from sdn_app.lab.report import table  # noqa: E402

# Single-path forwarding, so the link cut is on the probe flow's path for sure (with
# multipath the flow may hash onto another path and lose nothing).
VARIANTS = {
    "ours-ff": (("sdn_app.controller",), {"protection": "true", "policy": "shortest"}),
    "ours-ctl": (("sdn_app.controller",), {"protection": "false", "policy": "shortest"}),
    "ryu-stp": (("ryu.app.simple_switch_stp_13",), {}),
}
VARIANTS["ours-ff+idle"] = VARIANTS["ours-ff"]  # on a host with idle interfaces added


def run_variant(variant, topo, args, logdir):
    """Rows [variant, topo, event, probe result, (port down heard s, re-optimized s),
    VR frames missed by the worst stream in the second after the event], the pings
    lost at the end, and the interfaces on the host during the run."""
    apps, settings = VARIANTS[variant]
    ours = variant.startswith("ours")
    rows, windows = [], []

    def event_run(label, event=None):
        begun = time.time()
        probe = probe_run(src, dst, args.seconds, event=event)
        at = probe["event_time"] or begun + 1.5  # the control: where an event would be
        windows.append(vr.Phase(label, at, at + 1.0))
        rows.append([variant, topo, label, probe, (None, None), None])
        return rows[-1]

    with contextlib.ExitStack() as stack:
        extra = args.idle_interfaces // 2 if variant.endswith("+idle") else 0
        stack.enter_context(idle_interfaces(extra))
        ctl = stack.enter_context(ControllerProcess(
            apps=apps, settings=settings, log_path=logdir / ("%s-%s.log" % (variant, topo))))
        net = stack.enter_context(emulated_network(topo, ctl.of_port))
        if ours:
            wait_converged(ctl, net)
        if wait_reachable(net, 90) is None:
            raise RuntimeError("%s never reached all pairs on %s" % (variant, topo))
        interfaces = host_interface_count()
        src, dst = net.hosts[0], net.hosts[-1]
        if ours:
            hops = ctl.get("/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP()))["hops"]
            path = [switch_by_dpid(net, h["dpid"]) for h in hops]
        else:  # STP: take the path our shortest-path tie-break would use, same links
            path = sorted(net.switches, key=lambda s: s.dpid)
            path = [path[0], path[1], path[-1]] if topo == "diamond" else path[:2]
        logs = None
        if args.vr_streams:
            logs = stack.enter_context(vr_load(src, dst, logdir / ("vr-%s-%s" % (
                variant, topo.replace(",", "_"))), args.vr_streams, args.vr_scale))
            time.sleep(1.0)  # the load is flowing before the control
        event_run("none (control)")
        for a, b in list(zip(path, path[1:], strict=False))[: args.max_links]:
            since = ctl.get("/v1/events")[-1]["seq"] if ours else 0
            row = event_run("%s-%s down" % (a.name, b.name),
                            lambda a=a, b=b: net.configLinkStatus(a.name, b.name, "down"))
            if ours:
                row[4] = after_cut(ctl, since, row[3]["event_time"])
            time.sleep(args.stp_wait if not ours else 0.0)
            event_run("%s-%s up" % (a.name, b.name),
                      lambda a=a, b=b: net.configLinkStatus(a.name, b.name, "up"))
            time.sleep(args.stp_wait if not ours else 1.0)
        lost_pings = len(ping_pairs(net)[1])
        if not ctl.alive():
            raise RuntimeError("controller died:\n" + ctl.log_tail())
    if logs is not None:  # the load's logs are whole once its block has exited
        phases = vr.analyse(vr.read_log(logs[0]), vr.read_log(logs[1]), windows)["phases"]
        for row, phase in zip(rows, phases, strict=True):
            row[5] = phase["worst_stream_frame_misses"]
    return rows, lost_pings, interfaces


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topos", nargs="+",
                        default=["diamond", "ring,5", "leafspine,2,3,1", "fattree,4"])
    parser.add_argument("--seconds", type=float, default=3.0, help="probe stream per event")
    parser.add_argument("--max-links", type=int, default=4, help="links cut per path")
    parser.add_argument("--stp-wait", type=float, default=35.0,
                        help="seconds STP gets to reconverge after each change")
    parser.add_argument("--no-stp", action="store_true")
    parser.add_argument("--vr-streams", type=int, default=2,
                        help="VR video streams alongside the probe, same hosts (0: none)")
    parser.add_argument("--vr-scale", type=float, default=0.2,
                        help="each stream's 30 Mbit/s times this")
    parser.add_argument("--idle-interfaces", type=int, default=0, metavar="N",
                        help="also run ours-ff with N idle interfaces added to the host: "
                        "how OVS's reaction to a cut grows with the interfaces it sees")
    parser.add_argument("--logdir", default="results/bench_failover")
    args = parser.parse_args(argv)
    if args.seconds < 1.5 or args.max_links < 1:
        parser.error("--seconds >= 1.5 and --max-links >= 1")
    if args.vr_streams < 0 or args.vr_scale <= 0 or args.idle_interfaces < 0:
        parser.error("--vr-streams and --idle-interfaces >= 0, --vr-scale > 0")
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    rows, summary = [], []
    for topo in args.topos:
        variants = ["ours-ff", "ours-ctl"]
        if args.idle_interfaces:
            variants.insert(1, "ours-ff+idle")
        if topo == "diamond" and not args.no_stp:
            variants.append("ryu-stp")
        for variant in variants:
            print("[bench] %s on %s" % (variant, topo), flush=True)
            got, lost_pings, interfaces = run_variant(variant, topo, args, logdir)
            rows += got
            failures = [r[3]["lost"] for r in got if r[2].endswith("down")]
            repairs = [r[3]["lost"] for r in got if r[2].endswith(" up")]
            noticed = [r[4][0] for r in got if r[4][0] is not None]
            frames = [r[5] for r in got if r[2].endswith("down") and r[5] is not None]
            summary.append([topo, variant, interfaces, got[0][3]["lost"], max(failures),
                            statistics.median(failures), max(repairs), lost_pings,
                            "%.0f" % (1000 * max(noticed)) if noticed else "-",
                            max(frames) if frames else "-"])
    (logdir / "results.json").write_text(json.dumps(
        [{"variant": v, "topology": t, "event": e, "probe": p, "port_down_heard_s": r[0],
          "reoptimized_s": r[1], "vr_worst_stream_frames_missed_1s": f}
         for v, t, e, p, r, f in rows], indent=1))
    print()
    load = ("%d VR streams of %.1f Mbit/s on the same hosts" % (
        args.vr_streams, 30 * args.vr_scale) if args.vr_streams else "no other load")
    print("Per event (probe stream of %.1f s at 1 probe/ms, event 1 s in; %s)"
          % (args.seconds, load))
    print(table(["variant", "topology", "event", "lost (=ms)", "longest gap ms", "dup",
                 "reordered", "port down heard after ms", "re-optimized after ms",
                 "VR frames missed, worst stream, 1 s after"],
                [[v, t, e, p["lost"], "%.1f" % p["longest_gap_ms"], p["duplicates"],
                  p["reordered"]] + ["%.0f" % (1000 * x) if x is not None else "-" for x in r]
                 + ["-" if f is None else f] for v, t, e, p, r, f in rows]))
    print()
    print("Summary (probes lost; at 1 probe/ms = ms of outage)")
    print(table(["topology", "variant", "host interfaces", "control", "worst failure",
                 "median failure", "worst restoration", "pings lost after",
                 "worst port-down heard after ms", "worst VR frames missed after a cut"],
                summary))
    print("A port-down reaches the controller just after OVS notices the carrier loss, "
          "which is when its FAST_FAILOVER groups switch: loss windows track that delay. "
          "OVS takes longer to notice the more interfaces the host has (all emulated "
          "switches share one ovs-vswitchd): compare ours-ff+idle (--idle-interfaces).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
