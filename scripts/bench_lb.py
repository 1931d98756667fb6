#!/usr/bin/env python3
"""Our in-switch load balancer against HAProxy, side by side in one run, with real TCP
and UDP servers and clients in Mininet hosts (sdn_app.lab.service_load).

On ``--topo`` (default leafspine,2,3,3: two spines, so several paths) three backends
(weights 1, 2, 3) and a spare sit on the first two leaves, clients on the others, each
client host with ``--aliases`` extra addresses (so source hashing sees many clients).
Three load balancers serve the same backends:

* ours: a VIP in the switches (``POST /v1/services``), health checks at 200 ms;
* HAProxy (Debian's package) on a host of the same fabric, default checks
  (``check``: every 2 s, rise 2, fall 3) and default map-based source hashing;
* HAProxy tuned: ``check inter 200 rise 2 fall 3`` and ``hash-type consistent``.

For each it prints, per scheduler (wrr/roundrobin, least_conn/leastconn,
source_hash/source, and our nearest), the share of new connections per backend against
the weights; new connections per second with every client connecting back to back, and
the failures; packet-ins per new connection (counted by our controller, over the whole
fabric); added first-packet latency (connection set-up and first answer from one client
alone, p50, minus the same straight to a backend).  Then, with connections held open:
after killing one backend's server, how long until no new connection fails and how many
held connections to the *other* backends broke (and a plot of the attempts around the
kill); held connections broken by adding a backend, re-weighting one and draining one;
the share of source-hash clients that moved when one of three backends left (target
<= 1/3 + 5 points); the weight-3 backend turned slow (answering after --slow-ms) under
open-loop arrivals: shares and latency under wrr, our wrr + adaptive weights and
least_conn, HAProxy's roundrobin and leastconn; and for ours a UDP request/response
service.

Usage: .venv/bin/python scripts/bench_lb.py [--topo leafspine,2,3,3] [--aliases 100]
       [--only ours|haproxy] [--slow-ms 1500] [--out results/bench_lb.json]
(about 7 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab import plots  # noqa: E402
from sdn_app.lab.emulation import (  # noqa: E402
    REPO,
    ControllerProcess,
    emulated_network,
    ping_pairs,
    wait_converged,
    wait_until,
)
from sdn_app.lab.measure import percentile  # noqa: E402
from sdn_app.lab.report import table  # noqa: E402

PORT, UDP_PORT, VIP = 8000, 9000, "10.0.0.100"
WEIGHTS = (1, 2, 3)
SCHEDULERS = {  # ours -> HAProxy's balance algorithm (None: HAProxy has none)
    "wrr": "roundrobin", "least_conn": "leastconn", "source_hash": "source",
    "nearest": None}
LOAD = [sys.executable, "-m", "sdn_app.lab.service_load"]


def log(*args):
    print("[%s]" % time.strftime("%H:%M:%S"), *args, flush=True)


def run_json(proc) -> dict:
    out, _ = proc.communicate(timeout=120)
    return json.loads(out.decode().strip().splitlines()[-1])


def start(host, *args):
    return host.popen([*LOAD, *map(str, args)], cwd=str(REPO), stdout=subprocess.PIPE,
                      stderr=subprocess.DEVNULL)


def controller_packets(ctl) -> int:
    """Packet-ins the controller has received so far, from every switch."""
    return ctl.get("/v1/policy")["packet_ins"]


class Ours:
    name = "ours (in the switches)"

    def __init__(self, ctl, net, backends):
        self.ctl, self.net, self.backends = ctl, net, backends
        self.target = VIP

    def configure(self, scheduler, adaptive=False):
        self.ctl.request("/v1/services/web", "DELETE")
        body = {"name": "web", "vip": VIP, "port": PORT, "protocol": "tcp",
                "scheduler": scheduler, "adaptive": adaptive,
                "backends": [{"ip": h.IP(), "weight": w} for h, w in
                             zip(self.backends, WEIGHTS, strict=True)]}
        status, answer = self.ctl.request("/v1/services", "POST", json.dumps(body).encode())
        assert status == 201, answer
        ok = wait_until(lambda: self.states() == {h.IP(): "up" for h in self.backends}, 10)
        assert ok, self.states()
        time.sleep(0.3)  # the last backend's slots reach every switch

    def states(self):
        return {b["ip"]: b["state"] for b in self.ctl.get("/v1/services/web")["backends"]}

    def placements(self) -> int:
        return self.ctl.get("/v1/services/web")["controller_placements"]

    def marked_down_at(self, host, since):
        """When the controller's event log says the backend went down."""
        return next((e["time"] for e in self.ctl.get("/v1/events")
                     if e["event"] == "backend_down" and e.get("ip") == host.IP()
                     and e["time"] >= since), None)

    def is_up(self, host):
        return self.states().get(host.IP()) == "up"

    def _put(self, host, body):
        status, answer = self.ctl.request("/v1/services/web/backends/%s" % host.IP(), "PUT",
                                          json.dumps(body).encode())
        assert status == 200, answer

    def add(self, host):
        status, answer = self.ctl.request("/v1/services/web/backends", "POST", json.dumps(
            {"ip": host.IP(), "weight": 2}).encode())
        assert status == 201 or status == 200, answer

    def reweight(self, host, weight):
        self._put(host, {"weight": weight})

    def drain(self, host):
        self._put(host, {"state": "draining"})

    def remove(self, host):
        self.ctl.request("/v1/services/web/backends/%s" % host.IP(), "DELETE")

    def stop(self):
        self.ctl.request("/v1/services/web", "DELETE")


