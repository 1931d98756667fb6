#!/usr/bin/env python3
"""Moving traffic off a fast-reroute detour without loss: the scenario of
tests/e2e/test_failover.py::test_traffic_leaves_a_detour_for_the_new_path_without_loss,
repeated, with and without the pause between update waves (``wave_drain``).

Diamond, controller paused (SIGSTOP); the busy path's second link is cut, so the
switches alone send the probe stream along a detour that turns back through the first
switch; the controller resumes 1 s into a 2 s probe stream and moves the traffic onto
the other branch in waves.  Per variant: runs that lost any probe, probes lost in all,
and the longest gap.  A higher ``--rate`` puts more packets into the moment of the move.

Usage: .venv/bin/python scripts/bench_detour_move.py [--runs 20] [--rate 5000]
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab.emulation import (  # noqa: E402
    ControllerProcess,
    emulated_network,
    ping_pairs,
    probe_run,
    switch_by_dpid,
    wait_converged,
)
from sdn_app.lab.report import table  # noqa: E402

VARIANTS = {"ours (wave_drain 0.02 s)": {}, "no drain (wave_drain 0)": {"wave_drain": 0}}


def one_run(settings: dict, rate: float) -> dict:
    ctl = ControllerProcess(settings=settings).start()
    try:
        with emulated_network("diamond", ctl.of_port) as net:
            wait_converged(ctl, net)
            if ping_pairs(net)[1]:
                return {"error": "not all pairs reachable"}
            src, dst = net.hosts[0], net.hosts[-1]
            path = ctl.get("/v1/paths?src=%s&dst=%s" % (src.IP(), dst.IP()))["hops"]
            middle, last = (switch_by_dpid(net, hop["dpid"]) for hop in path[1:3])
            ctl.proc.send_signal(signal.SIGSTOP)
            try:
                net.configLinkStatus(middle.name, last.name, "down")
                time.sleep(0.5)  # the failover group has switched to the detour
                return probe_run(src, dst, 2.0, rate=rate,
                                 event=lambda: ctl.proc.send_signal(signal.SIGCONT))
            finally:
                ctl.proc.send_signal(signal.SIGCONT)
    finally:
        ctl.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="per variant")
    parser.add_argument("--rate", type=float, default=5000.0, help="probes per second")
    args = parser.parse_args(argv)
    results = {name: [] for name in VARIANTS}
    for run in range(args.runs):  # interleaved, so drift hits both variants alike
        for name, settings in VARIANTS.items():
            print("[bench_detour_move] run %d/%d, %s ..." % (run + 1, args.runs, name),
                  file=sys.stderr, flush=True)
            results[name].append(one_run(settings, args.rate))
    rows = []
    for name, runs in results.items():
        done = [r for r in runs if "error" not in r]
        rows.append([name, len(done), sum(1 for r in done if r["lost"]),
                     sum(r["lost"] for r in done),
                     "%.1f" % max((r["longest_gap_ms"] for r in done), default=0.0)])
    print("Moving a %.0f probes/s stream off a detour, %d runs per variant" % (args.rate,
                                                                            args.runs))
    print(table(["variant", "runs", "runs with loss", "probes lost", "longest gap ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
