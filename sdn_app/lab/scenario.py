"""The elastic-network scenario shared by the main job (scripts/demo.py) and its
side-by-side benchmark (scripts/bench_vr.py): VR users on Mininet hosts talking to edge
servers on others, background bursts, then a flash crowd, a failure of the busiest link
and its recovery, each a phase measured with ``sdn_app.lab.vr``.

Who serves whom, for any topology: every fourth host (h1, h5, ...) is an edge server;
the others are user hosts, and a user is served by the server of the *next* block of
four hosts, so in a fat tree or leaf-spine every stream crosses the core.  Users are
spread round-robin over the user hosts (a host may carry several).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sdn_app.lab import vr
from sdn_app.lab.emulation import REPO, after_cut, port_bytes

# How our controller runs the scenario: bridges allow OpenFlow 1.5 so SELECT groups can
# split UDP by dp_hash, and adaptive re-evaluates quickly enough for 10 s phases.
PROTOCOLS = "OpenFlow13,OpenFlow15"
OUR_SETTINGS = {"rebalance_interval": 1.0, "rebalance_hold": 2.0}
PHASES = ("steady", "crowd", "failure", "recovery")
VR_PORT = 9100
CUTS = ("transit", "busiest")
FAILOVER_WINDOW = 1.0  # seconds after the cut whose frame misses the failover costs
START_LEAD = 2.0  # s from run() to the first phase: every sender is ready by then


@dataclass
class Scenario:
    """Sessions and phase boundaries (seconds from the start) of one run."""

    sessions: list
    phases: list  # [(name, start, end)]
    profile: vr.Profile
    seed: int
    servers: list
    probe_pair: tuple  # (server, user) of the first stream: whose split the report shows
    cut: str = "transit"  # which link fails: see _busiest

    @property
    def duration(self) -> float:
        return self.phases[-1][2]


def build(hosts: list[str], users: int, crowd: int, duration: float, seed: int,
          profile: vr.Profile, background: int = 2, background_mbps: float = 1.0,
          cut: str = "transit", churn: int = 0) -> Scenario:
    """The scenario for hosts named ``hosts`` (in order): ``users`` VR users from the
    start, ``crowd`` more joining in a flash crowd at the second quarter; the third
    quarter is the failure, the last the recovery.  ``churn`` more users come and go at
    random throughout (on and off for 4 s on average).  ``cut``: see _busiest."""
    if len(hosts) < 2:
        raise ValueError("need at least two hosts")
    if cut not in CUTS:
        raise ValueError("cut must be one of %s" % ", ".join(CUTS))
    if users < 1 or min(crowd, background, churn) < 0 or duration < 4:
        raise ValueError("need users >= 1, crowd, background, churn >= 0, duration >= 4 s")
    servers = hosts[::4]
    user_hosts = [h for h in hosts if h not in servers]
    quarter = duration / 4
    phases = [(name, i * quarter, (i + 1) * quarter) for i, name in enumerate(PHASES)]

    def server_for(user):
        block = hosts.index(user) // 4
        return servers[(block + 1) % len(servers)] if len(servers) > 1 else servers[0]

    pairs = [(user_hosts[i % len(user_hosts)],) for i in range(users + crowd + churn)]
    pairs = [(u, server_for(u)) for (u,) in pairs]
    sessions = []
    for stream, (user, server) in enumerate(pairs[:users]):
        sessions += vr.vr_user(stream, user, server, 0.0, duration)
    sessions += vr.flash_crowd(pairs[users:users + crowd], users, quarter, duration, seed,
                               spread=1.0)
    sessions += vr.churn(pairs[users + crowd:], 500, duration, seed, mean_on=4.0,
                         mean_off=4.0)
    rng = random.Random(seed)
    for i in range(background):
        a, b = rng.sample(hosts, 2)
        sessions += vr.on_off(a, b, 1000 + i, vr.BULK, duration, seed + i, mean_on=0.5,
                              mean_off=1.5, mbps=background_mbps)
    return Scenario(sessions, phases, profile, seed, servers, pairs[0][::-1], cut)


@dataclass
class Run:
    """What one run of a scenario measured."""

    start_at: float
    sent: list
    received: list
    phases: list  # vr.Phase, epoch seconds
    analysis: dict
    utilization: dict = field(default_factory=dict)  # phase -> (max, mean) over links
    link_mbps: dict = field(default_factory=dict)  # phase -> {"bridge:port": tx Mbit/s}
    splits: dict = field(default_factory=dict)  # phase -> shares of the probe pair's paths
    cut: str = ""
    cut_at: float | None = None  # epoch seconds
    reoptimized_after: float | None = None
    failover: dict = field(default_factory=dict)  # analysis of FAILOVER_WINDOW after the cut
    # phase -> cores ovs-vswitchd used (1.0 = one core busy all phase); None: unreadable
    dataplane_cpu: dict = field(default_factory=dict)
    refused: set = field(default_factory=set)  # video streams admission control refused

    def failover_figures(self) -> tuple:
        """(worst stream's frame misses, longest outage ms) in the FAILOVER_WINDOW after
        the cut, over the video streams never refused and every pose stream (a refused
        stream's silence is admission's doing, not the failover's); (None, None) with
        no cut."""
        if not self.failover:
            return None, None
        admitted = [s for stream, s in self.failover.get("video_streams", {}).items()
                    if int(stream) not in self.refused]
        pose = (self.failover.get("pose") or {}).get("longest_outage_ms") or 0.0
        return (max((s["frame_misses"] for s in admitted), default=0),
                max([pose] + [s["longest_outage_ms"] or 0.0 for s in admitted]))

    def admission(self, phase: str) -> dict:
        """Per phase, what admission control did to the video streams: how many were
        offered and refused, the frame misses of those never refused, and the frames on
        time over all (a refused stream's frames count as missed)."""
        entry = next(p for p in self.analysis["phases"] if p["phase"] == phase)
        streams = entry.get("video_streams", {})
        admitted = [s for stream, s in streams.items() if int(stream) not in self.refused]
        frames = sum(s["frames"] for s in admitted)
        return {"offered": len(streams), "refused": len(streams) - len(admitted),
                "admitted_miss_pct": 100.0 * sum(s["frame_misses"] for s in admitted) / frames
                if frames else None,
                "frames_on_time": sum(s["frames"] - s["frame_misses"]
                                      for s in streams.values())}


def _inter_switch_ports(net) -> list[tuple[str, int, float | None]]:
    """(bridge, port, capacity bit/s or None if unshaped) of every inter-switch port."""
    out = []
    for link in net.links:
        ends = (link.intf1, link.intf2)
        if all(intf.node in net.switches for intf in ends):
            bw = link.intf1.params.get("bw")
            out += [(intf.node.name, intf.node.ports[intf], float(bw) * 1e6 if bw else None)
                    for intf in ends]
    return out


VSWITCHD_PID_FILE = Path("/var/run/openvswitch/ovs-vswitchd.pid")


def dataplane_cpu_seconds(pid_file: Path = VSWITCHD_PID_FILE) -> float | None:
    """CPU seconds (user + system) ovs-vswitchd has used, or None where unreadable.
    Every emulated switch is a bridge of that one process, and its userspace datapath
    forwards every packet in its main thread: when it nears one core, frames wait for
    the emulation's CPU, not for a link, and a run measures the machine, not the
    controller.  The report shows it beside each phase for that reason."""
    try:
        pid = int(pid_file.read_text().split()[0])
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _snapshot(net, protocols: str) -> tuple[float, dict, float | None]:
    return (time.time(), {sw.name: port_bytes(sw.name, protocols) for sw in net.switches},
            dataplane_cpu_seconds())


def _rates(before, after, ports) -> dict:
    """{(bridge, port, capacity): transmit bit/s} between two snapshots."""
    seconds = max(1e-6, after[0] - before[0])
    return {(sw, port, cap): (after[1][sw].get(port, {}).get("tx", 0)
                              - before[1][sw].get(port, {}).get("tx", 0)) * 8 / seconds
            for sw, port, cap in ports}


def _far_end(intf):
    return intf.link.intf2 if intf.link.intf1 is intf else intf.link.intf1


def _peer(net, bridge: str, port: int):
    """The switch at the far end of ``bridge``'s port ``port`` (None for a host)."""
    intf = net.get(bridge).intfs.get(port)
    if intf is None or intf.link is None:
        return None
    other = _far_end(intf).node
    return other if other in net.switches else None


def run(net, scenario: Scenario, workdir: Path, say, ctl=None,
        protocols: str = "OpenFlow13") -> Run:
    """Play ``scenario`` on a started network (hosts have IPs; forwarding is up).
    ``ctl``: our controller's REST (None for another controller).  ``say`` reports
    progress.  Processes are killed on any exit, including Ctrl-C."""
    workdir.mkdir(parents=True, exist_ok=True)
    addresses = {h.name: h.IP() for h in net.hosts}
    by_src, dsts = {}, {}  # dsts: receiving host -> the kinds sent to it
    for s in scenario.sessions:
        by_src.setdefault(s.src, []).append(s)
        dsts.setdefault(s.dst, set()).add(s.kind)
    start_at = time.time() + START_LEAD
    end_at = start_at + scenario.duration
    procs = []
    result = Run(start_at, [], [], [vr.Phase(n, start_at + a, start_at + b)
                                     for n, a, b in scenario.phases], {})
    try:
        for host, kinds in sorted(dsts.items()):
            procs.append(net.get(host).popen(
                [sys.executable, "-m", "sdn_app.lab.vr", "recv", "--port", str(VR_PORT),
                 "--kinds", ",".join(vr.KIND_NAMES[k] for k in sorted(kinds)),
                 "--seconds", str(end_at + 1.5 - time.time()),
                 "--log", str(workdir / ("recv-%s.bin" % host))],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(REPO)))
        for host, sessions in sorted(by_src.items()):
            schedule = workdir / ("schedule-%s.json" % host)
            schedule.write_text(json.dumps([asdict(s) for s in sessions]))
            procs.append(net.get(host).popen(
                [sys.executable, "-m", "sdn_app.lab.vr", "send", "--schedule", str(schedule),
                 "--addresses", json.dumps(addresses), "--port", str(VR_PORT),
                 "--start-at", repr(start_at), "--seed", str(scenario.seed),
                 "--seconds", str(scenario.duration),
                 "--log", str(workdir / ("sent-%s.bin" % host)),
                 "--ports-log", str(workdir / ("ports-%s.json" % host))]
                + vr.profile_args(scenario.profile),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(REPO)))
        _drive(net, scenario, result, say, ctl, protocols)
        give_up = max(time.time() + 5.0, end_at + 30)
        while any(proc.poll() is None for proc in procs):
            if time.time() > give_up:
                raise subprocess.TimeoutExpired("traffic processes", give_up - end_at)
            _pause(0.1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    failed = [p for p in procs if p.returncode]
    if failed:
        raise RuntimeError("a traffic process failed: %s"
                           % failed[0].stderr.read().decode(errors="replace")[-2000:])
    for host in by_src:
        result.sent += vr.read_log(workdir / ("sent-%s.bin" % host))
    for host in dsts:
        result.received += vr.read_log(workdir / ("recv-%s.bin" % host))
    result.analysis = vr.analyse(result.sent, result.received, result.phases)
    if ctl is not None:
        result.refused = refused_streams(ctl.get("/v1/admission"), {
            (addresses[host], port): (kind, stream) for host in by_src
            for kind, stream, port in json.loads(
                (workdir / ("ports-%s.json" % host)).read_text())})
    if result.cut_at is not None:
        window = vr.Phase("failover", result.cut_at, result.cut_at + FAILOVER_WINDOW)
        result.failover = vr.analyse(result.sent, result.received, [window])["phases"][0]
    return result


def refused_streams(status: dict, streams: dict) -> set:
    """The video streams (ids) among ``streams`` ({(source IP, source port): (kind,
    stream)}) that GET /v1/admission (``status``) lists as refused."""
    out = set()
    for refusal in status.get("recent_refusals", ()):
        src_ip, _dst_ip, src_port, _dst_port = refusal["stream"]
        kind, stream = streams.get((src_ip, src_port), (None, None))
        if kind == vr.VIDEO:
            out.add(stream)
    return out


def _drive(net, scenario, result, say, ctl, protocols) -> None:
    """The orchestrator's timeline: phase changes, the cut, the repair, and counter
    snapshots at every phase boundary (for link utilization)."""
    ports = _inter_switch_ports(net)
    snapshots = {}
    for phase in result.phases:
        _sleep_until(phase.start, say, None)
        snapshots[phase.name] = _snapshot(net, protocols)
        if phase.name == "failure":
            busiest = _busiest(net, ports, snapshots["crowd"], snapshots["failure"],
                               scenario.cut == "transit")
            if busiest is not None:
                a, b = busiest
                since = ctl.get("/v1/events")[-1]["seq"] if ctl else 0
                cut_time = result.cut_at = time.time()
                net.configLinkStatus(a.name, b.name, "down")
                result.cut = "%s-%s" % (a.name, b.name)
                say("phase failure: cut the busiest %slink %s (%.0f ms in)"
                    % ("transit " if scenario.cut == "transit" else "", result.cut,
                       1000 * (time.time() - phase.start)))
                if ctl is not None:
                    result.reoptimized_after = after_cut(ctl, since, cut_time, wait=2.0)[1]
        elif phase.name == "recovery" and result.cut:
            a, b = result.cut.split("-")
            net.configLinkStatus(a, b, "up")
            say("phase recovery: link %s restored" % result.cut)
        else:
            say("phase %s: %s" % (phase.name, _describe(scenario, phase.name)))
        if ctl is not None:
            result.splits[phase.name] = _split(ctl, net, scenario)
        _sleep_until(phase.end, say, phase.name)
    snapshots["end"] = _snapshot(net, protocols)
    names = [p.name for p in result.phases] + ["end"]
    for name, following in zip(names, names[1:], strict=False):
        rates = _rates(snapshots[name], snapshots[following], ports)
        utils = [rate / cap for (_, _, cap), rate in rates.items() if cap]
        result.link_mbps[name] = {"%s:%d" % (sw, port): round(rate / 1e6, 3)
                                  for (sw, port, _), rate in rates.items()}
        result.utilization[name] = ((max(utils), sum(utils) / len(utils)) if utils
                                    else (None, None))
        cpu = (snapshots[name][2], snapshots[following][2])
        result.dataplane_cpu[name] = (
            None if None in cpu else
            round((cpu[1] - cpu[0]) / max(1e-6, snapshots[following][0] - snapshots[name][0]),
                  2))


def _describe(scenario, phase_name) -> str:
    start = dict((n, a) for n, a, _ in scenario.phases)[phase_name]
    at = start + 1.5
    users = {s.stream for s in scenario.sessions
             if s.kind == vr.VIDEO and s.start <= at < s.stop}
    return "%d VR users active" % len(users)


# Set by Ctrl-C (install_interrupt_handler).  Python raises KeyboardInterrupt wherever
# the main thread is when the signal is handled, and one raised inside a finalizer
# (__del__, which a collection may run at any moment) is printed and dropped: the demo
# once ran on for a minute after a Ctrl-C.  The waits below look at the flag as well.
INTERRUPTED = threading.Event()


def install_interrupt_handler() -> None:
    """Ctrl-C sets INTERRUPTED, then raises KeyboardInterrupt as Python's own does."""
    def interrupted(signum, frame):
        INTERRUPTED.set()
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, interrupted)


def _pause(seconds: float) -> None:
    """Sleep, or raise KeyboardInterrupt once Ctrl-C was pressed, however it was lost."""
    if INTERRUPTED.wait(max(0.0, seconds)):
        raise KeyboardInterrupt


def _sleep_until(deadline: float, say, phase_name) -> None:
    """Sleep, printing progress every 5 s within a phase."""
    while True:
        left = deadline - time.time()
        if left <= 0:
            _pause(0)
            return
        _pause(min(left, 5.0))
        if phase_name and deadline - time.time() > 0.5:
            say("  ... %s" % phase_name)


def _busiest(net, ports, before, after, transit: bool):
    """The link whose port sent the most (relative to its capacity, if shaped).  With
    ``transit``, only links between switches without hosts count, if there are any:
    a server's edge switch losing one of its two uplinks loses half its capacity, which
    measures capacity planning, not failover."""
    rates = _rates(before, after, ports)
    with_hosts = {_far_end(intf).node.name for h in net.hosts for intf in h.intfList()
                  if intf.link is not None}
    ranked = []
    for (bridge, port, _), _ in sorted(rates.items(), key=lambda kv: -kv[1] / (kv[0][2] or 1)):
        peer = _peer(net, bridge, port)
        if peer is not None:
            ranked.append((net.get(bridge), peer))
    if transit:
        inner = [(a, b) for a, b in ranked
                 if a.name not in with_hosts and b.name not in with_hosts]
        ranked = inner or ranked
    return ranked[0] if ranked else None


def _split(ctl, net, scenario) -> str:
    """The shares of the paths the first stream's video takes (server -> user)."""
    server, user = scenario.probe_pair
    with contextlib.suppress(Exception):
        report = ctl.get("/v1/paths?src=%s&dst=%s" % (net.get(server).IP(),
                                                        net.get(user).IP()))
        return "/".join("%.0f" % (100 * p["share"]) for p in report["paths"])
    return "-"
