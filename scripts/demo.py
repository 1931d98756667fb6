#!/usr/bin/env python3
"""The main job: VR users on an emulated network with loops, through a flash crowd, a
link failure and its recovery, under our controller; ends with a report and plots.

Starts ryu-manager with sdn_app.controller (adaptive weights + fast reroute by default)
and a Mininet network of userspace Open vSwitch bridges with bandwidth-limited links,
checks discovery and all-pairs reachability, then plays the scenario of
sdn_app/scenario.py: steady VR load plus background bursts, a flash crowd joining, the
busiest link cut, the link restored.  Each phase is measured from every packet sent and
received (sdn_app/lab/vr.py).  Run through scripts/demo.sh (which sets up first).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab import (
    elastic_service,  # noqa: E402
    vr,  # noqa: E402
)
from sdn_app.lab import scenario as vr_scenario  # noqa: E402
from sdn_app.lab.emulation import (  # noqa: E402
    ControllerProcess,
    capacity_settings,
    emulated_network,
    expected_topology,
    ping_pairs,
    switches_and_links_match,
    wait_reachable,
    wait_until,
)
from sdn_app.lab.prometheus import PrometheusError, PrometheusServer  # noqa: E402
from sdn_app.lab.report import table  # noqa: E402

START = time.monotonic()


def say(text: str) -> None:
    print("[%6.1fs] %s" % (time.monotonic() - START, text), flush=True)


def controller_settings(args) -> dict:
    return dict(capacity_settings(args.topo), **vr_scenario.OUR_SETTINGS, policy=args.policy,
                protection="false" if args.no_protection else "true",
                scaling_command=elastic_service.ACTUATOR)


def bring_up(ctl, net, out: list) -> bool:
    """Discovery and reachability; rows for the report.  False if either failed."""
    expected = expected_topology(net)
    say("network up: %d switches, %d hosts, %d inter-switch links; waiting for the "
        "controller to see them" % (len(net.switches), len(net.hosts),
                                   len(expected["links"]) // 2))
    found = ctl is None or wait_until(lambda: switches_and_links_match(ctl, expected), 30)
    out.append(["discovery", "complete" if found else "INCOMPLETE",
                "%.1f s after start" % (time.monotonic() - net.started_at)])
    reach = wait_reachable(net, 90)
    sent, lost = ping_pairs(net)
    out.append(["reachability", "%d/%d pairs" % (sent - len(lost), sent),
                "after %.1f s" % (time.monotonic() - net.started_at) if reach is not None
                else "NOT all pairs within 90 s"])
    say("discovery %s, %d/%d host pairs reachable" % (out[0][1], sent - len(lost), sent))
    return found and reach is not None


def phase_tables(run) -> str:
    """The VR figures per phase, then pose, background, outage and the network's side."""
    other = [row + ["-" if run.utilization.get(row[0], (None,))[0] is None
                    else "%.2f / %.2f" % run.utilization[row[0]],
                    run.splits.get(row[0], "-"),
                    "-" if run.dataplane_cpu.get(row[0]) is None
                    else "%.2f" % run.dataplane_cpu[row[0]]]
             for row in vr.other_rows(run.analysis)]
    return "\n\n".join([
        table(vr.VIDEO_HEADERS, vr.video_rows(run.analysis)),
        table(vr.OTHER_HEADERS + ["link util max / mean", "stream 0 split %", "switch CPU"],
              other)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", default="fattree,4,bw=10",
                        help="topology as for mn --topo (default fattree,4,bw=10: 10 Mbit/s "
                             "inter-switch links; also diamond, ring,N, leafspine,S,L,H)")
    parser.add_argument("--duration", type=float, default=40.0,
                        help="seconds of traffic, four equal phases (default 40)")
    parser.add_argument("--users", type=int, default=7, help="VR users from the start")
    parser.add_argument("--crowd", type=int, default=7, help="users joining in the crowd")
    parser.add_argument("--policy", default="adaptive",
                        choices=["shortest", "ecmp", "adaptive"])
    parser.add_argument("--no-protection", action="store_true",
                        help="no FAST_FAILOVER backups (controller-only reroute)")
    parser.add_argument("--churn", type=int, default=2,
                        help="users who come and go at random all along (default 2)")
    parser.add_argument("--cut", default="transit", choices=vr_scenario.CUTS,
                        help="which link fails: the busiest between switches without hosts "
                             "(transit, default, if the topology has such links) or the "
                             "busiest of all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fps", type=float, default=90.0)
    parser.add_argument("--stream-mbps", type=float, default=2.0,
                        help="video rate per user on the emulated links: a 30 Mbit/s "
                             "headset scaled down (default 2)")
    parser.add_argument("--background", type=int, default=2,
                        help="on/off background bursts of 1 Mbit/s between random hosts")
    parser.add_argument("--no-service", action="store_true",
                        help="without the service whose pool follows the crowd")
    parser.add_argument("--logdir", default="results/demo", help="logs, JSON and plots")
    parser.add_argument("--prometheus", action="store_true",
                        help="also run a Prometheus server scraping the controller every "
                             "second (Debian's, on a free loopback port) and report what "
                             "it saw")
    args = parser.parse_args(argv)
    profile = vr.Profile(fps=args.fps, mbps=30.0, scale=args.stream_mbps / 30.0)
    try:
        profile.check()
        if args.duration < 8:
            raise ValueError("--duration must be at least 8 s (four phases)")
        if args.users < 1 or min(args.crowd, args.background, args.churn) < 0:
            raise ValueError("--users >= 1; --crowd, --background, --churn >= 0")
    except ValueError as exc:
        parser.error(str(exc))
    vr_scenario.install_interrupt_handler()
    try:
        return run(args, profile)
    except KeyboardInterrupt:
        say("interrupted: traffic, network and controller stopped, nothing left behind")
        return 130


def run(args, profile) -> int:
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    rows = []
    say("starting ryu-manager sdn_app.controller: policy %s, protection %s (log: %s)"
        % (args.policy, "off" if args.no_protection else "on", logdir / "controller.log"))
    with ControllerProcess(log_path=logdir / "controller.log",
                           settings=controller_settings(args)) as ctl:
        say("starting Mininet %s (OVS userspace datapath)" % args.topo)
        with emulated_network(args.topo, ctl.of_port, vr_scenario.PROTOCOLS) as net:
            if not bring_up(ctl, net, rows):
                print(table(["phase", "result", "when"], rows))
                return 1
            say("watch it live: http://127.0.0.1:%d/ui/ (the topology page); metrics on "
                "http://127.0.0.1:%d/metrics" % (ctl.rest_port, ctl.metrics_port))
            with contextlib.ExitStack() as watching:
                prom = start_prometheus(watching, ctl, logdir) if args.prometheus else None
                plan = vr_scenario.build([h.name for h in net.hosts], args.users, args.crowd,
                                         args.duration, args.seed, profile, args.background,
                                         cut=args.cut, churn=args.churn)
                say("VR scenario: %d users + %d in the crowd + %d coming and going, %.1f "
                    "Mbit/s video at %g fps + pose every %g ms each; servers %s; %.0f s in "
                    "four phases" % (args.users, args.crowd, args.churn, args.stream_mbps,
                                     args.fps, profile.pose_ms, ",".join(plan.servers),
                                     args.duration))
                service = elastic_pool(ctl, net, plan, args)
                began = time.time() + vr_scenario.START_LEAD  # when the first phase starts
                result = vr_scenario.run(net, plan, logdir / "traffic", say, ctl,
                                         vr_scenario.PROTOCOLS)
                pool = service.finish(began) if service else None
                seen = prometheus_lines(prom, time.time() - began) if prom else []
            alive = ctl.alive()
    report(args, profile, rows, result, logdir, alive, pool, seen)
    return 0 if alive else 1


def start_prometheus(stack, ctl, logdir):
    """A Prometheus server scraping the controller, closed with ``stack``; None (said)
    if it does not start: the demo goes on without it."""
    try:
        prom = stack.enter_context(PrometheusServer(["127.0.0.1:%d" % ctl.metrics_port],
                                                    log_path=logdir / "prometheus.log"))
    except (OSError, PrometheusError) as exc:
        say("Prometheus did not start (%s); going on without it" % exc)
        return None
    say("Prometheus scraping the controller every second: %s" % prom.url)
    return prom


def elastic_pool(ctl, net, plan, args):
    """The service whose pool follows the crowd: on hosts the VR servers do not use, one
    backend and two standby; four other hosts hold 10 connections each to it while the
    crowd lasts (None if the topology has too few hosts)."""
    others = [h for h in net.hosts if h.name not in plan.servers]
    if len(others) < 7 or not args.crowd or args.no_service:
        return None
    service = elastic_service.ScaledService(ctl, others[-1], others[-3:-1])
    if not service.start():
        say("the scaled service did not come up; going on without it")
        return None
    crowd_from, crowd_to = plan.phases[1][1], plan.phases[1][2]
    service.crowd_later(vr_scenario.START_LEAD + crowd_from, others[:4], 10,
                        crowd_to - crowd_from)
    say("service sessions (%s:%d): 1 backend on %s, standby %s, reactive pool scaling; "
        "the crowd will hold 40 connections to it" % (
            elastic_service.VIP, elastic_service.PORT, others[-1].name,
            ",".join(h.name for h in others[-3:-1])))
    return service


# What the Prometheus run is asked at the end, over the traffic's whole span ("%(s)ds").
PROMQL_REPORT = [
    ("busiest link's peak utilization (1 s samples)",
     "max(max_over_time(sdn_link_utilization_ratio[%(s)ds]))", "{:.0%}"),
    ("links down at some point", "count(min_over_time(sdn_link_up[%(s)ds]) == 0) or vector(0)",
     "{:.0f}"),
    ("port-down and silent-link events",
     'sum(increase(sdn_events_total{kind=~"port_down|link_silent"}[%(s)ds])) or vector(0)',
     "{:.0f}"),
    ("recomputations", "sum(increase(sdn_recomputes_total[%(s)ds]))", "{:.0f}"),
    ("p99 recomputation time",
     "histogram_quantile(0.99, sum by (le) (increase(sdn_recompute_duration_seconds_bucket"
     "[%(s)ds])))", "{:.3f} s"),
    ("flow mods sent", "sum(increase(of_flowmsgs_sent_total[%(s)ds]))", "{:.0f}"),
    ("packet-ins per second, peak switch",
     "max(max_over_time(rate(of_packet_ins_total[5s])[%(s)ds:1s]))", "{:.1f}"),
]


def prometheus_lines(prom, seconds: float) -> list:
    """What the Prometheus server saw over the last ``seconds``, a line each."""
    lines = ["Seen by Prometheus (%s, scraping every second; PromQL in scripts/demo.py):"
             % prom.url]
    window = {"s": max(10, int(seconds) + 5)}
    for label, query, fmt in PROMQL_REPORT:
        try:
            value = prom.value(query % window)
        except PrometheusError as exc:
            value, fmt = str(exc), "{}"
        lines.append("  %s: %s" % (label, "-" if value is None or value != value
                                   else fmt.format(value)))
    return lines


def pool_lines(pool) -> list:
    if pool is None:
        return ["Scaled service: not run (--no-service, no crowd, or too few hosts)."]
    lines = ["Scaled service %s (reactive, %d connections per backend targeted): the crowd "
             "held %d connections from %s s into the traffic; %d broke." % (
                 pool["vip"], pool["target"], pool["held"], pool["crowd_at_s"],
                 pool["broken"])]
    lines += ["  pool -> %d at %s s: %s" % (d["size"], d["at_s"], d["reason"])
              for d in pool["decisions"]] or ["  the pool did not change"]
    return lines


def report(args, profile, rows, result, logdir, alive, pool=None, seen=()) -> None:
    from sdn_app.lab import plots

    runs = {"ours (%s%s)" % (args.policy, "" if args.no_protection else " + protection"):
            result}
    pictures = [plots.timeline(runs, logdir / "timeline.png"),
                plots.completion_cdf(runs, logdir / "frame_completion_cdf.png",
                                     ("steady", "crowd", "failure", "recovery"))]
    (logdir / "report.json").write_text(json.dumps(
        {"topology": args.topo, "policy": args.policy, "protection": not args.no_protection,
         "profile": profile.__dict__, "seed": args.seed, "cut": result.cut,
         "reoptimized_after_s": result.reoptimized_after, "failover": result.failover,
         "utilization": result.utilization, "link_mbps": result.link_mbps,
         "dataplane_cpu": result.dataplane_cpu, "splits": result.splits, "scaled_service": pool,
         "vr": result.analysis}, indent=1))
    print()
    print("Report: %s under sdn_app.controller, policy %s, fast reroute %s, seed %d"
          % (args.topo, args.policy, "off" if args.no_protection else "on", args.seed))
    print("VR: %d users, +%d in the crowd, %d coming and going; video %.1f Mbit/s "
          "(30 Mbit/s scaled by %.3f) at %g fps, frames as bursts of %d-byte packets; "
          "pose %d bytes every %g ms; frame budget %g ms, pose budget %g ms"
          % (args.users, args.crowd, args.churn, args.stream_mbps, profile.scale, profile.fps,
             profile.packet_bytes, profile.pose_bytes, profile.pose_ms,
             result.analysis["budget_ms"], result.analysis["pose_budget_ms"]))
    print()
    print(table(["check", "result", "when"], rows))
    print()
    print(phase_tables(result))
    window = result.failover
    print()
    if window:
        print("Failure: cut %s; the controller's re-optimized paths were sent %s after it. "
              "In the %g s after the cut: worst stream missed %d frame(s), longest outage "
              "of any stream %.1f ms, %d video packets lost."
              % (result.cut, "%.0f ms" % (1000 * result.reoptimized_after)
                 if result.reoptimized_after is not None else "(none seen)",
                 vr_scenario.FAILOVER_WINDOW, window["worst_stream_frame_misses"],
                 window["longest_outage_ms"],
                 window.get("video", {}).get("packets_lost", 0)))
    else:
        print("Failure: no inter-switch link carried traffic, nothing was cut.")
    print("Link utilization from switch counters (inter-switch ports, transmit); split: "
          "shares of the paths the first user's video takes, per phase (from /v1/paths); "
          "switch CPU: cores ovs-vswitchd used forwarding for every emulated switch in one "
          "thread (near 1.0 the emulation itself is the bottleneck).")
    print()
    print("\n".join(pool_lines(pool)))
    if seen:
        print()
        print("\n".join(seen))
    if not alive:
        print("CONTROLLER DIED: see %s" % (logdir / "controller.log"))
    print("Plots: %s" % ", ".join(str(p) for p in pictures))
    print("JSON: %s" % (logdir / "report.json"))


if __name__ == "__main__":
    sys.exit(main())