class HAProxy:
    def __init__(self, host, backends, spare, tuned):
        self.host, self.backends, self.spare, self.tuned = host, backends, spare, tuned
        self.name = "HAProxy %s" % ("tuned (inter 200 ms, consistent hash)" if tuned
                                    else "default (check every 2 s)")
        self.target = host.IP()
        self.dir = tempfile.mkdtemp(prefix="bench-lb-haproxy-")
        self.socket = os.path.join(self.dir, "admin.sock")
        self.proc = None

    def configure(self, scheduler, adaptive=False):
        self.stop()
        check = "check inter 200 rise 2 fall 3" if self.tuned else "check"
        lines = ["global", "    maxconn 4096", "    stats socket %s mode 600 level admin"
                 % self.socket, "defaults", "    mode tcp", "    timeout connect 1s",
                 "    timeout client 30s", "    timeout server 30s",
                 "    timeout check 200ms" if self.tuned else "",
                 "frontend web", "    bind %s:%d" % (self.target, PORT),
                 "    default_backend pool", "backend pool",
                 "    balance %s" % SCHEDULERS[scheduler]]
        if self.tuned:
            lines.append("    hash-type consistent")
        for host, weight in zip(self.backends, WEIGHTS, strict=True):
            lines.append("    server %s %s:%d weight %d %s" % (host.name, host.IP(), PORT,
                                                            weight, check))
        lines.append("    server %s %s:%d weight 2 %s disabled" % (
            self.spare.name, self.spare.IP(), PORT, check))
        path = os.path.join(self.dir, "haproxy.cfg")
        Path(path).write_text("\n".join(lines) + "\n")
        log_path = os.path.join(self.dir, "haproxy.log")
        with open(log_path, "ab") as log_file:
            self.proc = self.host.popen(["haproxy", "-db", "-f", path],
                                        stdout=log_file, stderr=subprocess.STDOUT)
        if not wait_until(lambda: all(self.status(h) == "UP" for h in self.backends), 15):
            raise RuntimeError("HAProxy did not come up: %s\n%s" % (
                {h.name: self.status(h) for h in self.backends},
                Path(log_path).read_text()[-2000:]))

    def command(self, text) -> str:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(self.socket)
                sock.sendall(text.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            return b"".join(chunks).decode()
        except OSError:
            return ""

    def status(self, host) -> str:
        for line in self.command("show stat").splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == "pool" and fields[1] == host.name:
                return fields[17].split()[0]
        return ""

    def placements(self) -> int:
        return 0  # HAProxy places every connection itself, outside the controller

    def marked_down_at(self, host, since):
        return None  # HAProxy's log would say; its clients' view is what we compare

    def is_up(self, host):
        return self.status(host) == "UP"

    def add(self, host):
        self.command("set server pool/%s state ready" % host.name)

    def reweight(self, host, weight):
        self.command("set server pool/%s weight %d" % (host.name, weight))

    def drain(self, host):
        self.command("set server pool/%s state drain" % host.name)

    def remove(self, host):
        self.command("set server pool/%s state maint" % host.name)

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def aliases(net, clients, count):
    """Extra addresses on each client host, in its own subnet (so the backends can
    answer them): {host name: [address, ...]}."""
    out = {}
    for i, host in enumerate(clients):
        addrs = ["10.0.%d.%d" % (64 + i, n + 1) for n in range(count)]
        intf = host.defaultIntf()
        for addr in addrs:
            host.cmd("ip addr add %s/%s dev %s" % (addr, intf.prefixLen, intf))
        out[host.name] = addrs
    return out


def shares(answers: dict, backends) -> list:
    total = sum(answers.values()) or 1
    return [round(100.0 * answers.get(h.name, 0) / total, 1) for h in backends]


def merge(results) -> dict:
    answers: dict = {}
    for result in results:
        for name, n in result["answers"].items():
            answers[name] = answers.get(name, 0) + n
    return answers


def measure_scheduler(lb, scheduler, ctl, clients, sources, backends, args) -> dict:
    lb.configure(scheduler)
    if scheduler == "least_conn":  # held connections: each choice sees the others
        procs = [start(c, "hold", "--dst", lb.target, "--port", PORT, "--count", 30,
                       "--seconds", 1) for c in clients]
        answers: dict = {}
        for proc in procs:
            for name in run_json(proc)["names"]:
                answers[name] = answers.get(name, 0) + 1
    else:
        answers = merge(run_json(start(c, "connect", "--dst", lb.target, "--port", PORT,
                                       "--count", 2 * len(sources[c.name]), "--sources",
                                       ",".join(sources[c.name]))) for c in clients)
    before = controller_packets(ctl)
    placed = lb.placements()
    began = time.time()
    rate = [run_json(p) for p in [start(c, "connect", "--dst", lb.target, "--port", PORT,
                                        "--seconds", args.seconds, "--timeout", 1,
                                        "--timeline") for c in clients]]
    packet_ins = controller_packets(ctl) - before
    placed = lb.placements() - placed
    ok = sum(sum(r["answers"].values()) for r in rate)
    failed = sum(r["failed"] for r in rate)
    alone = run_json(start(clients[0], "connect", "--dst", lb.target, "--port", PORT,
                           "--count", args.latency_count, "--timeout", 1))
    p50, p99 = alone["latency_ms"] or (0.0, 0.0)
    failed_at = sorted(round(t - began, 3) for r in rate for t, name in r.pop("timeline")
                       if name is None)
    return {"shares": shares(answers, backends), "conn_per_s": round(ok / args.seconds),
            "failed_at_s": failed_at,
            "failed": failed, "packet_ins_per_conn": round(packet_ins / max(ok, 1), 3),
            "placements_per_conn": round(placed / max(ok, 1), 3),
            "latency_p50_ms": p50, "latency_p99_ms": p99, "connections": sum(answers.values())}


def failover(lb, net, clients, backends, servers, args) -> dict:
    """Kill the weight-2 backend's server while clients connect back to back and one
    client holds connections open; then bring it back."""
    lb.configure("wrr")
    victim = backends[1]
    seconds = args.failover_seconds if isinstance(lb, Ours) or lb.tuned else 9.0
    holder = start(clients[0], "hold", "--dst", lb.target, "--port", PORT, "--count", 24,
                   "--seconds", seconds + 1)
    streams = [start(c, "connect", "--dst", lb.target, "--port", PORT, "--seconds", seconds,
                     "--timeout", 0.5, "--timeline") for c in clients[1:]]
    time.sleep(1.0)
    killed = time.time()
    servers[victim.name].kill()
    servers[victim.name].wait()
    timelines = [run_json(p)["timeline"] for p in streams]
    held = run_json(holder)
    attempts = sorted((a for t in timelines for a in t), key=lambda a: a[0])
    failures = [t for t, name in attempts if name is None and t >= killed - 0.5]
    last_failure = max(failures, default=None)
    recovered = next((t for t, name in attempts if name is not None and last_failure is not None
                      and t > last_failure), None)
    others_broken = sum(1 for i, name in enumerate(held["names"])
                        if name != victim.name and i in held["broken"])
    marked = lb.marked_down_at(victim, killed)
    timeline = [[round(t - killed, 3), name is not None] for t, name in attempts]
    servers[victim.name] = serve(victim)
    wait_until(lambda: lb.is_up(victim), 15)
    return {"failed_after_kill": len(failures),
            "marked_down_after_s": round(marked - killed, 3) if marked else None,
            "no_failures_after_s": round(recovered - killed, 3) if recovered else 0.0,
            "held_on_others": sum(1 for n in held["names"] if n != victim.name),
            "held_on_others_broken": others_broken, "attempts": timeline}


def pool_changes(lb, clients, backends, spare, args) -> dict:
    """Connections held open while a backend is added, one re-weighted, one drained."""
    lb.configure("wrr")
    holder = start(clients[0], "hold", "--dst", lb.target, "--port", PORT, "--count", 30,
                   "--seconds", 4)
    stream = start(clients[1], "connect", "--dst", lb.target, "--port", PORT, "--seconds", 4,
                   "--timeout", 1, "--timeline")
    changes = {}
    time.sleep(0.8)
    changes["add"] = time.time()
    lb.add(spare)
    time.sleep(0.8)
    changes["reweight"] = time.time()
    lb.reweight(backends[0], 4)
    time.sleep(0.8)
    changes["drain"] = time.time()
    lb.drain(backends[2])
    held, new = run_json(holder), run_json(stream)
    failures = [round(t - changes["add"], 3) for t, name in new["timeline"] if name is None]
    return {"held": len(held["names"]), "held_broken": len(held["broken"]),
            "new_failed": new["failed"], "new_ok": sum(new["answers"].values()),
            "failed_at_s_after_add": failures,
            "changes_s_after_add": {k: round(t - changes["add"], 3) for k, t in changes.items()}}


def source_moves(lb, clients, sources, backends) -> dict:
    """The share of source-hash clients whose backend changed when one backend left."""
    lb.configure("source_hash")

    def owners():
        out = {}
        for client in clients:
            result = run_json(start(client, "connect", "--dst", lb.target, "--port", PORT,
                                    "--count", len(sources[client.name]), "--timeline",
                                    "--sources", ",".join(sources[client.name])))
            for addr, (_, name) in zip(sources[client.name], result["timeline"],
                                       strict=True):
                out[addr] = name
        return out
    before = owners()
    lb.remove(backends[0])
    time.sleep(0.5 if isinstance(lb, Ours) else 0.2)
    after = owners()
    answered = [a for a in before if before[a] and after.get(a)]
    moved = sum(1 for a in answered if before[a] != after[a])
    gone = sum(1 for a in answered if before[a] == backends[0].name)
    return {"clients": len(answered), "failed": len(before) - len(answered),
            "moved_pct": round(100.0 * moved / max(len(answered), 1), 1),
            "on_the_leaver_pct": round(100.0 * gone / max(len(answered), 1), 1)}


def slow_backend(lb, clients, backends, servers, args) -> dict:
    """The weight-3 backend turns slow (answers after --slow-ms): open-loop arrivals
    from every client, per scheduler the share each backend got and the latency."""
    slow = backends[2]
    servers[slow.name].kill()
    servers[slow.name].wait()
    servers[slow.name] = serve(slow, delay_ms=args.slow_ms)
    variants = [("wrr", False), ("wrr", True), ("least_conn", False)] if isinstance(
        lb, Ours) else [("wrr", False), ("least_conn", False)]
    out = {}
    for scheduler, adaptive in variants:
        lb.configure(scheduler, adaptive)
        results = [run_json(p) for p in [
            start(c, "arrivals", "--dst", lb.target, "--port", PORT, "--rate",
                  args.arrival_rate, "--seconds", args.slow_seconds, "--timeout",
                  args.slow_ms / 1000.0 + 3) for c in clients]]
        label = scheduler + (" + adaptive" if adaptive else "")
        out[label] = {
            "shares": shares(merge(results), backends),
            "failed": sum(r["failed"] for r in results),
            "latency_mean_ms": round(sum(r["latency_mean_ms"] * sum(r["answers"].values())
                                         for r in results if r["latency_mean_ms"])
                                     / max(1, sum(sum(r["answers"].values())
                                                  for r in results)), 1),
            "latency_p99_ms": max((r["latency_ms"][1] for r in results if r["latency_ms"]),
                                  default=0.0)}
        log("  %s: %s" % (label, out[label]))
    servers[slow.name].kill()
    servers[slow.name].wait()
    servers[slow.name] = serve(slow)
    return out


def udp_service(ctl, clients, backends) -> dict:
    body = {"name": "dns-like", "vip": VIP, "port": UDP_PORT, "protocol": "udp",
            "backends": [{"ip": h.IP(), "weight": w, "port": UDP_PORT}
                         for h, w in zip(backends, WEIGHTS, strict=True)]}
    status, answer = ctl.request("/v1/services", "POST", json.dumps(body).encode())
    assert status == 201, answer
    wait_until(lambda: {b["state"] for b in ctl.get("/v1/services/dns-like")["backends"]}
               == {"up"}, 10)
    time.sleep(0.3)
    results = [run_json(start(c, "connect", "--udp", "--dst", VIP, "--port", UDP_PORT,
                              "--count", 200, "--timeout", 0.5)) for c in clients]
    ctl.request("/v1/services/dns-like", "DELETE")
    return {"shares": shares(merge(results), backends),
            "failed": sum(r["failed"] for r in results),
            "latency_p50_ms": percentile(sorted(r["latency_ms"][0] for r in results), 50)}


def serve(host, udp=False, delay_ms=0.0):
    args = ["serve", "--port", UDP_PORT if udp else PORT, "--name", host.name,
            "--delay-ms", delay_ms] + (["--udp"] if udp else [])
    return host.popen([*LOAD, *map(str, args)], cwd=str(REPO),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def direct_latency(client, backend, count) -> float:
    """p50 of connection set-up and first answer from one client straight to a backend,
    connections one after another: the baseline of the added latency."""
    return run_json(start(client, "connect", "--dst", backend.IP(), "--port", PORT,
                          "--count", count))["latency_ms"][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", default="leafspine,2,3,3")
    parser.add_argument("--aliases", type=int, default=100)
    parser.add_argument("--latency-count", type=int, default=300)
    parser.add_argument("--slow-ms", type=float, default=1500.0,
                        help="how late the slow backend answers")
    parser.add_argument("--arrival-rate", type=float, default=40.0,
                        help="new connections per second per client, slow-backend phase")
    parser.add_argument("--slow-seconds", type=float, default=12.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--failover-seconds", type=float, default=3.0)
    parser.add_argument("--out", default=str(REPO / "results" / "bench_lb.json"))
    parser.add_argument("--only", choices=("ours", "haproxy"), help="one side only")
    args = parser.parse_args()
    results: dict = {"topology": args.topo, "weights": WEIGHTS, "lbs": {},
                     "slow_ms": args.slow_ms, "arrival_rate": args.arrival_rate}
    with ControllerProcess(log_path=Path(args.out).with_suffix(".controller.log")) as ctl, \
            emulated_network(args.topo, ctl.of_port) as net:
        wait_converged(ctl, net)
        assert not ping_pairs(net)[1]
        hosts = net.hosts
        backends, spare = [hosts[0], hosts[1], hosts[3]], hosts[2]
        clients, lb_host = hosts[4:-1], hosts[-1]
        log("backends %s (weights %s), spare %s, clients %s, HAProxy on %s" % (
            [h.name for h in backends], WEIGHTS, spare.name, [h.name for h in clients],
            lb_host.name))
        servers = {h.name: serve(h) for h in backends + [spare]}
        udp_servers = [serve(h, udp=True) for h in backends]
        sources = aliases(net, clients, args.aliases)
        ping_pairs(net, all_at_once=True)
        direct = direct_latency(clients[0], backends[0], args.latency_count)
        results["direct_latency_p50_ms"] = direct
        log("straight to a backend: p50 %.2f ms" % direct)
        lbs = [Ours(ctl, net, backends), HAProxy(lb_host, backends, spare, tuned=False),
               HAProxy(lb_host, backends, spare, tuned=True)]
        lbs = [lb for lb in lbs if args.only is None or (args.only == "ours") == (
            isinstance(lb, Ours))]
        try:
            for lb in lbs:
                out = results["lbs"][lb.name] = {"schedulers": {}}
                for scheduler, theirs in SCHEDULERS.items():
                    if theirs is None and not isinstance(lb, Ours):
                        continue
                    log("%s: %s" % (lb.name, scheduler))
                    out["schedulers"][scheduler] = measure_scheduler(
                        lb, scheduler, ctl, clients, sources, backends, args)
                log("%s: killing %s's server" % (lb.name, backends[1].name))
                out["failover"] = failover(lb, net, clients, backends, servers, args)
                log("%s: add, re-weight, drain" % lb.name)
                out["pool_changes"] = pool_changes(lb, clients, backends, spare, args)
                log("%s: source hash, one backend leaves" % lb.name)
                out["source_moves"] = source_moves(lb, clients, sources, backends)
                log("%s: a slow backend" % lb.name)
                out["slow_backend"] = slow_backend(lb, clients, backends, servers, args)
                lb.stop()
            log("ours: UDP request/response")
            results["udp"] = udp_service(ctl, clients, backends)
        finally:
            for lb in lbs:
                lb.stop()
            for proc in list(servers.values()) + udp_servers:
                proc.kill()
        results["controller_alive"] = ctl.alive()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    report(results)
    attempts = {name: out["failover"]["attempts"] for name, out in results["lbs"].items()}
    print("plot: %s" % plots.attempts_around(attempts, Path(args.out).with_suffix(".png"),
                                             "New connections while a backend dies (%s)"
                                             % results["topology"]))
    return 0


def report(results) -> None:
    ideal = [round(100.0 * w / sum(WEIGHTS), 1) for w in WEIGHTS]
    direct = results["direct_latency_p50_ms"]
    print("\nShares of new connections per backend (%%), ideal %s; %s" % (
        ideal, results["topology"]))
    rows = []
    for name, out in results["lbs"].items():
        for scheduler, m in out["schedulers"].items():
            rows.append([name, scheduler, m["shares"], m["connections"], m["conn_per_s"],
                         m["failed"], m["packet_ins_per_conn"],
                         "%.2f" % (m["latency_p50_ms"] - direct), "%.2f" % m["latency_p99_ms"]])
    print(table(["load balancer", "scheduler", "shares %", "conns", "conn/s", "failed",
                 "packet-ins/conn", "added p50 ms", "p99 ms"], rows))
    print("\n(conn/s: every client connecting back to back; added p50 and p99: one client "
          "alone, connection set-up and first answer, minus %.2f ms (p50) straight to a "
          "backend)" % direct)
    rows = []
    for name, out in results["lbs"].items():
        f, c, s = out["failover"], out["pool_changes"], out["source_moves"]
        marked = f.get("marked_down_after_s")
        rows.append([name, "%.3f" % f["no_failures_after_s"],
                     "%.3f" % marked if marked is not None else "-", f["failed_after_kill"],
                     "%d/%d" % (f["held_on_others_broken"], f["held_on_others"]),
                     "%d/%d" % (c["held_broken"], c["held"]), c["new_failed"],
                     "%.1f (%.1f on it; %d failed)" % (s["moved_pct"], s["on_the_leaver_pct"],
                                                       s["failed"])])
    print()
    print(table(["load balancer", "kill: no failures after s", "marked down after s",
                 "failed conns",
                 "held on others broken", "add+reweight+drain: held broken", "new failed",
                 "source hash moved % (1 of 3 leaves)"], rows))
    rows = [[name, label, m["shares"], m["failed"], "%.1f" % m["latency_mean_ms"],
             "%.1f" % m["latency_p99_ms"]]
            for name, out in results["lbs"].items()
            for label, m in out.get("slow_backend", {}).items()]
    if rows:
        print("\nThe weight-3 backend answers %.0f ms late; open-loop arrivals, %.0f/s per "
              "client:" % (results["slow_ms"], results["arrival_rate"]))
        print(table(["load balancer", "scheduler", "shares %", "failed", "mean ms",
                     "p99 ms"], rows))
    udp = results.get("udp")
    if udp:
        print("\nUDP request/response via our VIP: shares %s, %d failed, p50 %.2f ms "
              "(HAProxy: no UDP)" % (udp["shares"], udp["failed"], udp["latency_p50_ms"]))
    print("controller alive at the end: %s" % results["controller_alive"])


if __name__ == "__main__":
    sys.exit(main())
