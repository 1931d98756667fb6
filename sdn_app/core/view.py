"""The read-only view of a running controller that its clients read (REST today; metrics
and a web page next), in JSON-ready form, and the one command they may give.

A client gets a ``NetworkView`` and nothing else: what it may read is exactly what
``ControllerState`` lists, so the controller's internals can change without breaking
a client, and a client cannot change them by accident.  Unknown names raise
TopologyError (HTTP 404), malformed arguments ValueError (HTTP 400).
"""

from __future__ import annotations

from typing import Protocol

import networkx as nx

from .events import EventLog
from .meters import PORT_COUNTERS
from .pipeline import FAST_FAILOVER, SELECT, GroupEntry
from .scaling import parse_scaling
from .services import (
    DRAINING,
    Conflict,
    ServiceTable,
    check_standby,
    parse_backend,
    parse_service,
)
from .te import POLICIES
from .telemetry import Telemetry
from .topology import Host, Link, Topology, dpid_to_str
from .trace import path_report


class ControllerState(Protocol):
    """What the view reads of the controller."""

    topo: Topology
    plan: dict  # the plan in force: {dpid: {key: FlowEntry | GroupEntry}}
    policy: str
    path_stretch: int
    last_reconcile: dict  # timings and message counts of the last recomputation
    last_change: dict  # ... of the last one that changed any switch
    reconciling: bool  # a recomputation or a send to the switches under way or due
    event_log: EventLog
    services: ServiceTable
    connections: dict  # backend id -> active connections the switches hold
    packet_ins: int  # packet-ins received since start (every kind)
    mods_sent: dict  # flow mods and group mods sent since start (every reason)
    mods_sent_to: dict  # ... per switch: {(dpid, "flow_mods" | "group_mods"): n}
    telemetry: Telemetry  # the controller's own counts (core/telemetry.py)
    admission: object  # with admission control on, what describes it (describe(now)); else None

    def rate_toward(self, ip: str) -> float:
        """Bits/s measured entering the network toward a host (0 if unknown)."""

    def now(self) -> float:
        """The controller's clock (monotonic seconds), for the ages of what it recorded."""

    def services_changed(self, kind: str, **details) -> None:
        """A service, backend, weight or state was changed by a client: record the
        event and rebuild the services' entries."""

    def port_rate(self, dpid: int, port_no: int, counter: str) -> float:
        """Per-second rate of one of PORT_COUNTERS (0 until two samples were seen)."""

    def port_totals(self, dpid: int) -> dict:
        """{port_no: {counter: value}} of PORT_TOTALS as the switch last reported them
        (ports not polled yet absent)."""

    def check_writable(self) -> None:
        """Raise unless a change may be made here (core/cluster.NotLeader on a follower,
        StoreUnavailable on a leader that could not record it)."""

    def cluster_status(self) -> dict:
        """This node in its cluster (core/cluster.Election.describe), or standalone."""

    def demand(self) -> dict:
        """{(ingress switch, destination switch): bits/s} as last measured."""

    def set_policy(self, policy: str) -> None:
        """Change the traffic-engineering policy (ValueError if unknown)."""

    def switch_forgotten(self, dpid: int, why: str) -> None:
        """A switch was removed from the model: record the event and recompute."""

    def port_reset(self, dpid: int, port_no: int) -> None:
        """A port's classification was reset (Topology.reset_port): record the event,
        recompute and probe the port."""


