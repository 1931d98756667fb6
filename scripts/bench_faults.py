#!/usr/bin/env python3
"""Faults: what a dead controller, a dropped switch connection and a flapping link cost.

On a fresh controller and network per scenario (leafspine,2,2,2 by default), with a UDP
probe stream (1 packet/ms: probes lost = the loss window in ms) between the first and
the last host:

  kill            the controller SIGKILLed 1 s into the stream, restarted after it
                  ends: probes lost while it is dead (nothing failed), how long the new
                  one takes until it reports the whole topology, and the flow and group
                  mods it sends taking over (a take-over changes nothing that is right)
  kill+cut        the same, with the first link of the path cut 0.5 s after the kill:
                  the switches' failover groups alone carry the stream, the next
                  controller repairs the path.  Side by side with protection off (no
                  failover groups): the stream is then lost until a controller returns.
  drop            (shortest paths, so the stream surely crosses it) the path's second
                  switch loses its controller connection for 1 s
                  (pointed at a dead port): probes lost, mods sent on its return
  flap            one link going down and up every --flap-ms for --flap-seconds under
                  REST polling: the REST answer time (p50 / p99) while flapping against
                  the same poll idle (the ratio), flow and group mods per flap, and
                  whether every table ends as it was before the flapping

  del-controller  the path's second switch's controller removed for 1 s and set again
                  (ovs-vsctl del-controller / set-controller): Open vSwitch flushes a
                  secure-mode bridge left with no controller, so the stream stops there;
                  probes lost, and the seconds from set-controller until every table
                  is as before (the re-sync)
  ovs-restart     ovs-vswitchd restarted (ovs-ctl restart, which saves and restores
                  the flow tables but not the meters, so the entries using our
                  packet-in meter fail to come back until we re-add them): probes lost,
                  time until every switch is connected again, mods sent, whether every
                  table ends as before

Each scenario runs --repeats times.

Usage: .venv/bin/python scripts/bench_faults.py [--repeats 3] [--topo leafspine,2,2,2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab.emulation import (  # noqa: E402
    ControllerProcess,
    emulated_network,
    expected_topology,
    flapping,
    free_port,
    network_tables,
    ping_pairs,
    probe_run,
    switch_by_dpid,
    switch_link,
    switches_and_links_match,
    unrelated_pair,
    wait_converged,
    wait_quiet,
    wait_until,
)
from sdn_app.lab.measure import percentile  # noqa: E402
from sdn_app.lab.report import table  # noqa: E402


def progress(text: str) -> None:
    print("[bench_faults %s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr,
          flush=True)


def mods(ctl) -> int:
    """Flow and group mods the controller has sent since it started, for any reason."""
    sent = ctl.get("/v1/policy")["mods_sent"]
    return sent["flow_mods"] + sent["group_mods"]


def flow_mods(ctl) -> int:
    return ctl.get("/v1/policy")["mods_sent"]["flow_mods"]


def settle_takeover(ctl, since: float) -> None:
    """Until a switch taken over is past its hold (link_timeout after it reported its
    entries, 3.5 s by default), when what it held and the plan last meet, and the
    controller is quiet: only then are the mods it sent the take-over's whole cost."""
    time.sleep(max(0.0, since + 5.0 - time.monotonic()))
    wait_quiet(ctl, 1.0)


def path_ends(ctl, net):
    src, dst = net.hosts[0], net.hosts[-1]
    hops = ctl.get("/v1/paths?src=%s&dst=%s" % (src.MAC(), dst.MAC()))["hops"]
    return src, dst, [switch_by_dpid(net, hop["dpid"]) for hop in hops]


