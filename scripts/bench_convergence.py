#!/usr/bin/env python3
"""Convergence after start-up: ours vs Ryu's simple_switch_stp_13, side by side.

For each topology, seconds from net.start() until (a) the controller's REST topology
matches the Mininet network exactly (ours only: the STP app has no such view) and
(b) one all-pairs ping round loses nothing.  Prints a table with the ratio ours/STP.
Usage: .venv/bin/python scripts/bench_convergence.py [--topos fattree,4 leafspine,2,4,2]
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
    switches_and_links_match,
    wait_reachable,
    wait_until,
)
from sdn_app.lab.report import table  # noqa: E402

CONTROLLERS = {
    "ours": ("sdn_app.controller",),
    "ryu-stp": ("ryu.app.simple_switch_stp_13",),
}


def measure(apps, topo: str, logdir: Path, timeout: float) -> tuple[float | None, float | None]:
    name = apps[0].rsplit(".", 1)[-1]
    with ControllerProcess(apps=apps, log_path=logdir / ("%s-%s.log" % (name, topo))) as ctl, \
            emulated_network(topo, ctl.of_port) as net:
        t0 = net.started_at
        topo_s = None
        if apps == CONTROLLERS["ours"]:
            expected = expected_topology(net)
            if wait_until(lambda: switches_and_links_match(ctl, expected), timeout, 0.05):
                topo_s = time.monotonic() - t0
        reach = wait_reachable(net, timeout - (time.monotonic() - t0))
        reach_s = (time.monotonic() - t0) if reach is not None else None
        return topo_s, reach_s


def fmt(value):
    return "%.2f" % value if value is not None else "-"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topos", nargs="+", default=["fattree,4", "leafspine,2,4,2"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (median shown)")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--logdir", default="results/bench_convergence")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for topo in args.topos:
        cell = {}
        for label, apps in CONTROLLERS.items():
            runs = []
            for i in range(args.repeat):
                print("[bench] %s under %s, run %d/%d" % (topo, label, i + 1, args.repeat),
                      flush=True)
                runs.append(measure(apps, topo, logdir, args.timeout))
            cell[label] = tuple(
                statistics.median(v) if all(v) else None
                for v in ([r[0] for r in runs], [r[1] for r in runs]))
        ours, stp = cell["ours"], cell["ryu-stp"]
        ratio = ours[1] / stp[1] if ours[1] and stp[1] else None
        rows.append([topo, fmt(ours[0]), fmt(ours[1]), fmt(stp[1]),
                     "%.2f" % ratio if ratio else "-"])
    print()
    print("Seconds from net.start() (median of %d)" % args.repeat)
    print(table(["topology", "ours: topology complete", "ours: all pairs reachable",
                 "ryu-stp: all pairs reachable", "ratio ours/stp"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