class NetworkView:
    def __init__(self, state: ControllerState):
        self._state = state

    def topology(self, fmt: str = "default") -> dict:
        if fmt == "node-link":
            return nx.node_link_data(export_graph(self._state.topo))
        if fmt != "default":
            raise ValueError("format must be 'default' or 'node-link', got %r" % fmt)
        return topology_dict(self._state.topo)

    def switches(self) -> list[dict]:
        return switches_dicts(self._state.topo)

    def switch(self, dpid: int) -> dict:
        return switch_dict(self._state.topo, dpid)

    def forget_switch(self, dpid: int) -> dict:
        """Remove a disconnected switch with its links and hosts now (Conflict if it is
        connected: it would only be learned again); what it was."""
        topo = self._state.topo
        gone = switch_dict(topo, dpid)
        if topo.switch(dpid).connected:
            raise Conflict("switch %s is connected; only a disconnected one can be "
                           "forgotten" % dpid_to_str(dpid))
        topo.remove_switch(dpid)
        self._state.switch_forgotten(dpid, "asked over REST")
        return gone

    def reset_port(self, dpid: int, port_no: int) -> dict:
        """Forget what a port was found to be (Topology.reset_port): the way to recable
        a port whose carrier never dropped; the port as it is now."""
        topo = self._state.topo
        topo.reset_port(dpid, port_no)
        self._state.port_reset(dpid, port_no)
        return next(p for p in switch_dict(topo, dpid)["ports"] if p["port_no"] == port_no)

    def hosts(self) -> list[dict]:
        return hosts_dicts(self._state.topo)

    def host(self, key: str) -> dict:
        return host_dict(self._state.topo.find_host(key))

    def links(self) -> list[dict]:
        return links_dicts(self._state.topo)

    def paths(self, src: str, dst: str) -> dict:
        return path_report(self._state.plan, self._state.topo, src, dst)

    def admission(self) -> dict:
        """Admission control: its limits, streams admitted and refused, reservations and
        the latest refusals (core/admission.py); {"enabled": false} when it is off."""
        if self._state.admission is None:
            return {"enabled": False}
        return self._state.admission.describe(self._state.now())

    def demand(self) -> list[dict]:
        """The traffic matrix adaptive balances: bits/s entering at each switch toward
        each destination switch, largest first (only what was measured above zero)."""
        rows = [{"src": dpid_to_str(src), "dst": dpid_to_str(dst), "bps": round(bps, 1)}
                for (src, dst), bps in self._state.demand().items() if bps > 0]
        return sorted(rows, key=lambda row: (-row["bps"], row["src"], row["dst"]))

    def policy(self) -> dict:
        state = self._state
        kinds = [item.kind for entries in state.plan.values() for item in entries.values()
                 if isinstance(item, GroupEntry)]
        return {"policy": state.policy, "policies": list(POLICIES),
                "path_stretch": state.path_stretch,
                "select_groups": kinds.count(SELECT),
                "failover_groups": kinds.count(FAST_FAILOVER),
                "last_reconcile": state.last_reconcile,
                "last_change": state.last_change, "reconciling": state.reconciling,
                "packet_ins": state.packet_ins, "mods_sent": dict(state.mods_sent)}

    def set_policy(self, policy: str) -> dict:
        self._state.set_policy(policy)
        return self.policy()

    # -- services (the commands besides set_policy) ----------------------------------------

    def services(self) -> list[dict]:
        table = self._state.services
        return [self.service(name) for name in sorted(table.services)]

    def service(self, name: str) -> dict:
        state = self._state
        return state.services.describe(state.services.get(name), state.connections,
                                       state.rate_toward, state.requests_of)

    def add_service(self, body) -> dict:
        state = self._state
        spec = parse_service(body)
        state.services.add(spec, [ip for h in state.topo.hosts.values() for ip in h.ips])
        state.services_changed("service_added", service=spec.name)
        return self.service(spec.name)

    def remove_service(self, name: str) -> dict:
        gone = self.service(name)
        self._state.services.remove(name)
        self._state.services_changed("service_removed", service=name)
        return gone

    def add_backend(self, name: str, body) -> dict:
        service = self._state.services.get(name)
        backend = parse_backend(body, "backend", service.spec.port)
        self._state.services.add_backend(name, backend)
        self._state.services_changed("backend_added", service=name, ip=backend.ip)
        return self.service(name)

    def update_backend(self, name: str, ip: str, body) -> dict:
        """``{"weight": n}`` and/or ``{"state": "draining" | "active"}``."""
        service = self._state.services.get(name)
        service.backend(ip)  # NotFound (404) before the body is judged
        if not isinstance(body, dict) or not body or set(body) - {"weight", "state"}:
            raise ValueError('body must be {"weight": n} and/or {"state": "draining" or '
                             '"active"}')
        if "weight" in body:
            parse_backend({"ip": ip, "weight": body["weight"]}, "backend", service.spec.port)
        if "state" in body and body["state"] not in (DRAINING, "active"):
            raise ValueError('state: must be "draining" or "active", got %r' % body["state"])
        if "weight" in body:
            service.set_weight(ip, body["weight"])
        if "state" in body:
            service.set_draining(ip, body["state"] == DRAINING)
        self._state.services_changed("backend_changed", service=name, ip=ip, **body)
        return self.service(name)

    def scaling(self, name: str) -> dict:
        """The pool's scaling: policy, current and desired size, the measured series
        and the forecast of the last minutes, the last decisions with their reasons."""
        service = self._state.services.get(name)
        return service.scaler.describe(self._state.now(), len(service.serving()))

    def set_scaling(self, name: str, body) -> dict:
        """Change some or all of the scaling policy (the fields given)."""
        service = self._state.services.get(name)
        scaling = parse_scaling(body, "scaling", parse_backend, service.spec.port,
                                service.spec.scaling)
        check_standby(scaling, service.spec.vip, service.backends, "scaling")
        service.set_scaling(scaling)
        self._state.services_changed("scaling_changed", service=name,
                                     policy=scaling.policy)
        return self.scaling(name)

    def remove_backend(self, name: str, ip: str) -> dict:
        self._state.services.get(name).remove_backend(ip)
        self._state.services_changed("backend_removed", service=name, ip=ip)
        return self.service(name)

    def port_stats(self, dpid: int) -> list[dict]:
        """Per-port rates (bits/s, packets/s, drops/s) and capacity of one switch."""
        topo = self._state.topo
        rows = []
        for port_no in sorted(topo.switch(dpid).ports):
            row = {"port_no": port_no, "capacity_bps": topo.capacity(dpid, port_no)}
            for name in PORT_COUNTERS:
                rate = self._state.port_rate(dpid, port_no, name)
                if name.endswith("_bytes"):
                    row[name.replace("_bytes", "_bps")] = round(8 * rate, 1)
                else:
                    row[name.replace("_packets", "_pps").replace("_dropped", "_drops")] = round(
                        rate, 1)
            rows.append(row)
        return rows

    def events(self, since: int = 0, limit: int = 1000) -> list[dict]:
        return self._state.event_log.since(since, limit)

    def cluster(self) -> dict:
        return self._state.cluster_status()

    def check_writable(self) -> None:
        self._state.check_writable()

    # -- what the metrics read besides the above (ryuapp/metrics.py) ---------------------

    def event_counts(self) -> dict:
        """{event kind: events recorded since start}."""
        return dict(self._state.event_log.counts)

    def telemetry(self) -> Telemetry:
        return self._state.telemetry

    def mods_sent_to(self) -> dict:
        return dict(self._state.mods_sent_to)

    def port_totals(self, dpid: int) -> dict:
        return self._state.port_totals(dpid)

    def table_sizes(self) -> dict:
        """{dpid: (flow entries, SELECT groups, FAST_FAILOVER groups)} of the plan in
        force."""
        sizes = {}
        for dpid, entries in self._state.plan.items():
            kinds = [item.kind for item in entries.values() if isinstance(item, GroupEntry)]
            sizes[dpid] = (len(entries) - len(kinds), kinds.count(SELECT),
                           kinds.count(FAST_FAILOVER))
        return sizes


