"""The shipped Mininet topologies, loaded into the pure Topology model as the
controller would learn them, for unit tests."""

from sdn_app.emulation import make_topo
from sdn_app.topology import Port, Topology

T0 = 100.0  # a start time; settle times are counted from here
SETTLED = T0 + 10


def model_of(spec: str, learn_hosts: bool = True):
    """(Topology, {host name: mac}) for a topology spec such as ``fattree,4``."""
    mn = make_topo(spec)
    dpid = {sw: int(mn.nodeInfo(sw)["dpid"], 16) for sw in mn.switches()}
    ports = {sw: [] for sw in mn.switches()}
    wires = []
    for a, b, info in mn.links(withInfo=True):
        pa, pb = info["port1"], info["port2"]
        for node, port in ((a, pa), (b, pb)):
            if node in ports:
                ports[node].append(Port(port, name="%s-eth%d" % (node, port)))
        wires.append((a, pa, b, pb))
    topo = Topology(settle_time=1.0)
    for sw, plist in ports.items():
        topo.switch_connected(dpid[sw], plist, T0)
    macs = {}
    for a, pa, b, pb in wires:
        if a in dpid and b in dpid:
            topo.link_seen(dpid[a], pa, dpid[b], pb, T0)
            topo.link_seen(dpid[b], pb, dpid[a], pa, T0)
        else:
            host, sw, port = (a, b, pb) if b in dpid else (b, a, pa)
            info = mn.nodeInfo(host)
            macs[host] = info["mac"]
            if learn_hosts:
                topo.learn_host(info["mac"], dpid[sw], port, SETTLED, info["ip"].split("/")[0])
    return topo, macs


SHIPPED = ["diamond", "ring,3", "ring,6", "leafspine,2,3,2", "leafspine,4,4,1", "fattree,4"]
