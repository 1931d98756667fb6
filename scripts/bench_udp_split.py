#!/usr/bin/env python3
"""How UDP flows that differ only in their source port are split over weighted next
hops, read off the switches' own counters, side by side in one run:

* OpenFlow 1.3 bridges, our hash split (multipath into the split table; the default);
* OpenFlow 1.3 bridges, SELECT groups (``hash_split = false``: what 1.3 had before);
* OpenFlow 1.5 bridges, SELECT groups with OVS's dp_hash selection method.

On the unequal diamond (10 and 40 Mbit/s branches) under ``adaptive`` (weights 1:4 by
capacity) and under ``ecmp`` (1:1), ``--flows`` UDP flows from h1 to h3 (default 300) at
``--mbps`` in all; the share of bytes each branch's uplink sent, against the weights.

Usage: .venv/bin/python scripts/bench_udp_split.py [--flows 300] [--mbps 16] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab.emulation import (  # noqa: E402
    REPO,
    ControllerProcess,
    capacity_settings,
    emulated_network,
    expected_topology,
    ping_pairs,
    port_bytes,
    wait_converged,
)
from sdn_app.lab.report import table  # noqa: E402

SPEC = "diamond,hosts=2,bw_main=10,bw_alt=40"
BRANCH = 0x10101
VARIANTS = [  # (name, bridge protocols, the counters' protocol, settings)
    ("1.3, hash split", "OpenFlow13", "OpenFlow13", {}),
    ("1.3, SELECT groups", "OpenFlow13", "OpenFlow13", {"hash_split": "false"}),
    ("1.5, SELECT dp_hash", "OpenFlow13,OpenFlow15", "OpenFlow15", {}),
]
POLICIES = {"adaptive": 0.8, "ecmp": 0.5}  # the fast branch's weight share


def fast_and_slow_ports(net) -> dict:
    ports = {}
    for src, src_port, dst, _ in expected_topology(net)["links"]:
        if int(src, 16) == BRANCH:
            ports["slow" if int(dst, 16) == 0x10102 else "fast"] = src_port
    return ports


def run(variant, policy, args) -> dict:
    name, bridges, counters, settings = variant
    settings = dict(capacity_settings(SPEC), policy=policy, **settings)
    with ControllerProcess(settings=settings) as ctl, \
            emulated_network(SPEC, ctl.of_port, bridges) as net:
        wait_converged(ctl, net)
        lost = ping_pairs(net)[1]
        time.sleep(2.0)  # the first rebalance (adaptive) has run
        ports = fast_and_slow_ports(net)
        before = port_bytes("s10101", counters)
        src, dst = net.get("h1"), net.get("h3")
        sender = src.popen([sys.executable, "-m", "sdn_app.lab.probe", "flows", "--dst",
                            dst.IP(), "--flows", str(args.flows), "--mbps", str(args.mbps),
                            "--seconds", str(args.seconds)], stdout=subprocess.PIPE,
                           cwd=str(REPO))
        sent_count = json.loads(sender.communicate(timeout=args.seconds + 30)[0])["sent"]
        after = port_bytes("s10101", counters)
    sent = {k: after[p]["tx"] - before[p]["tx"] for k, p in ports.items()}
    total = sum(sent.values())
    return {"variant": name, "policy": policy, "lost_pings": len(lost),
            "datagrams": sent_count, "fast_share": sent["fast"] / total if total else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--mbps", type=float, default=16.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for policy in POLICIES:
        for variant in VARIANTS:
            print("[bench_udp_split] %s, %s ..." % (variant[0], policy), file=sys.stderr,
                  flush=True)
            rows.append(run(variant, policy, args))
    lines = []
    for r in rows:
        want = POLICIES[r["policy"]]
        share = r["fast_share"]
        lines.append([r["policy"], r["variant"], "%.2f" % want,
                      "-" if share is None else "%.3f" % share,
                      "-" if share is None else "%+.0f%%" % (100 * (share - want) / want),
                      r["datagrams"], r["lost_pings"]])
    print("%d UDP flows differing only in source port, %.0f Mbit/s for %.0f s, h1 -> h3 on %s"
          % (args.flows, args.mbps, args.seconds, SPEC))
    print(table(["policy", "switches", "fast share wanted", "measured", "off by",
                 "datagrams", "pings lost"], lines))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
