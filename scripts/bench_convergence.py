#!/usr/bin/env python3
"""Convergence after start-up: ours vs Ryu's simple_switch_stp_13, side by side.

For each topology, seconds from net.start() until (a) the controller's REST topology
matches the Mininet network exactly (ours only: the STP app has no such view), (b)
every ordered pair of hosts has had an answer (each pings each every 100 ms from the
start; the last pair's first answer; up to FIRST_ANSWER_MAX_HOSTS hosts) or, where
that takes longer than FIRST_ANSWER_WINDOW or the network is larger, (c) one
all-pairs ping round loses nothing (a round of all pings
at once costs ~1 s here to start, so (b) is the sharper figure).  Prints a table
with the ratio ours/STP.
Usage: .venv/bin/python scripts/bench_convergence.py [--topos fattree,4 leafspine,2,4,2]
       [--controllers ours ryu-stp] [--set settle_time=0.5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab.emulation import (  # noqa: E402
    ControllerProcess,
    emulated_network,
    expected_topology,
    start_pinging,
    switches_and_links_match,
    wait_reachable,
    wait_until,
)
from sdn_app.lab.report import table  # noqa: E402

FIRST_ANSWER_WINDOW = 6.0  # s of pinging every pair from the start (STP takes ~40 s)
FIRST_ANSWER_MAX_HOSTS = 16  # larger networks get ping rounds only
CONTROLLERS = {
    "ours": ("sdn_app.controller",),
    "ryu-stp": ("ryu.app.simple_switch_stp_13",),
}


def measure(apps, topo: str, logdir: Path, timeout: float,
            settings: dict) -> tuple[float | None, float | None, float | None]:
    name = apps[0].rsplit(".", 1)[-1]
    ours = apps == CONTROLLERS["ours"]
    with ControllerProcess(apps=apps, log_path=logdir / ("%s-%s.log" % (name, topo)),
                           settings=settings if ours else None) as ctl, \
            emulated_network(topo, ctl.of_port) as net:
        t0 = net.started_at
        # Every pair pinging 10 times a second is 2,400 pings/s for 16 hosts; for 128
        # (fattree,8) it would be 160,000 and measure nothing but the overload.
        pinging = (start_pinging(net, FIRST_ANSWER_WINDOW)
                   if len(net.hosts) <= FIRST_ANSWER_MAX_HOSTS else None)
        topo_s = None
        if ours:
            expected = expected_topology(net)
            if wait_until(lambda: switches_and_links_match(ctl, expected), timeout, 0.05):
                topo_s = time.monotonic() - t0
        every_pair_s = None
        if pinging is not None:
            first = pinging()
            answered = [t - net.started_wall for t in first.values() if t is not None]
            every_pair_s = max(answered) if len(answered) == len(first) else None
        reach_s = None  # rounds only where pinging did not reach every pair (STP)
        if every_pair_s is None:
            reach = wait_reachable(net, timeout - (time.monotonic() - t0))
            reach_s = (time.monotonic() - t0) if reach is not None else None
        return topo_s, every_pair_s, reach_s


def fmt(value):
    return "%.2f" % value if value is not None else "-"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topos", nargs="+", default=["fattree,4", "leafspine,2,4,2"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (median shown)")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--logdir", default="results/bench_convergence")
    parser.add_argument("--controllers", nargs="+", choices=list(CONTROLLERS),
                        default=list(CONTROLLERS))
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="settings for our controller ([sdn_app] options)")
    args = parser.parse_args(argv)
    try:
        settings = dict(item.split("=", 1) for item in args.set)
    except ValueError:
        parser.error("--set takes NAME=VALUE")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for topo in args.topos:
        cell = {}
        for label in args.controllers:
            apps = CONTROLLERS[label]
            runs = []
            for i in range(args.repeat):
                print("[bench] %s under %s, run %d/%d" % (topo, label, i + 1, args.repeat),
                      flush=True)
                runs.append(measure(apps, topo, logdir, args.timeout, settings))
            cell[label] = tuple(statistics.median(v) if all(v) else None
                                for v in zip(*runs, strict=True))
            print("[bench]   %s" % "  ".join(fmt(v) for v in cell[label]), flush=True)
        ours, stp = cell.get("ours", (None,) * 3), cell.get("ryu-stp", (None,) * 3)
        ratio = ((ours[1] or ours[2]) / (stp[1] or stp[2])
                 if (ours[1] or ours[2]) and (stp[1] or stp[2]) else None)
        rows.append([topo, fmt(ours[0]), fmt(ours[1]), fmt(ours[2]), fmt(stp[1]),
                     fmt(stp[2]), "%.2f" % ratio if ratio else "-"])
    print()
    print("Seconds from net.start() (median of %d); every pair answered: each host pings "
          "each every 100 ms from the start, the last pair's first answer" % args.repeat)
    print(table(["topology", "ours: topology complete", "ours: every pair answered",
                 "ours: clean all-pairs round", "ryu-stp: every pair answered",
                 "ryu-stp: clean round", "ratio ours/stp"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