# -- JSON forms of the model ----------------------------------------------------------------

def topology_dict(topo: Topology) -> dict:
    return {"switches": switches_dicts(topo), "links": links_dicts(topo),
            "hosts": hosts_dicts(topo)}


def switches_dicts(topo: Topology) -> list[dict]:
    return [switch_dict(topo, d) for d in sorted(topo.graph)]


def hosts_dicts(topo: Topology) -> list[dict]:
    return [host_dict(h) for h in sorted(topo.hosts.values(), key=lambda h: h.mac)]


def links_dicts(topo: Topology) -> list[dict]:
    """Every directed link, up or down, with capacity, measured rate and utilization."""
    rows = [(lk, "up") for lk in topo.links()]
    rows += [(lk, "down") for lk in topo.down_links.values()]
    return [link_dict(topo, lk, state)
            for lk, state in sorted(rows, key=lambda r: _link_order(r[0]))]


def link_dict(topo: Topology, link: Link, state: str) -> dict:
    capacity = topo.capacity(link.src, link.src_port) if link.src in topo.graph else 0.0
    rate = link.rate_bps if state == "up" else 0.0
    return {"src": {"dpid": dpid_to_str(link.src), "port_no": link.src_port},
            "dst": {"dpid": dpid_to_str(link.dst), "port_no": link.dst_port},
            "state": state, "capacity_bps": capacity, "rate_bps": round(rate, 1),
            "utilization": round(rate / capacity, 4) if capacity else 0.0}


def switch_dict(topo: Topology, dpid: int) -> dict:
    switch = topo.switch(dpid)
    return {
        "dpid": dpid_to_str(dpid),
        "connected": switch.connected,
        "ports": [{"port_no": p.port_no, "name": p.name, "hw_addr": p.hw_addr,
                   "live": p.live, "speed_bps": p.speed_bps,
                   "role": "link" if topo.is_link_port(dpid, p.port_no) else "edge",
                   "carried_hosts": (dpid, p.port_no) in topo.host_ports}
                  for p in sorted(switch.ports.values(), key=lambda p: p.port_no)],
    }


def host_dict(host: Host) -> dict:
    return {"mac": host.mac, "ipv4": list(host.ips),
            "dpid": dpid_to_str(host.dpid), "port_no": host.port,
            "last_seen": round(host.last_seen, 3)}


def export_graph(topo: Topology) -> nx.MultiDiGraph:
    """Switches, hosts and every directed edge between them, with plain JSON-friendly
    attributes: what ``GET /v1/topology?format=node-link`` serves."""
    out = nx.MultiDiGraph()
    for dpid in topo.graph:
        out.add_node(dpid_to_str(dpid), kind="switch", connected=topo.switch(dpid).connected)
    for lk in topo.links():
        out.add_edge(dpid_to_str(lk.src), dpid_to_str(lk.dst), key=lk.src_port,
                     kind="link", src_port=lk.src_port, dst_port=lk.dst_port,
                     capacity_bps=topo.capacity(lk.src, lk.src_port),
                     rate_bps=round(lk.rate_bps, 1))
    for host in topo.hosts.values():
        sw = dpid_to_str(host.dpid)
        out.add_node(host.mac, kind="host", ips=list(host.ips))
        out.add_edge(host.mac, sw, key=0, kind="access", dst_port=host.port)
        out.add_edge(sw, host.mac, key=host.port, kind="access", src_port=host.port)
    return out


def _link_order(link: Link):
    return (link.src, link.src_port, link.dst, link.dst_port)