def kill(args, logdir, cut: bool, protection: bool) -> dict:
    settings = {"protection": str(protection).lower(), "policy": "shortest"}
    first = ControllerProcess(settings=settings, log_path=logdir / "first.log").start()
    second = None
    try:
        with emulated_network(args.topo, first.of_port) as net:
            for sw in net.switches:
                sw.vsctl("set controller %s max_backoff=1000" % sw.name)
            expected = wait_converged(first, net)
            ping_pairs(net)
            wait_quiet(first)
            src, dst, path = path_ends(first, net)
            before = network_tables(net)

            def kill_it():
                os.killpg(first.proc.pid, signal.SIGKILL)
                first.proc.wait(5)
                if cut:
                    time.sleep(0.5)
                    net.configLinkStatus(path[0].name, path[1].name, "down")
            run = probe_run(src, dst, args.seconds, event=kill_it)
            started = time.monotonic()
            second = ControllerProcess(settings=settings, log_path=logdir / "second.log",
                                       of_port=first.of_port).start()
            want = expected_topology(net) if not cut else dict(expected, links={
                lk for lk in expected["links"] if {lk[0], lk[2]} != {
                    "%016x" % int(sw.dpid, 16) for sw in path[:2]}})
            seen = wait_until(lambda: switches_and_links_match(second, want), 30)
            converged = time.monotonic() - started if seen else None
            settle_takeover(second, started)
            return {"lost": run["lost"], "received": run["received"],
                    "converged_s": converged, "takeover_mods": mods(second),
                    "takeover_flow_mods": flow_mods(second),
                    "unchanged": None if cut else network_tables(net) == before}
    finally:
        for ctl in (first, second):
            if ctl is not None:
                ctl.stop()


@contextlib.contextmanager
def quiet_network(args, logdir, settings: dict, fast_reconnect: bool = False):
    """(controller, network) on a fresh pair, converged, pinged and quiet."""
    with ControllerProcess(settings=settings, log_path=logdir / "ctl.log") as ctl, \
            emulated_network(args.topo, ctl.of_port) as net:
        if fast_reconnect:  # back within a second once a controller answers again
            for sw in net.switches:
                sw.vsctl("set controller %s max_backoff=1000" % sw.name)
        wait_converged(ctl, net)
        ping_pairs(net)
        wait_quiet(ctl)
        yield ctl, net


def drop(args, logdir) -> dict:
    with quiet_network(args, logdir, {"policy": "shortest"}) as (ctl, net):
        src, dst, path = path_ends(ctl, net)
        switch = path[1]
        target = switch.vsctl("get-controller", switch.name).strip()
        before, sent = network_tables(net), mods(ctl)

        def drop_it():
            switch.vsctl("set-controller", switch.name, "tcp:127.0.0.1:%d" % free_port())
            time.sleep(1.0)
            switch.vsctl("set-controller", switch.name, target)
        run = probe_run(src, dst, args.seconds, event=drop_it, event_at=0.5)
        wait_until(lambda: all(s["connected"] for s in ctl.get("/v1/switches")), 10)
        settle_takeover(ctl, time.monotonic())
        return {"lost": run["lost"], "received": run["received"],
                "mods": mods(ctl) - sent, "unchanged": network_tables(net) == before}


OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


def resync_s(net, before: dict, since: float, timeout: float = 20.0):
    """Seconds from ``since`` until every table is as ``before`` again (read back from
    the switches), or None if it never is within ``timeout``."""
    if wait_until(lambda: network_tables(net) == before, timeout, interval=0.05):
        return time.monotonic() - since
    return None


def del_controller(args, logdir) -> dict:
    """``ovs-vsctl del-controller`` then ``set-controller`` on the path's second switch:
    a secure-mode bridge left with no controller flushes its tables, so this one is an
    outage Open vSwitch makes; what we own is the re-sync."""
    with quiet_network(args, logdir, {"policy": "shortest"}) as (ctl, net):
        src, dst, path = path_ends(ctl, net)
        switch = path[1]
        target = switch.vsctl("get-controller", switch.name).strip()
        before, timing = network_tables(net), {}

        def remove_and_restore():
            switch.vsctl("del-controller", switch.name)
            time.sleep(1.0)
            switch.vsctl("set-controller", switch.name, target)
            timing["resync_s"] = resync_s(net, before, time.monotonic())  # stream still on
        run = probe_run(src, dst, args.seconds, event=remove_and_restore, event_at=0.5)
        return {"lost": run["lost"], "received": run["received"],
                "resync_s": timing["resync_s"]}


