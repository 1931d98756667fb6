"""The shipped topologies (topologies/topos.py), loaded into the pure Topology model as
the controller would learn them, for unit tests.

No Mininet here: topos.py is loaded against ``SpecTopo``, a stand-in for Mininet's
``Topo`` that records switches, hosts and links and numbers ports the way Mininet does
(switch ports from 1, host ports from 0, in the order links are added), so the pure
suite runs where Mininet is not installed.
"""

import importlib.util
import sys
import types
from pathlib import Path

from sdn_app.core.topology import Port, Topology

TOPOLOGY_FILE = Path(__file__).resolve().parents[1] / "topologies" / "topos.py"
T0 = 100.0  # a start time; settle times are counted from here
SETTLED = T0 + 10


class SpecTopo:
    """What topos.py uses of mininet.topo.Topo."""

    def __init__(self, *args, **params):
        self.nodes, self.wires, self.ports = {}, [], {}
        self.build(*args, **params)

    def addSwitch(self, name, **info):  # noqa: N802 - Mininet's name
        self.nodes[name] = dict(info, switch=True)
        return name

    def addHost(self, name, **info):  # noqa: N802 - Mininet's name
        self.nodes[name] = dict(info, switch=False)
        return name

    def addLink(self, a, b, **info):  # noqa: N802 - Mininet's name
        pa, pb = self._next_port(a), self._next_port(b)
        self.wires.append((a, pa, b, pb, info))

    def _next_port(self, node):
        taken = self.ports.setdefault(node, 0)
        self.ports[node] = taken + 1
        return taken + (1 if self.nodes[node]["switch"] else 0)


def _load_topos() -> dict:
    stub = types.ModuleType("mininet.topo")
    stub.Topo = SpecTopo
    saved = {name: sys.modules.get(name) for name in ("mininet", "mininet.topo")}
    sys.modules["mininet"] = types.ModuleType("mininet")
    sys.modules["mininet.topo"] = stub
    try:
        spec = importlib.util.spec_from_file_location("shipped_topos", TOPOLOGY_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, module_before in saved.items():
            if module_before is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module_before
    return module.topos


TOPOS = _load_topos()


def _number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def spec_topo(spec: str) -> SpecTopo:
    """A topology from an ``mn --topo`` style spec, e.g. ``fattree,4``."""
    name, *params = spec.split(",")
    args = [_number(p) for p in params if "=" not in p]
    kwargs = {k: _number(v) for k, v in (p.split("=", 1) for p in params if "=" in p)}
    return TOPOS[name](*args, **kwargs)


def model_of(spec: str, learn_hosts: bool = True):
    """(Topology, {host name: mac}) for a topology spec such as ``fattree,4``."""
    mn = spec_topo(spec)
    dpid = {name: int(info["dpid"], 16) for name, info in mn.nodes.items() if info["switch"]}
    ports = {sw: [] for sw in dpid}
    for a, pa, b, pb, _info in mn.wires:
        for node, port in ((a, pa), (b, pb)):
            if node in ports:
                ports[node].append(Port(port, name="%s-eth%d" % (node, port)))
    topo = Topology(settle_time=1.0)
    for sw, plist in ports.items():
        topo.switch_connected(dpid[sw], plist, T0)
    macs = {}
    for a, pa, b, pb, _info in mn.wires:
        if a in dpid and b in dpid:
            topo.link_seen(dpid[a], pa, dpid[b], pb, T0)
            topo.link_seen(dpid[b], pb, dpid[a], pa, T0)
        else:
            host, sw, port = (a, b, pb) if b in dpid else (b, a, pa)
            info = mn.nodes[host]
            macs[host] = info["mac"]
            if learn_hosts:
                topo.learn_host(info["mac"], dpid[sw], port, SETTLED, info["ip"].split("/")[0])
    return topo, macs


SHIPPED = ["diamond", "ring,3", "ring,6", "leafspine,2,3,2", "leafspine,4,4,1", "fattree,4"]
