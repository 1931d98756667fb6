#!/usr/bin/env python3
"""A controller cluster on this machine, to try high availability by hand: a 3-member
etcd cluster on loopback, N controllers clustered through it, and a Mininet network
whose switches connect to all of them; it prints where everything is, then waits
(Ctrl-C stops it all).  Kill a controller (``kill -9 <pid>``) and watch another take
over in ``/v1/cluster``, the topology page or ``ovs-vsctl list controller``.

Usage: .venv/bin/python scripts/run_cluster.py [--controllers 3] [--topo leafspine,2,2,2]
                                               [--etcd-members 3] [--no-network]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab.emulation import (  # noqa: E402
    ControllerProcess,
    emulated_network,
    wait_converged,
    wait_until,
)
from sdn_app.lab.etcd import EtcdCluster  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controllers", type=int, default=3)
    parser.add_argument("--etcd-members", type=int, default=3)
    parser.add_argument("--topo", default="leafspine,2,2,2")
    parser.add_argument("--no-network", action="store_true",
                        help="no Mininet: point your own switches at the controllers")
    parser.add_argument("--logdir", default="results/cluster")
    args = parser.parse_args(argv)

    def stop(*_):  # SIGTERM stops everything as Ctrl-C does
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        etcd = stack.enter_context(EtcdCluster(args.etcd_members, log_dir=logdir))
        print("etcd: %s" % ", ".join(etcd.endpoints))
        controllers = []
        for i in range(args.controllers):
            ctl = ControllerProcess(settings={"cluster_store": etcd.store_setting(),
                                              "cluster_node_id": "c%d" % i},
                                    log_path=logdir / ("c%d.log" % i))
            controllers.append(stack.enter_context(ctl))
            print("c%d: pid %d, OpenFlow 127.0.0.1:%d, REST http://127.0.0.1:%d/v1/cluster, "
                  "page http://127.0.0.1:%d/ui/, metrics :%d, log %s"
                  % (i, ctl.proc.pid, ctl.of_port, ctl.rest_port, ctl.rest_port,
                     ctl.metrics_port, ctl.log_path))
        leader = wait_until(lambda: next((c for c in controllers
                                          if c.get("/v1/cluster")["role"] == "leader"), None),
                            15)
        print("leader: %s" % (leader.get("/v1/cluster")["node_id"] if leader else "none yet"))
        if not args.no_network:
            net = stack.enter_context(emulated_network(args.topo,
                                                       [c.of_port for c in controllers]))
            if leader is not None:
                wait_converged(leader, net)
            print("network %s: %d switches, each connected to all %d controllers"
                  % (args.topo, len(net.switches), len(controllers)))
        print("running; Ctrl-C stops everything")
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            print("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
