#!/usr/bin/env python3
"""High availability: what losing the leading controller, or etcd members, costs.

A 3-member etcd cluster on loopback, three controllers (c0, c1, c2) clustered through
it, and a Mininet network (leafspine,2,2,2 by default) whose switches connect to all
three, with a UDP probe stream (1 packet/ms: probes lost = the loss window in ms) from
the first host to the last:

  kill        the leader SIGKILLed 1 s into the stream, --kills times, the victim
              restarted (it rejoins as a follower) before the next; per kill: seconds
              until the new leader is elected, until every switch has it as master
              (Open vSwitch's own record), until it has re-proven every link; probes
              lost; flow and group mods it sent taking over (flow mods change
              forwarding; group mods are resent unchanged, groups are not read back)
  kill+cut    the same with the first link of the path cut 0.5 s after the kill: the
              switches' failover groups carry the stream, the new leader repairs
  etcd-1      one etcd member killed for 5 s under the stream: leader changes, probes
              lost, mods sent
  etcd-2      two of three killed for 5 s (no quorum), then back: leader changes,
              whether every table stayed as it was, probes lost

Kills run side by side with fast detection (followers ask the leader's REST port every
cluster_heartbeat_ms; refused twice, its lease is revoked) and with the lease alone
(cluster_heartbeat_ms = 0), alternating, each on a fresh cluster and network.

Usage: .venv/bin/python scripts/bench_ha.py [--kills 10] [--topo leafspine,2,2,2]
                                            [--only kill etcd-2 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab.emulation import (  # noqa: E402
    REPO,
    ControllerProcess,
    cluster_leader,
    emulated_network,
    network_tables,
    ping_pairs,
    probe_run,
    switch_by_dpid,
    wait_converged,
    wait_quiet,
    wait_until,
)
from sdn_app.lab.etcd import EtcdCluster  # noqa: E402
from sdn_app.lab.ofclient import masters  # noqa: E402
from sdn_app.lab.report import table  # noqa: E402

SCENARIOS = ("kill", "kill+cut", "etcd-1", "etcd-2")


def progress(text: str) -> None:
    print("[bench_ha %s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


class Cluster:
    """etcd + three controllers + the network, for one variant."""

    def __init__(self, args, logdir: Path, heartbeat_ms: int):
        self.args, self.logdir, self.heartbeat_ms = args, logdir, heartbeat_ms
        self.stack = contextlib.ExitStack()
        self.etcd = self.stack.enter_context(EtcdCluster(3, log_dir=logdir))
        self.controllers = {}
        for i in range(3):
            self.start("c%d" % i)
        self.net = self.stack.enter_context(emulated_network(
            args.topo, [c.of_port for c in self.controllers.values()]))
        for sw in self.net.switches:  # a controller back up is reconnected within 1 s
            sw.vsctl("set controller %s max_backoff=1000" % sw.name)
        wait_converged(self.leader(), self.net)
        ping_pairs(self.net)
        wait_quiet(self.leader())

    def start(self, name: str, of_port: int | None = None) -> ControllerProcess:
        ctl = ControllerProcess(settings={
            "cluster_store": self.etcd.store_setting(), "cluster_node_id": name,
            "cluster_heartbeat_ms": self.heartbeat_ms, "policy": self.args.policy},
            log_path=self.logdir / ("%s.log" % name), of_port=of_port)
        self.controllers[name] = ctl.start()
        return ctl

    def leader(self, timeout: float = 15.0) -> ControllerProcess | None:
        return cluster_leader(list(self.controllers.values()), timeout)

    def masters(self) -> set:
        return masters(self.net, self.controllers.values())

    def path(self, ctl):
        src, dst = self.net.hosts[0], self.net.hosts[-1]
        hops = ctl.get("/v1/paths?src=%s&dst=%s" % (src.MAC(), dst.MAC()))["hops"]
        return src, dst, [switch_by_dpid(self.net, hop["dpid"]) for hop in hops]

    def close(self):
        for ctl in self.controllers.values():
            ctl.stop()
        self.stack.close()


def mods(ctl) -> dict:
    return dict(ctl.get("/v1/policy")["mods_sent"])


def vr_load(cluster: Cluster, tag: str):
    """VR streams (sdn_app/lab/vr.py: frames as bursts at 90 fps, pose every 4 ms) from
    the second host to the second-last, across the fabric beside the probes; returns
    a function that waits for them and analyses a phase (epoch start, end)."""
    if cluster.args.vr_streams <= 0 or len(cluster.net.hosts) < 4:
        return None
    src, dst = cluster.net.hosts[1], cluster.net.hosts[-2]
    sent, got = cluster.logdir / ("vr-sent-%s.bin" % tag), cluster.logdir / ("vr-got-%s.bin" % tag)
    seconds = 6.0
    receiver = dst.popen([sys.executable, "-m", "sdn_app.lab.vr", "recv", "--port", "9100",
                          "--seconds", str(seconds + 2), "--log", str(got)], cwd=str(REPO))
    time.sleep(0.3)
    sender = src.popen([sys.executable, "-m", "sdn_app.lab.vr", "send", "--dst", dst.IP(),
                        "--streams", str(cluster.args.vr_streams), "--pose-to", dst.IP(),
                        "--seconds", str(seconds), "--scale", str(cluster.args.vr_mbps / 30.0),
                        "--log", str(sent)], cwd=str(REPO))

    def finish(phases):
        sender.wait(timeout=60)
        receiver.wait(timeout=60)
        cmd = [sys.executable, "-m", "sdn_app.lab.vr", "analyse", "--sent", str(sent),
               "--received", str(got), "--json"]
        for name, start, end in phases:
            cmd += ["--phase", "%s:%f:%f" % (name, start, end)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO))
        if done.returncode != 0:
            return {}
        return {p["phase"]: p for p in json.loads(done.stdout)["phases"]}
    return finish


def one_kill(cluster: Cluster, cut: bool, tag: str = "") -> dict:
    leader = cluster.leader()
    name = leader.settings["cluster_node_id"]
    links = len(leader.get("/v1/links"))
    src, dst, path = cluster.path(leader)
    marks = {}
    sent_before = {n: mods(c) for n, c in cluster.controllers.items() if n != name}

    def kill():
        marks["killed"], marks["killed_wall"] = time.monotonic(), time.time()
        leader.proc.kill()
        leader.proc.wait()
        if cut:
            time.sleep(0.5)
            a, b = path[0], path[1]
            cluster.net.configLinkStatus(a.name, b.name, "down")
            marks["cut"] = (a.name, b.name)

    def watch():  # polled while the stream runs: who is master where, when
        while "killed" not in marks:
            time.sleep(0.01)
        new = cluster.leader(10)
        if new is None:
            return
        marks["new"] = new
        elected = [e["time"] for e in new.get("/v1/events")
                   if e["event"] == "role_changed" and e["role"] == "leader"]
        # the new leader's own record of when it was elected, on the wall clock
        marks["elected"] = marks["killed"] + (elected[-1] - marks["killed_wall"])
        if wait_until(lambda: len(new.get("/v1/links")) >= links - (2 if cut else 0), 15,
                      0.02):
            marks["links"] = time.monotonic()
        # the switches' own answers: the new leader times its role replies
        confirmed = wait_until(lambda: new.get("/v1/cluster")["roles_confirmed_after_s"], 10)
        if confirmed is not None:
            marks["masters"] = marks["elected"] + confirmed
        new_name = new.settings["cluster_node_id"]
        marks["ovsdb"] = bool(wait_until(lambda: cluster.masters() == {new_name}, 15, 0.2))
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    vr = vr_load(cluster, tag)
    began = time.time()
    probes = probe_run(src, dst, 5.0, event=kill, event_at=1.0)
    watcher.join(30)
    new = marks.get("new")
    row = {"lost": probes["lost"], "ovsdb_agrees": marks.get("ovsdb")}
    if vr is not None and "killed_wall" in marks:
        k = marks["killed_wall"]
        phases = vr([("second after", k, k + 1.0), ("whole run", began, began + 6.0)])
        second, whole = phases.get("second after", {}), phases.get("whole run", {})
        row["vr_worst_stream_misses_1s"] = second.get("worst_stream_frame_misses")
        row["vr_outage_ms"] = second.get("longest_outage_ms")
        row["vr_miss_pct"] = (whole.get("video") or {}).get("frame_miss_pct")
    for key in ("elected", "masters", "links"):
        row[key] = marks[key] - marks["killed"] if key in marks else None
    if new is not None:
        time.sleep(max(0.0, marks["killed"] + 6.0 - time.monotonic()))
        wait_quiet(new, 1.0)
        sent, before = mods(new), sent_before[new.settings["cluster_node_id"]]
        row["flow_mods"] = sent["flow_mods"] - before["flow_mods"]
        row["group_mods"] = sent["group_mods"] - before["group_mods"]
        if cut:
            _, _, after = cluster.path(new)
            a, b = marks["cut"]
            row["repaired"] = not any({x.name, y.name} == {a, b}
                                      for x, y in zip(after, after[1:], strict=False))
            cluster.net.configLinkStatus(a, b, "up")
    # the victim comes back as a follower, on its old port (the switches retry it)
    leader.stop()
    cluster.start(name, of_port=leader.of_port)
    wait_until(lambda: cluster.controllers[name].get("/v1/cluster")["role"] == "follower", 10)
    time.sleep(2.0)
    if new is not None:
        wait_quiet(new, 1.0)
    return row


def etcd_loss(cluster: Cluster, members: int) -> dict:
    leader = cluster.leader()
    before_tables = network_tables(cluster.net)
    before_name = leader.settings["cluster_node_id"]
    wait_until(lambda: cluster.masters() == {before_name}, 15)  # Open vSwitch's record
    changes_before = sum(1 for c in cluster.controllers.values() for e in c.get("/v1/events")
                         if e["event"] == "role_changed")
    mods_before = mods(leader)
    src, dst, _ = cluster.path(leader)
    victims = cluster.etcd.names[:members]
    seen_masters = []

    def kill():
        for name in victims:
            cluster.etcd.kill(name)
        for _ in range(10):  # 5 s without them, looking at who is master
            time.sleep(0.5)
            seen_masters.append(cluster.masters())
        for name in victims:
            cluster.etcd.restart(name)
    probes = probe_run(src, dst, 7.0, event=kill, event_at=1.0)
    wait_until(lambda: cluster.etcd.healthy(), 15)
    time.sleep(2.0)
    after_leader = cluster.leader()
    changes = sum(1 for c in cluster.controllers.values() for e in c.get("/v1/events")
                  if e["event"] == "role_changed") - changes_before
    sent = mods(after_leader) if after_leader is leader else {}
    return {"lost": probes["lost"],
            "leader_after": after_leader.settings["cluster_node_id"] if after_leader else None,
            "same_leader": after_leader is not None
            and after_leader.settings["cluster_node_id"] == before_name,
            # polls where Open vSwitch had another controller as some switch's master
            "master_changes": sum(1 for m in seen_masters if m - {before_name, ()}),
            "role_events": changes,
            "tables_same": network_tables(cluster.net) == before_tables,
            "mods": (sent.get("flow_mods", 0) - mods_before["flow_mods"],
                     sent.get("group_mods", 0) - mods_before["group_mods"]) if sent else None}


def med(values):
    values = [v for v in values if v is not None]
    return "%.3f" % statistics.median(values) if values else "-"


def worst(values):
    values = [v for v in values if v is not None]
    return "%.3f" % max(values) if values else "-"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", default="leafspine,2,2,2")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--policy", default="ecmp",
                        help="ecmp by default: its paths follow the topology alone, so a "
                             "flow mod the takeover sends is the takeover's")
    parser.add_argument("--heartbeat-ms", type=int, default=100)
    parser.add_argument("--vr-streams", type=int, default=4,
                        help="VR streams across the fabric during each kill (0: none)")
    parser.add_argument("--vr-mbps", type=float, default=4.0,
                        help="each stream's video bitrate, Mbit/s")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args(argv)
    logroot = Path(tempfile.mkdtemp(prefix="bench-ha-"))
    progress("logs under %s" % logroot)
    kills, losses = {}, {}
    variants = [("fast detection (%d ms)" % args.heartbeat_ms, args.heartbeat_ms),
                ("lease only", 0)]
    for scenario in [s for s in ("kill", "kill+cut") if s in args.only]:
        for label, heartbeat in variants:
            logdir = logroot / ("%s-%d" % (scenario.replace("+", "-"), heartbeat))
            logdir.mkdir()
            rounds = args.kills if scenario == "kill" else max(1, args.kills // 3)
            cluster = Cluster(args, logdir, heartbeat)
            try:
                rows = []
                for n in range(rounds):
                    progress("%s, %s: kill %d of %d" % (scenario, label, n + 1, rounds))
                    rows.append(one_kill(cluster, scenario == "kill+cut", "%s-%d" % (
                        scenario.replace("+", "-"), n)))
                    progress("  %s" % rows[-1])
            finally:
                cluster.close()
            kills[(scenario, label)] = rows
    for scenario, members in (("etcd-1", 1), ("etcd-2", 2)):
        if scenario not in args.only:
            continue
        logdir = logroot / scenario
        logdir.mkdir()
        progress("%s: %d etcd member(s) killed for 5 s" % (scenario, members))
        cluster = Cluster(args, logdir, args.heartbeat_ms)
        try:
            losses[scenario] = etcd_loss(cluster, members)
            progress("  %s" % losses[scenario])
        finally:
            cluster.close()

    print()
    print("HA on %s, 3 etcd members, 3 controllers (policy %s), 1 probe/ms; seconds after "
          "the SIGKILL, median (worst)" % (args.topo, args.policy))
    rows = []
    for (scenario, label), runs in kills.items():
        rows.append([scenario, label, len(runs),
                     "%s (%s)" % (med([r["elected"] for r in runs]),
                                  worst([r["elected"] for r in runs])),
                     "%s (%s)" % (med([r["masters"] for r in runs]),
                                  worst([r["masters"] for r in runs])),
                     "%s (%s)" % (med([r["links"] for r in runs]),
                                  worst([r["links"] for r in runs])),
                     "%d (%d)" % (statistics.median(r["lost"] for r in runs),
                                  max(r["lost"] for r in runs)),
                     "%d / %d" % (max(r.get("flow_mods", 0) for r in runs),
                                  max(r.get("group_mods", 0) for r in runs)),
                     "%d/%d" % (sum(1 for r in runs if r.get("repaired")), len(runs))
                     if scenario == "kill+cut" else "-",
                     "%s / %s / %s" % (
                         max((r.get("vr_worst_stream_misses_1s") or 0 for r in runs), default=0),
                         max((r.get("vr_outage_ms") or 0 for r in runs), default=0),
                         med([r.get("vr_miss_pct") for r in runs]))])
    if rows:
        print(table(["scenario", "detection", "kills", "elected s", "master on every switch s",
                     "links re-proven s", "probes lost", "takeover flow / group mods (max)",
                     "repaired", "VR: worst stream misses in the 1 s after (max) / longest "
                     "outage ms (max) / miss % (median)"], rows))
    etcd_rows = [[s, r["lost"], r["leader_after"], "yes" if r["same_leader"] else "NO",
                  r["master_changes"], r["role_events"], "yes" if r["tables_same"] else "NO",
                  "%d / %d" % r["mods"] if r["mods"] else "-"]
                 for s, r in losses.items()]
    if etcd_rows:
        print()
        print(table(["scenario", "probes lost", "leader after", "same leader",
                     "polls (of 10) with another master", "role changes",
                     "tables as before", "flow / group mods"], etcd_rows))
    print()
    print("Logs: %s" % logroot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
