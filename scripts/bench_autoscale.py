#!/usr/bin/env python3
"""A service's pool under a replayed load, side by side in one run: static at
min_backends, static at max_backends, our reactive scaling, our predictive scaling
(Holt-Winters with the load's period as its season) and predictive without a season
(Holt's trend alone), on the same load, real servers with a real capacity, and a real
start-up delay.

On ``--topo`` (default leafspine,2,3,3) four hosts can run a backend (the first always
does; the others are standby, started and stopped by the lab actuator,
sdn_app/lab/actuator.py, ``--startup-s`` after being asked); each backend serves
``--workers`` requests at a time, ``--service-ms`` each (capacity workers / service
time); four client hosts send open-loop arrivals (sdn_app.lab.service_load arrivals),
each 2-second step started on the wall clock so the load keeps its period.  The load,
in requests per second over all clients, is two "days" of the same pattern: a slow
ramp, a flash crowd (x4 within one second), a plateau, a fall.  Day one is new to every
policy; on day two a forecaster that has learned the day can be ready for the crowd.
The pool is sized by the switches' count of new connections per second (metric
``requests``), ``--target`` of capacity per backend; the service uses least_conn, so a
backend with a backlog gets no new connections while the ones just started have room.

Per variant, day and phase it prints requests served and failed, p99 latency, requests
over the ``--budget-ms`` budget (the SLO), backend-seconds used (cost: backends in the
pool, serving or draining, sampled every half second) and against an oracle that knows
the load (ceil(load / capacity) each step, started in time, run at 100 %), and the
scale events; it plots load, forecast, pool size and latency over time
(results/bench_autoscale.png).

Usage: .venv/bin/python scripts/bench_autoscale.py [--startup-s 3] [--budget-ms 250]
(about 12 minutes)
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab.emulation import (  # noqa: E402
    REPO,
    ControllerProcess,
    emulated_network,
    ping_pairs,
    wait_converged,
    wait_until,
)
from sdn_app.lab.report import table  # noqa: E402

VIP, PORT = "10.0.0.100", 8000
LOAD = [sys.executable, "-m", "sdn_app.lab.service_load"]
LEAD_S = 1.0  # a load step's client processes start this much before it


def log(*args):
    print("[%s]" % time.strftime("%H:%M:%S"), *args, flush=True)


def load_shape(base: float, days: int = 2) -> list:
    """[(day, phase, seconds, total requests/s)], each day: a slow ramp from base to
    3.75 x base over 30 s in 2-second steps, a flash crowd of 4 x that within one second,
    held 14 s, and a fall to 1.5 x base for 20 s (65 s)."""
    ramp = [("ramp", 2.0, base * (1 + i * 2.75 / 14)) for i in range(15)]
    crowd = base * 3.75 * 4
    one = ramp + [("crowd", 1.0, crowd)] + [("crowd", 2.0, crowd)] * 7 + [
        ("fall", 2.0, base * 1.5)] * 10
    return [(d + 1, *step) for d in range(days) for step in one]


def day_seconds(shape) -> float:
    return sum(seconds for day, _, seconds, _ in shape if day == 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", default="leafspine,2,3,3")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--service-ms", type=float, default=40.0)
    parser.add_argument("--startup-s", type=float, default=3.0)
    parser.add_argument("--budget-ms", type=float, default=250.0)
    parser.add_argument("--base-rate", type=float, default=16.0,
                        help="requests/s over all clients at the start of the ramp")
    parser.add_argument("--target", type=float, default=0.85,
                        help="load per backend the pool is sized for, of its capacity")
    parser.add_argument("--window-s", type=float, default=10.0,
                        help="scale-down stabilization window (HPA's 300 s, for a "
                             "65-second day)")
    parser.add_argument("--variants", default="",
                        help="comma-separated names of the variants to run (default all), "
                             "e.g. 'reactive,predictive'")
    parser.add_argument("--out", default=str(REPO / "results" / "bench_autoscale.json"))
    args = parser.parse_args()
    capacity = args.workers * 1000.0 / args.service_ms
    shape = load_shape(args.base_rate)
    serve_args = "--workers %d --delay-ms %g" % (args.workers, args.service_ms)
    command = '%s -m sdn_app.lab.actuator --startup-s %g --serve-args="%s"' % (
        sys.executable, args.startup_s, serve_args)
    results = {"capacity_rps": capacity, "shape": shape, "budget_ms": args.budget_ms,
               "startup_s": args.startup_s, "variants": {}}
    with ControllerProcess(settings={"scaling_command": command},
                           log_path=Path(args.out).with_suffix(".controller.log")) as ctl, \
            emulated_network(args.topo, ctl.of_port) as net:
        wait_converged(ctl, net)
        assert not ping_pairs(net)[1]
        pool, clients = net.hosts[:4], net.hosts[4:8]
        log("pool hosts %s (capacity %.0f req/s each), clients %s" % (
            [h.name for h in pool], capacity, [h.name for h in clients]))
        target = args.target * capacity  # new connections/s per backend
        season = day_seconds(shape)
        variants = [
            ("static at min (1)", {"backends": pool[:1], "policy": "off"}),
            ("static at max (4)", {"backends": pool, "policy": "off"}),
            ("reactive", {"backends": pool[:1], "policy": "reactive"}),
            ("predictive", {"backends": pool[:1], "policy": "predictive",
                            "season_s": season}),
            ("predictive, no season", {"backends": pool[:1], "policy": "predictive"}),
        ]
        wanted = [w.strip() for w in args.variants.split(",") if w.strip()]
        unknown = set(wanted) - {name for name, _ in variants}
        if unknown:
            parser.error("unknown variants %s (known: %s)" % (
                ", ".join(sorted(unknown)), ", ".join(name for name, _ in variants)))
        for name, variant in variants:
            if wanted and name not in wanted:
                continue
            log("variant: %s" % name)
            results["variants"][name] = run_variant(ctl, pool, clients, shape, variant,
                                                    target, args)
        results["controller_alive"] = ctl.alive()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    report(results)
    from sdn_app.lab import plots
    print("plot: %s" % plots.autoscale_run(results, Path(args.out).with_suffix(".png")))
    return 0


def run_variant(ctl, pool, clients, shape, variant, target, args) -> dict:
    servers = {}
    for host in variant["backends"]:
        servers[host.name] = host.popen(
            [*LOAD, "serve", "--port", str(PORT), "--name", host.name, "--workers",
             str(args.workers), "--delay-ms", str(args.service_ms)], cwd=str(REPO),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    standby = [h for h in pool if h not in variant["backends"]]
    # least_conn: a backend with a backlog (its queued connections count) gets no new
    # connections while the ones just started have room
    body = {"name": "web", "vip": VIP, "port": PORT, "protocol": "tcp",
            "scheduler": "least_conn",
            "backends": [{"ip": h.IP()} for h in variant["backends"]],
            "scaling": {"policy": variant["policy"], "min_backends": 1,
                        "max_backends": len(pool), "metric": "requests",
                        "target": round(target, 1), "hold_s": 2,
                        "scale_down_window_s": args.window_s,
                        "startup_s": args.startup_s,
                        "season_s": variant.get("season_s", 0),
                        "standby": [{"ip": h.IP()} for h in standby]}}
    status, answer = ctl.request("/v1/services", "POST", json.dumps(body).encode())
    assert status == 201, answer
    ips = [h.IP() for h in variant["backends"]]
    assert wait_until(lambda: all(state(ctl).get(ip) == "up" for ip in ips), 10)
    time.sleep(0.5)
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            try:
                backends = ctl.get("/v1/services/web")["backends"]
                forecast = ctl.get("/v1/services/web/scaling")["forecast"]
            except (OSError, RuntimeError, ValueError):
                backends, forecast = [], None
            samples.append((time.time(), sum(1 for b in backends if b["state"] in (
                "up", "draining")), forecast, {b["ip"]: [b["state"], b["active_connections"]]
                                               for b in backends}))
            stop.wait(0.5)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    steps = []
    started = time.time() + LEAD_S
    offset = 0.0
    for day, phase, seconds, rate in shape:
        # each step on the wall clock: its clients start a second early and wait (--at)
        time.sleep(max(0.0, started + offset - LEAD_S - time.time()))
        procs = [c.popen([*LOAD, "arrivals", "--dst", VIP, "--port", str(PORT), "--rate",
                          str(rate / len(clients)), "--seconds", str(seconds), "--timeout",
                          "3", "--budget-ms", str(args.budget_ms),
                          "--at", "%.3f" % (started + offset)], cwd=str(REPO),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for c in clients]
        if not steps or steps[-1][0][:2] != (day, phase):
            log("  day %d %s (%.0f req/s)" % (day, phase, rate))
        steps.append(((day, phase, offset, seconds, rate), procs))
        offset += seconds
    phases = []
    for (day, phase, at, seconds, rate), procs in steps:
        outs = [json.loads(p.communicate(timeout=60)[0].decode().strip().splitlines()[-1])
                for p in procs]
        phases.append({"day": day, "phase": phase, "at": at, "seconds": seconds,
                       "rate": rate,
                       "served": sum(sum(o["answers"].values()) for o in outs),
                       "failed": sum(o["failed"] for o in outs),
                       "over_budget": sum(o["over_budget"] for o in outs),
                       "p99_ms": max((o["latency_ms"][1] for o in outs if o["latency_ms"]),
                                     default=0.0)})
    stop.set()
    sampler.join()
    scaling = ctl.get("/v1/services/web/scaling")
    fetched = time.time()
    ctl.request("/v1/services/web", "DELETE")
    for proc in servers.values():
        proc.kill()
        proc.wait()
    for host in standby:
        subprocess.run([sys.executable, "-m", "sdn_app.lab.actuator", "stop", "web",
                        host.IP(), str(PORT)], check=False)
    return {"phases": phases,
            "pool": [[round(t - started, 2), n, f] for t, n, f, _ in samples],
            "backends": [[round(t - started, 2), b] for t, _, _, b in samples],
            "decisions": scaling["decisions"],
            "measured": [[round(fetched - started + age, 2), load]
                         for age, load in scaling["series"]]}


def state(ctl) -> dict:
    return {b["ip"]: b["state"] for b in ctl.get("/v1/services/web")["backends"]}


def backend_seconds(pool, start, end) -> float:
    """Integral of the pool size over [start, end) from its samples."""
    total = 0.0
    for (t0, n, _), (t1, _, _) in zip(pool, pool[1:], strict=False):
        lo, hi = max(t0, start), min(t1, end)
        if hi > lo:
            total += n * (hi - lo)
    return total


def report(results) -> None:
    capacity = results["capacity_rps"]
    rows = []
    for name, run in results["variants"].items():
        groups = [("day %d %s" % (d, ph), [p for p in run["phases"]
                                           if (p["day"], p["phase"]) == (d, ph)])
                  for d in (1, 2) for ph in ("ramp", "crowd", "fall")]
        groups += [("day %d" % d, [p for p in run["phases"] if p["day"] == d])
                   for d in (1, 2)]
        for label, ph in groups + [("all", run["phases"])]:
            if not ph:
                continue
            start, end = ph[0]["at"], ph[-1]["at"] + ph[-1]["seconds"]
            served = sum(p["served"] for p in ph)
            failed = sum(p["failed"] for p in ph)
            over = sum(p["over_budget"] for p in ph) + failed
            oracle = sum(math.ceil(p["rate"] / capacity) * p["seconds"] for p in ph)
            used = backend_seconds(run["pool"], start, end)
            rows.append([name, label, served, failed, "%.0f" % max(p["p99_ms"] for p in ph),
                         "%.1f" % (100.0 * over / max(served + failed, 1)),
                         "%.0f" % used, "%.0f" % oracle,
                         "%+.0f%%" % (100.0 * (used - oracle) / oracle) if oracle else "-"])
    print("\nBackends serve %.0f req/s each; budget %.0f ms; start-up %.0f s; crowd and "
          "plateau counted together as 'crowd'" % (capacity, results["budget_ms"],
                                                   results["startup_s"]))
    print(table(["variant", "part", "served", "failed", "p99 ms", "over budget %",
                 "backend-s", "oracle backend-s", "vs oracle"], rows))
    for name, run in results["variants"].items():
        if run["decisions"]:
            print("%s: %s" % (name, "; ".join("%d (%s)" % (d["size"], d["reason"])
                                              for d in run["decisions"])))
    print("controller alive at the end: %s" % results["controller_alive"])


if __name__ == "__main__":
    sys.exit(main())