def ovs_restart(args, logdir) -> dict:
    with quiet_network(args, logdir, {"policy": "shortest"}, fast_reconnect=True) as (ctl, net):
        src, dst, _ = path_ends(ctl, net)
        before, sent = network_tables(net), mods(ctl)
        timing = {}

        def restart():
            began = time.monotonic()
            subprocess.run([OVS_CTL, "--no-ovsdb-server", "--system-id=random", "restart"],
                           check=True, capture_output=True, timeout=60)
            timing["restart_s"] = time.monotonic() - began
            timing["resync_s"] = resync_s(net, before, began)  # while the stream runs
        run = probe_run(src, dst, args.seconds, event=restart, event_at=0.5)
        settle_takeover(ctl, time.monotonic())
        return {"lost": run["lost"], "received": run["received"],
                "restart_s": timing.get("restart_s"), "mods": mods(ctl) - sent,
                "resync_s": timing["resync_s"], "unchanged": network_tables(net) == before}


def rest_times(ctl, stop: threading.Event, out: list) -> None:
    while not stop.is_set():
        began = time.monotonic()
        status, _ = ctl.request("/v1/topology")
        out.append((time.monotonic() - began, status))
        time.sleep(0.02)


def poll_for(ctl, seconds: float) -> list:
    out, stop = [], threading.Event()
    thread = threading.Thread(target=rest_times, args=(ctl, stop, out), daemon=True)
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join(5)
    return out


