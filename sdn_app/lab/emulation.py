"""Run the real stack: ryu-manager in a subprocess and a Mininet network of userspace
Open vSwitch bridges pointed at it.  Shared by the end-to-end tests, the demo and the
benchmarks, so all of them exercise the controller exactly as a user would.

Needs root, Open vSwitch daemons running (scripts/setup.sh) and Debian's mininet.
Everything started here is stopped by the context managers, even on failure, and only
what was started here: no broad pkill or ``mn -c``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

from sdn_app.core.settings import format_capacities

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY_FILE = REPO / "topologies" / "topos.py"


# Leaf queue of every shaped (bw=) interface, in packets.  Mininet's HTB class queues up
# to txqueuelen (1000) packets, more than the socket OVS's userspace datapath sends
# through can hold (~212 KB, charged ~2 KB per queued 1.2 KB frame); once a shaped link
# is overloaded the send then blocks, and the switch's single forwarding thread starves
# its *other* ports too (measured: a 60 Mbit/s port fell to 3.8 Mbit/s while a
# 10 Mbit/s port was overloaded).  A short queue drops instead, as a real switch port
# would.  It must still hold two 32-packet datapath batches: 30 packets lost 30% of an
# uncongested load, 100 brought the blocking back, 64 did neither (measured here).
SHAPED_QUEUE_PACKETS = 64


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free TCP port, never the same one twice in this process.  ryu-manager opens its
    OpenFlow and REST listeners with SO_REUSEPORT (eventlet's default), so given one
    port for both it starts fine and the kernel splits connections between them: seen
    in CI, switches' HELLOs answered by the REST server and switches connecting seconds
    late (and, likely, the REST query once found stalled after a ring cut)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_until(predicate, timeout: float, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; that value, or None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class ControllerProcess:
    """ryu-manager with the given apps, on free ports, logging to a file."""

    def __init__(self, apps=("sdn_app.controller",), settings: dict | None = None,
                 log_path: str | os.PathLike | None = None, extra_args=(),
                 of_port: int | None = None):
        self.apps = list(apps)
        # metrics on a port of their own, so controllers side by side do not clash
        self.settings = {"prometheus_port": free_port(), **(settings or {})}
        self.metrics_port = int(self.settings["prometheus_port"])
        self.extra_args = list(extra_args)
        self.of_port = of_port or free_port()
        self.rest_port = free_port()
        while self.rest_port == self.of_port:  # an of_port given by the caller
            self.rest_port = free_port()
        self.workdir = tempfile.TemporaryDirectory(prefix="sdn-ctl-")
        self.log_path = Path(log_path or Path(self.workdir.name) / "controller.log")
        self.proc = None

    def start(self, timeout: float = 20.0) -> ControllerProcess:
        conf = Path(self.workdir.name) / "controller.conf"
        lines = ["[sdn_app]"] + ["%s = %s" % kv for kv in self.settings.items()]
        conf.write_text("\n".join(lines) + "\n")
        manager = Path(sys.executable).with_name("ryu-manager")
        cmd = [str(manager), "--ofp-listen-host", "127.0.0.1",
               "--ofp-tcp-listen-port", str(self.of_port),
               "--wsapi-host", "127.0.0.1", "--wsapi-port", str(self.rest_port),
               "--config-file", str(conf), *self.extra_args, *self.apps]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=REPO)
        if not wait_until(lambda: self._listening() or self.proc.poll() is not None,
                          timeout) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("ryu-manager did not start; log:\n" + self.log_tail())
        return self

    def _listening(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.of_port), timeout=0.2):
            return True
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def request(self, path: str, method: str = "GET", body: bytes | None = None):
        """(status, parsed JSON or raw text) of a REST call."""
        url = "http://127.0.0.1:%d%s" % (self.rest_port, path)
        req = urllib.request.Request(url, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def metrics(self) -> str:
        """The Prometheus exposition text the controller serves now."""
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read().decode()

    def get(self, path: str):
        status, body = self.request(path)
        if status != 200:
            raise RuntimeError("GET %s -> %s: %s" % (path, status, body))
        return body

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.workdir.cleanup()


def load_topologies() -> dict:
    spec = importlib.util.spec_from_file_location("sdn_topologies", TOPOLOGY_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.topos


def make_topo(spec: str):
    """A Topo from an ``mn --topo`` style spec, e.g. ``fattree,4`` or ``diamond,bw=10``."""
    from mininet.util import buildTopo
    return buildTopo(load_topologies(), spec)


def capacity_settings(topo_spec: str) -> dict:
    """The controller setting that tells it every shaped link's real rate, in both
    directions (switch ports only; a host link's rate is the host's business)."""
    topo = make_topo(topo_spec)
    switches = set(topo.switches())
    capacities = []
    for a, b, info in topo.links(withInfo=True):
        if "bw" not in info:
            continue
        for node, port in ((a, info["port1"]), (b, info["port2"])):
            if node in switches:
                capacities.append((int(topo.nodeInfo(node)["dpid"], 16), port,
                                   float(info["bw"])))
    return {"link_capacity_mbps": format_capacities(capacities)} if capacities else {}


@contextlib.contextmanager
def emulated_network(topo_spec: str, controller_port: int | list, protocols: str = "OpenFlow13",
                     bfd_ms: int | None = None, controller_protocol: str = "tcp"):
    """A started Mininet network of userspace OVS bridges, stopped on exit, connected
    to the controller at ``controller_port`` (a list: to each of them).  ``bfd_ms``
    turns BFD on for inter-switch ports with that transmit/receive interval, so a link
    that fails without losing carrier still takes its port down (OVS then drops the
    port's LIVE state, which FAST_FAILOVER groups watch; scripts/check_bfd.sh).  BFD is
    an OVSDB setting, not OpenFlow: the controller cannot turn it on by itself.
    ``controller_protocol`` "ssl" connects the switches over TLS (lab/pki.ovs_ssl
    gives them their certificate)."""
    from mininet.link import Link, TCLink
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import OVSSwitch, RemoteController

    setLogLevel(os.environ.get("MININET_LOGLEVEL", "warning"))
    topo = make_topo(topo_spec)
    limited = any("bw" in topo.linkInfo(a, b) for a, b in topo.links())
    net = Mininet(topo=topo, build=False, autoSetMacs=False, waitConnected=False,
                  controller=None, link=TCLink if limited else Link,
                  switch=partial(OVSSwitch, datapath="user", protocols=protocols))
    class QuietRemoteController(RemoteController):
        """Mininet checks a remote controller with telnet from a shell, which prints
        whatever the controller sends first: our OpenFlow HELLO, binary, failed its
        UTF-8 decoding now and then (a flaky start-up).  ControllerProcess has already
        waited for the port to listen, and Mininet's check only ever warned."""

        def checkListening(self):  # noqa: N802 (Mininet's name)
            return None

    # every switch connects to every controller given (a cluster: one of them leads)
    ports = controller_port if isinstance(controller_port, list | tuple) else [controller_port]
    for i, port in enumerate(ports):
        net.addController("c%d" % i, controller=QuietRemoteController, ip="127.0.0.1",
                          port=port, protocol=controller_protocol)
    try:
        net.build()
        net.started_at = time.monotonic()  # what convergence times are measured from
        net.started_wall = time.time()  # the same moment on the wall clock (ping -D)
        net.start()
        switches = set(net.switches)
        for link in net.links:
            if bfd_ms and link.intf1.node in switches and link.intf2.node in switches:
                for intf in (link.intf1, link.intf2):
                    intf.node.vsctl("set interface %s bfd:enable=true bfd:min_tx=%d "
                                    "bfd:min_rx=%d bfd:decay_min_rx=0" % (intf, bfd_ms, bfd_ms))
            for intf in (link.intf1, link.intf2):
                if intf.params.get("bw"):
                    intf.node.cmd("tc qdisc add dev %s parent 5:1 handle 10: pfifo limit %d"
                                  % (intf, SHAPED_QUEUE_PACKETS))
        for host in net.hosts:
            # TCP through the userspace datapath stalls with checksum offload on.
            for intf in host.intfList():
                host.cmd("ethtool -K %s tx off >/dev/null 2>&1" % intf)
        yield net
    finally:
        net.stop()


def expected_topology(net) -> dict:
    """What the controller should report for a Mininet network: switch dpids, directed
    inter-switch links with ports, and each host's attachment (all in REST form)."""
    switches = {sw.name: "%016x" % int(sw.dpid, 16) for sw in net.switches}
    links, hosts = set(), {}
    for link in net.links:
        a, b = link.intf1, link.intf2
        if a.node.name in switches and b.node.name in switches:
            pa, pb = a.node.ports[a], b.node.ports[b]
            links.add((switches[a.node.name], pa, switches[b.node.name], pb))
            links.add((switches[b.node.name], pb, switches[a.node.name], pa))
        else:
            host_intf, sw_intf = (a, b) if b.node.name in switches else (b, a)
            hosts[host_intf.MAC()] = (switches[sw_intf.node.name],
                                      sw_intf.node.ports[sw_intf], host_intf.IP())
    return {"switches": set(switches.values()), "links": links, "hosts": hosts}


def reported_topology(topology_json: dict) -> dict:
    """The same shape as expected_topology, from ``GET /v1/topology``."""
    return {
        "switches": {s["dpid"] for s in topology_json["switches"]},
        "links": {(lk["src"]["dpid"], lk["src"]["port_no"], lk["dst"]["dpid"],
                   lk["dst"]["port_no"]) for lk in topology_json["links"]
                  if lk["state"] == "up"},
        "hosts": {h["mac"]: (h["dpid"], h["port_no"], h["ipv4"][0] if h["ipv4"] else None)
                  for h in topology_json["hosts"]},
    }


def switches_and_links_match(ctl: ControllerProcess, expected: dict) -> bool:
    try:
        got = reported_topology(ctl.get("/v1/topology"))
    except (RuntimeError, OSError):
        return False
    return got["switches"] == expected["switches"] and got["links"] == expected["links"]


def wait_converged(ctl: ControllerProcess, net, timeout: float = 30.0,
                   settle: float = 1.2) -> dict:
    """Wait until the controller reports exactly Mininet's switches and links, then for
    host-facing ports to settle (the controller's settle_time); the expected topology.
    Raises with the controller's log when it does not converge."""
    expected = expected_topology(net)
    if not wait_until(lambda: switches_and_links_match(ctl, expected), timeout):
        raise RuntimeError("topology never matched; controller log:\n" + ctl.log_tail())
    time.sleep(settle)
    return expected


def wait_applied(ctl: ControllerProcess, timeout: float = 10.0) -> bool:
    """Wait until the controller has no recomputation or send under way or due, so the
    switches hold its plan for what it knows now (hosts just learned by a ping round
    included: make-before-break updates their ingress switches last)."""
    return bool(wait_until(lambda: not ctl.get("/v1/policy")["reconciling"], timeout,
                           interval=0.05))


def ping_pairs(net, hosts=None, timeout: int = 1, all_at_once: bool = False,
               most: int | None = None):
    """Ping every ordered pair once: (pings sent, [(src, dst) names of the lost ones]).
    Each source pings all destinations concurrently, so a round costs about ``timeout``
    seconds even when nothing answers; with ``all_at_once`` all sources run together.
    ``most``: ping only that many pairs, the same random sample every round (fattree,8
    has 16,256 pairs: a round of them all is more processes than this machine starts
    within minutes)."""
    hosts = hosts or net.hosts
    pairs = [(s, d) for s in hosts for d in hosts if s is not d]
    if most is not None and most < len(pairs):
        pairs = random.Random(0).sample(pairs, most)
    targets: dict = {}
    for src, dst in pairs:
        targets.setdefault(src, []).append(dst)
    sources = [h for h in hosts if h in targets]

    def script(src):
        return ("for ip in %s; do (ping -c1 -W%d $ip >/dev/null 2>&1 && echo ok $ip "
                "|| echo lost $ip) & done; wait" % (" ".join(h.IP() for h in targets[src]),
                                                    timeout))
    if all_at_once:
        # An argument list, not popen(shell=True): Mininet's shell=True reads $SHELL,
        # which cron and CI runners leave unset.
        procs = [src.popen(["sh", "-c", script(src)], stdout=subprocess.PIPE)
                 for src in sources]
        outputs = [p.communicate()[0].decode() for p in procs]
    else:
        outputs = [src.cmd("sh -c '%s'" % script(src)) for src in sources]
    lost = []
    for src, out in zip(sources, outputs, strict=True):
        answered = {line.split()[1]: line.split()[0] for line in out.splitlines()
                    if line.split()[:1] in (["ok"], ["lost"])}
        lost += [(src.name, h.name) for h in targets[src] if answered.get(h.IP()) != "ok"]
    return len(pairs), lost


def ovs_ofctl(command: str, bridge: str, *args: str, protocols: str = "OpenFlow13") -> str:
    """Run ovs-ofctl against a bridge and return its output: the switch's real state."""
    return subprocess.run(["ovs-ofctl", "-O", protocols, command, bridge, *args], check=True,
                          capture_output=True, text=True, timeout=10).stdout


def flow_lines(bridge: str, protocols: str = "OpenFlow13",
               table: int | None = None) -> list[str]:
    """A switch's flow entries (of one table, if given), one line each."""
    where = () if table is None else ("table=%d" % table,)
    return [line.strip() for line in ovs_ofctl("dump-flows", bridge, *where,
                                               protocols=protocols).splitlines()
            if "actions=" in line]


VOLATILE_FLOW_FIELDS = ("duration", "n_packets", "n_bytes", "idle_age", "hard_age")


def table_contents(bridge: str, protocols: str = "OpenFlow13") -> tuple[list, list]:
    """(flow entries, groups) of a switch as sorted text without counters or ages: what
    it forwards by, to compare two moments."""
    flows = []
    for line in flow_lines(bridge, protocols):
        head, _, actions = line.partition(" actions=")
        kept = [part for part in head.replace(" ", "").split(",")
                if part.split("=")[0] not in VOLATILE_FLOW_FIELDS]
        flows.append(",".join(kept) + " actions=" + actions)
    groups = [line.strip() for line in ovs_ofctl("dump-groups", bridge, protocols=protocols)
              .splitlines() if "group_id=" in line]
    return sorted(flows), sorted(groups)


@contextlib.contextmanager
def flapping(net, link, period: float, seconds: float):
    """A Mininet ``link`` between two switches taken down and up every ``period`` s
    (half of it down) for ``seconds``, in a thread, while the body runs; left up.
    Yields {"flaps": count so far}; exits once the flapping is over."""
    a, b = link.intf1.node.name, link.intf2.node.name
    done = {"flaps": 0}

    def flap():
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            net.configLinkStatus(a, b, "down")
            time.sleep(period / 2)
            net.configLinkStatus(a, b, "up")
            time.sleep(period / 2)
            done["flaps"] += 1
    thread = threading.Thread(target=flap, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        thread.join(seconds + 30)


def unrelated_pair(net, link):
    """Two hosts on one switch that is not an end of ``link`` (traffic between them
    crosses nothing the link touches), or None."""
    ends = {link.intf1.node.name, link.intf2.node.name}
    by_switch: dict = {}
    for host in net.hosts:
        by_switch.setdefault(host_port(host)[0], []).append(host)
    return next((hosts[:2] for name, hosts in sorted(by_switch.items())
                 if name not in ends and len(hosts) >= 2), None)


def switch_link(net):
    """The first Mininet link between two switches."""
    switches = set(net.switches)
    return next(lk for lk in net.links if {lk.intf1.node, lk.intf2.node} <= switches)


def network_tables(net, protocols: str = "OpenFlow13") -> dict:
    """{switch name: table_contents}: the whole network's forwarding state."""
    return {sw.name: table_contents(sw.name, protocols) for sw in net.switches}


def cluster_leader(controllers, timeout: float = 10.0):
    """The controller of ``controllers`` that reports itself leader (GET /v1/cluster),
    waiting up to ``timeout``; one dying as it is asked is passed over.  None if none."""
    def find():
        for ctl in controllers:
            if not ctl.alive():
                continue
            try:
                status, body = ctl.request("/v1/cluster")
            except OSError:
                continue
            if status == 200 and isinstance(body, dict) and body.get("role") == "leader":
                return ctl
        return None
    return wait_until(find, timeout, 0.05)


def tables_diff(before: dict, after: dict) -> dict:
    """{switch: {"gone": [...], "new": [...]}} of the entries and groups that differ
    between two network_tables snapshots (for an assertion's message)."""
    out = {}
    for name in sorted(set(before) | set(after)):
        old = set(line for part in before.get(name, ()) for line in part)
        new = set(line for part in after.get(name, ()) for line in part)
        if old != new:
            out[name] = {"gone": sorted(old - new), "new": sorted(new - old)}
    return out


def wait_quiet(ctl: ControllerProcess, seconds: float = 1.5, timeout: float = 20.0) -> bool:
    """Wait until the controller has changed no switch for ``seconds``."""
    def still():
        events = ctl.get("/v1/events?limit=50")
        last = max((e["time"] for e in events if e["event"] == "reconciled"), default=0)
        return time.time() - last >= seconds
    return bool(wait_until(still, timeout, interval=0.2))


def port_packet_totals(net, protocols: str = "OpenFlow13") -> int:
    """Packets received plus sent on every switch port: grows without bound in a storm."""
    return sum(counts["rx_pkts"] + counts["tx_pkts"] for sw in net.switches
               for counts in port_bytes(sw.name, protocols).values())


def host_port(host) -> tuple[str, int]:
    """(switch name, port number) where a Mininet host is plugged in."""
    intf = host.intf()
    peer = intf.link.intf2 if intf.link.intf1 is intf else intf.link.intf1
    return peer.node.name, peer.node.ports[peer]


def switch_by_dpid(net, dpid: str):
    """The Mininet switch whose dpid is written (in hex) as the REST API writes it."""
    return next(sw for sw in net.switches if int(sw.dpid, 16) == int(dpid, 16))


REACHABILITY_PAIRS = 512  # ping rounds over larger networks take a sample this big


def wait_reachable(net, timeout: float) -> float | None:
    """Seconds until one ping round loses nothing, or None on timeout: all pairs, or
    REACHABILITY_PAIRS of them (the same random sample each round) on larger networks."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not ping_pairs(net, all_at_once=True, most=REACHABILITY_PAIRS)[1]:
            return time.monotonic() - start
    return None


def start_pinging(net, seconds: float, interval: float = 0.1):
    """Every host pings every other every ``interval`` s for ``seconds``, from now.
    Returns a function that waits for the end and gives {(src, dst) names: wall-clock
    time of the first answer, or None}.  Unlike ping rounds, this times each pair to
    within ``interval``, however long a round of all pings takes to start."""
    folder = Path(tempfile.mkdtemp(prefix="pings-"))
    procs = []
    for src in net.hosts:  # one shell per host starting its pings: popen is slow here
        script = " ".join("ping -D -n -i %g -w %d %s > %s &" % (
            interval, math.ceil(seconds), dst.IP(), folder / ("%s-%s" % (src.name, dst.name)))
            for dst in net.hosts if dst is not src)
        procs.append(src.popen(["sh", "-c", script + " wait"]))

    def first_answers() -> dict:
        for proc in procs:
            proc.wait()
        first: dict = {}
        for src in net.hosts:
            for dst in net.hosts:
                if dst is not src:
                    path = folder / ("%s-%s" % (src.name, dst.name))
                    stamps = [float(line[1:line.index("]")])
                              for line in path.read_text().splitlines()
                              if line.startswith("[") and "bytes from" in line]
                    first[(src.name, dst.name)] = min(stamps, default=None)
        shutil.rmtree(folder, ignore_errors=True)
        return first
    return first_answers


def iperf3(client, server, *, udp: bool, flows: int, seconds: float,
           mbps_per_flow: float = 0.0, port: int = 5201, packet_bytes: int = 1200,
           attempts: int = 3) -> dict:
    """One iperf3 run between two Mininet hosts, ``flows`` parallel streams (each its own
    source port); the server is started here and ends with the run.  Returns the Mbit/s
    the client offered (UDP) or got through (TCP), from the client's JSON.  Delivered
    traffic is best read from switch counters (iperf3's UDP loss figure under-counts
    queue drops; see scripts/bench_balance.py)."""
    cmd = ["iperf3", "-c", server.IP(), "-p", str(port), "-J", "-t", str(seconds),
           "-P", str(flows)]
    if udp:
        cmd += ["-u", "-l", str(packet_bytes), "-b", "%gM" % mbps_per_flow]
    for attempt in range(attempts):
        server_proc = server.popen(["iperf3", "-s", "-1", "-p", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client_proc = None
        try:
            time.sleep(0.5)
            client_proc = client.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            out, _ = client_proc.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            out = b'{"error": "client hung (no result %ds after its end)"}' % 30
        finally:
            for proc in (client_proc, server_proc):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                if proc is not None:
                    proc.wait()
        report = json.loads(out or b"{}")
        end = report.get("end", {})
        if "sum_sent" in end:
            if udp:
                return {"offered_mbps": end["sum_sent"]["bits_per_second"] / 1e6}
            return {"offered_mbps": end["sum_received"]["bits_per_second"] / 1e6}
        error = report.get("error", "no output")
        time.sleep(0.5 * (attempt + 1))
    raise RuntimeError("iperf3 %s -> %s failed: %s" % (client.name, server.name, error))


def port_bytes(bridge: str, protocols: str = "OpenFlow13") -> dict[int, dict[str, int]]:
    """{port: {"rx": bytes received, "tx": bytes sent, "rx_pkts": .., "tx_pkts": ..}} as
    the switch counts them (numbered ports; LOCAL is left out)."""
    result, port = {}, None
    for line in ovs_ofctl("dump-ports", bridge, protocols=protocols).splitlines():
        words = line.replace(",", " ").replace(":", " ").split()
        if words[:1] == ["port"]:
            port = int(words[1]) if words[1].isdigit() else None
            words = words[2:]
        if words[:1] in (["rx"], ["tx"]) and port is not None:
            fields = dict(w.split("=", 1) for w in words if "=" in w)
            counts = result.setdefault(port, {})
            counts[words[0]] = int(fields["bytes"])
            counts[words[0] + "_pkts"] = int(fields["pkts"])
    return result


def probe_run(src, dst, seconds: float, rate: float = 1000.0, event=None,
              event_at: float = 1.0, port: int = 9000) -> dict:
    """A probe stream (sdn_app.lab.probe) from ``src`` to ``dst``; ``event`` (e.g. a link
    cut) is called ``event_at`` seconds after the stream starts.  The receiver's JSON,
    plus ``event_time`` (epoch seconds) when there was an event."""
    count = int(rate * seconds)
    receiver = dst.popen([sys.executable, "-m", "sdn_app.lab.probe", "recv", "--port", str(port),
                          "--seconds", str(seconds + 1.5), "--sent", str(count)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    sender = None
    try:
        time.sleep(0.5)
        sender = src.popen([sys.executable, "-m", "sdn_app.lab.probe", "send", "--dst", dst.IP(),
                            "--port", str(port), "--rate", str(rate), "--seconds",
                            str(seconds)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=str(REPO))
        event_time = None
        if event is not None:
            time.sleep(event_at)
            event_time = time.time()
            event()
        sender.wait(timeout=seconds + 30)
        out, err = receiver.communicate(timeout=seconds + 30)
    finally:
        for proc in (sender, receiver):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    if not out:
        raise RuntimeError("probe receiver failed: %s" % err.decode(errors="replace"))
    result = json.loads(out)
    result["event_time"] = event_time
    return result


def after_cut(ctl: ControllerProcess, since_seq: int, cut_time: float,
              wait: float = 0.0) -> tuple:
    """(seconds from a cut until the controller heard of a port going down, seconds
    until it sent re-optimized paths), from its GET /v1/events after ``since_seq``;
    None where not seen.  The first is an upper bound on when OVS noticed the carrier
    loss, the moment FAST_FAILOVER groups switch, which is what loss windows on this
    emulation track.  ``wait``: keep asking that long for the re-optimization."""
    deadline = time.time() + wait
    while True:
        noticed = reoptimized = None
        with contextlib.suppress(Exception):  # a busy controller may not answer at once
            for event in ctl.get("/v1/events?since=%d" % since_seq):
                if event["time"] < cut_time:
                    continue
                if event["event"] == "port_down" and noticed is None:
                    noticed = event["time"] - cut_time
                if event["event"] == "reconciled" and reoptimized is None:
                    reoptimized = event["time"] - cut_time
        if reoptimized is not None or time.time() >= deadline:
            return noticed, reoptimized
        time.sleep(0.05)


@contextlib.contextmanager
def vr_load(src, dst, workdir: Path, streams: int = 2, scale: float = 0.2,
            port: int = 9100):
    """VR video streams (sdn_app.lab.vr) from ``src`` to ``dst`` while the block runs.
    Yields the (sent, received) log paths, whole once the block has exited."""
    workdir.mkdir(parents=True, exist_ok=True)
    sent, received = workdir / "vr-sent.bin", workdir / "vr-received.bin"
    command = [sys.executable, "-m", "sdn_app.lab.vr"]
    receiver = dst.popen(command + ["recv", "--port", str(port), "--kinds", "video",
                                    "--seconds", "86400", "--log", str(received)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(REPO))
    sender = None
    try:
        time.sleep(0.3)
        sender = src.popen(command + ["send", "--dst", dst.IP(), "--port", str(port),
                                      "--streams", str(streams), "--scale", str(scale),
                                      "--seconds", "86400", "--log", str(sent)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(REPO))
        yield sent, received
    finally:
        # The sender stops first, so what is still in flight reaches the receiver's log.
        for proc, linger in ((sender, 0.3), (receiver, 0.0)):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            time.sleep(linger)


@contextlib.contextmanager
def idle_interfaces(pairs: int, prefix: str = "idl"):
    """``pairs`` veth pairs, up and attached to nothing, in this network namespace while
    the block runs.  OVS's reaction to a port going down grows with the number of
    interfaces on the host (measured: scripts/bench_failover.py --idle-interfaces), so
    this gives a small topology the interface count of a big one."""
    made = []
    try:
        for i in range(pairs):
            a, b = "%s%da" % (prefix, i), "%s%db" % (prefix, i)
            subprocess.run(["ip", "link", "del", a], capture_output=True)  # a crash's
            subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b],
                           check=True, capture_output=True)
            made.append(a)
            for name in (a, b):
                subprocess.run(["ip", "link", "set", name, "up"], check=True,
                               capture_output=True)
        yield len(made) * 2
    finally:
        for name in made:
            subprocess.run(["ip", "link", "del", name], capture_output=True)


def host_interface_count() -> int:
    """Network interfaces in this (the switches') namespace."""
    return len(subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                              check=True).stdout.splitlines())