def flap(args, logdir) -> dict:
    settings = {"policy": "ecmp", "hash_split": "false"}
    with quiet_network(args, logdir, settings) as (ctl, net):
        idle = poll_for(ctl, 3.0)
        before, sent = network_tables(net), mods(ctl)
        link = switch_link(net)
        pair = unrelated_pair(net, link)
        out, stop = [], threading.Event()
        poller = threading.Thread(target=rest_times, args=(ctl, stop, out), daemon=True)
        poller.start()
        with flapping(net, link, args.flap_ms / 1000.0, args.flap_seconds) as flaps:
            unrelated = probe_run(*pair, args.flap_seconds - 1.0) if pair else None
        stop.set()
        poller.join(5)
        wait_until(lambda: all(lk["state"] == "up" for lk in ctl.get("/v1/links")), 15)
        wait_quiet(ctl)
        busy = sorted(t for t, status in out if status == 200)
        calm = sorted(t for t, status in idle if status == 200)
        return {"flaps": flaps["flaps"],
                "mods_per_flap": (mods(ctl) - sent) / max(flaps["flaps"], 1),
                "unrelated_lost": unrelated["lost"] if unrelated else None,
                "rest_failed": sum(status != 200 for _, status in out),
                "rest_idle_ms": (1000 * percentile(calm, 50), 1000 * percentile(calm, 99)),
                "rest_flap_ms": (1000 * percentile(busy, 50), 1000 * percentile(busy, 99)),
                "unchanged": network_tables(net) == before, "alive": ctl.alive()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", default="leafspine,2,2,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="probe stream length")
    parser.add_argument("--flap-ms", type=float, default=100.0)
    parser.add_argument("--flap-seconds", type=float, default=10.0)
    parser.add_argument("--only", nargs="+", metavar="SCENARIO",
                        help="run only these (kill, kill+cut, ..., drop, flap)")
    args = parser.parse_args(argv)
    results: dict = {}
    scenarios = [("kill", lambda d: kill(args, d, cut=False, protection=True)),
                 ("kill+cut", lambda d: kill(args, d, cut=True, protection=True)),
                 ("kill+cut, no protection", lambda d: kill(args, d, cut=True,
                                                            protection=False)),
                 ("drop", lambda d: drop(args, d)),
                 ("flap", lambda d: flap(args, d)),
                 ("ovs-restart", lambda d: ovs_restart(args, d)),
                 ("del-controller", lambda d: del_controller(args, d))]
    if args.only:
        scenarios = [(name, run) for name, run in scenarios if name in args.only]
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for repeat in range(args.repeats):
            for name, run in scenarios:
                progress("%s, run %d of %d" % (name, repeat + 1, args.repeats))
                logdir = Path(tmp) / ("%s-%d" % (name.replace(" ", "").replace(",", "-"),
                                                 repeat))
                logdir.mkdir()
                results.setdefault(name, []).append(run(logdir))

    def median(name, key):
        values = [r[key] for r in results.get(name, []) if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else "-"

    def unchanged(name):
        runs = [r["unchanged"] for r in results.get(name, []) if r.get("unchanged") is not None]
        return "%d of %d" % (sum(runs), len(runs)) if runs else "-"

    rows = [[name, median(name, "lost"), median(name, "converged_s"),
             "%s (%s flow mods)" % (median(name, "takeover_mods"),
                                    median(name, "takeover_flow_mods")), unchanged(name)]
            for name in ("kill", "kill+cut", "kill+cut, no protection")]
    print("\nController killed (SIGKILL) under a 1 probe/ms stream, %s, median of %d"
          % (args.topo, args.repeats))
    print(table(["scenario", "probes lost", "restart to topology (s)",
                 "mods by the next controller", "tables as before"], rows))
    print("(groups are not read back from the switches, so the next controller sends "
          "each again, unchanged)")
    print("\nOne switch's controller connection dropped for 1 s")
    print(table(["probes lost", "mods on its return", "tables as before"], [[
        median("drop", "lost"), median("drop", "mods"), unchanged("drop")]]))
    print("\nOpen vSwitch restarted (ovs-ctl restart) under the stream")
    print(table(["probes lost", "ovs-ctl restart took (s)", "tables as before after (s)",
                 "mods sent", "tables as before"],
                [[median("ovs-restart", "lost"), median("ovs-restart", "restart_s"),
                  median("ovs-restart", "resync_s"), median("ovs-restart", "mods"),
                  unchanged("ovs-restart")]]))
    print("\nOne switch's controller removed for 1 s (ovs-vsctl del-controller, then "
          "set-controller: Open vSwitch flushes its tables)")
    print(table(["probes lost", "tables as before, after set-controller (s)"],
                [[median("del-controller", "lost"), median("del-controller", "resync_s")]]))
    flaps = results.get("flap", [])
    if flaps:
        idle = [r["rest_idle_ms"] for r in flaps]
        busy = [r["rest_flap_ms"] for r in flaps]
        p99_idle = statistics.median(p99 for _, p99 in idle)
        p99_busy = statistics.median(p99 for _, p99 in busy)
        print("\nA link flapping every %g ms for %g s (REST GET /v1/topology every 20 ms)"
              % (args.flap_ms, args.flap_seconds))
        print(table(["flaps", "mods per flap", "probes lost off the link",
                     "REST p50 / p99 idle (ms)",
                     "REST p50 / p99 flapping (ms)", "p99 ratio", "REST errors",
                     "tables as before"], [[
                         median("flap", "flaps"), median("flap", "mods_per_flap"),
                         median("flap", "unrelated_lost"),
                         "%.1f / %.1f" % (statistics.median(p for p, _ in idle), p99_idle),
                         "%.1f / %.1f" % (statistics.median(p for p, _ in busy), p99_busy),
                         "%.2f" % (p99_busy / p99_idle if p99_idle else float("nan")),
                         sum(r["rest_failed"] for r in flaps),
                         unchanged("flap")]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
