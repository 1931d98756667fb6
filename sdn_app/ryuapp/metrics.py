"""Prometheus metrics: the running controller's view (core/view.NetworkView) as metric
families, built at each scrape by prometheus_client and served on their own port
(settings prometheus_port, prometheus_host).

Nothing is kept here: every scrape reads the model, the counters the switches last
reported and the controller's own counts (core/telemetry.py) as they are then, so no
gauge can drift from what REST shows.

Names follow Prometheus's rules: base units (bytes, seconds, ratios), ``_total`` on
counters, ``_info`` for metadata, and labels bounded by the network's size (switches,
ports, links, services, backends), never by flows or users.  Where Faucet exports the
same thing, the name is Faucet's (``dp_status``, ``port_status``, ``of_packet_ins``,
``of_flowmsgs_sent``, ``of_errors``, ``of_port_rx_bytes``...), though as counters with
``_total`` where Faucet's Gauge exports cumulative counters as gauges.  Everything else
is ``sdn_``.  Labels: ``dpid`` is the 16-hex-digit datapath id that REST uses.
"""

from __future__ import annotations

import logging

import eventlet
import eventlet.wsgi
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)

from ..core.meters import PORT_TOTALS
from ..core.services import DOWN, DRAINING, UP
from ..core.topology import dpid_to_str

LOG = logging.getLogger(__name__)
PORT_LABELS = ("dpid", "port", "port_name")
LINK_LABELS = ("src", "src_port", "dst", "dst_port")
BACKEND_LABELS = ("service", "backend")
BACKEND_STATES = (UP, DOWN, DRAINING)


class NetworkCollector:
    """A prometheus_client collector over a NetworkView.  A part that fails is logged
    and left out of that scrape; the rest is still served."""

    def __init__(self, view):
        self.view = view

    def describe(self):
        return []  # no scrape at registration: the families depend on the network

    def collect(self):
        for part in (switch_families, port_families, link_families, controller_families,
                     service_families, cluster_families, admission_families):
            try:
                families = list(part(self.view))
            except Exception:  # a metrics bug must not cost the scrape, nor the controller
                LOG.exception("metrics: %s failed", part.__name__)
                continue
            yield from families


def registry_for(view) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NetworkCollector(view))
    return registry


def serve(view, host: str, port: int, spawn):
    """Listen on host:port and serve the metrics in a green thread started by ``spawn``;
    None (logged) if the port cannot be bound: the controller runs on without them."""
    try:
        sock = eventlet.listen((host, port))
    except OSError as exc:
        LOG.error("metrics not served: cannot listen on %s:%d (%s)", host, port, exc)
        return None
    LOG.info("Prometheus metrics on http://%s:%d/metrics", host, port)
    app = make_wsgi_app(registry_for(view))
    return spawn(eventlet.wsgi.server, sock, app, log_output=False)


# -- families -------------------------------------------------------------------------------

def switch_families(view):
    switches = view.switches()
    status = GaugeMetricFamily("dp_status", "1 while the switch is connected, else 0",
                               labels=["dpid"])
    hosts = GaugeMetricFamily("sdn_hosts_learned", "Hosts learned at the switch's ports",
                              labels=["dpid"])
    flows = GaugeMetricFamily("sdn_flow_entries", "Flow entries in the plan for the switch",
                              labels=["dpid"])
    groups = GaugeMetricFamily("sdn_groups", "Groups in the plan for the switch, by type",
                               labels=["dpid", "type"])
    learned = {}
    for host in view.hosts():
        learned[host["dpid"]] = learned.get(host["dpid"], 0) + 1
    sizes = {dpid_to_str(d): size for d, size in view.table_sizes().items()}
    for switch in switches:
        dpid = switch["dpid"]
        status.add_metric([dpid], 1 if switch["connected"] else 0)
        hosts.add_metric([dpid], learned.get(dpid, 0))
        n_flows, n_select, n_failover = sizes.get(dpid, (0, 0, 0))
        flows.add_metric([dpid], n_flows)
        groups.add_metric([dpid, "select"], n_select)
        groups.add_metric([dpid, "fast_failover"], n_failover)
    telemetry = view.telemetry()
    connects = CounterMetricFamily("of_dp_connections", "Times the switch connected",
                                   labels=["dpid"])
    for dpid, n in sorted(telemetry.connections.items()):
        connects.add_metric([dpid_to_str(dpid)], n)
    disconnects = CounterMetricFamily("of_dp_disconnections",
                                      "Times the switch's connection was lost",
                                      labels=["dpid"])
    for dpid, n in sorted(telemetry.disconnections.items()):
        disconnects.add_metric([dpid_to_str(dpid)], n)
    return [status, hosts, flows, groups, connects, disconnects]


def port_families(view):
    status = GaugeMetricFamily("port_status", "1 while the port is live (carrier up), else 0",
                               labels=list(PORT_LABELS))
    counters = {name: CounterMetricFamily(
        "of_port_" + name, "The port's %s counter as the switch last reported it"
        % name.replace("_", " "), labels=list(PORT_LABELS)) for name in PORT_TOTALS}
    for switch in view.switches():
        dpid = switch["dpid"]
        totals = view.port_totals(int(dpid, 16))
        for port in switch["ports"]:
            labels = [dpid, str(port["port_no"]), port["name"]]
            status.add_metric(labels, 1 if port["live"] else 0)
            for name, value in sorted(totals.get(port["port_no"], {}).items()):
                if name in counters:
                    counters[name].add_metric(labels, value)
    return [status, *counters.values()]


def link_families(view):
    up = GaugeMetricFamily("sdn_link_up", "1 while the directed link is up, 0 while down "
                           "(cut or silent)", labels=list(LINK_LABELS))
    capacity = GaugeMetricFamily("sdn_link_capacity_bytes_per_second",
                                 "The link's capacity in its direction",
                                 labels=list(LINK_LABELS))
    load = GaugeMetricFamily("sdn_link_load_bytes_per_second",
                             "Traffic measured on the link in its direction (smoothed, "
                             "from port counters)", labels=list(LINK_LABELS))
    utilization = GaugeMetricFamily("sdn_link_utilization_ratio",
                                    "Load over capacity in the link's direction",
                                    labels=list(LINK_LABELS))
    for link in view.links():
        labels = [link["src"]["dpid"], str(link["src"]["port_no"]),
                  link["dst"]["dpid"], str(link["dst"]["port_no"])]
        up.add_metric(labels, 1 if link["state"] == "up" else 0)
        capacity.add_metric(labels, link["capacity_bps"] / 8)
        load.add_metric(labels, link["rate_bps"] / 8)
        utilization.add_metric(labels, link["utilization"])
    return [up, capacity, load, utilization]


def controller_families(view):
    telemetry = view.telemetry()
    packet_ins = CounterMetricFamily("of_packet_ins", "Packet-ins received, by frame kind",
                                     labels=["dpid", "kind"])
    for (dpid, kind), n in sorted(telemetry.packet_ins.items()):
        packet_ins.add_metric([dpid_to_str(dpid), kind], n)
    dropped = CounterMetricFamily("of_packet_ins_dropped",
                                  "Frames a packet-in meter dropped on their way to the "
                                  "controller: a port's (port label: its number) or the "
                                  "switch's (port \"\")", labels=["dpid", "port"])
    for (dpid, port_no), n in sorted(telemetry.packet_ins_dropped.items(),
                                     key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        dropped.add_metric([dpid_to_str(dpid), "" if port_no is None else str(port_no)], n)
    flow_mods = CounterMetricFamily("of_flowmsgs_sent", "Flow mods sent to the switch",
                                    labels=["dpid"])
    group_mods = CounterMetricFamily("of_groupmsgs_sent", "Group mods sent to the switch",
                                     labels=["dpid"])
    for (dpid, kind), n in sorted(view.mods_sent_to().items()):
        (flow_mods if kind == "flow_mods" else group_mods).add_metric([dpid_to_str(dpid)], n)
    errors = CounterMetricFamily("of_errors", "OpenFlow errors the switch reported, by type",
                                 labels=["dpid", "type"])
    for (dpid, kind), n in sorted(telemetry.errors.items()):
        errors.add_metric([dpid_to_str(dpid), kind], n)
    histogram = telemetry.recompute_seconds
    duration = HistogramMetricFamily(
        "sdn_recompute_duration_seconds", "Time of each recomputation, from the change to "
        "the last message sent")
    duration.add_metric([], [(_le(bound), n) for bound, n in histogram.cumulative()],
                        histogram.total)
    recomputes = CounterMetricFamily("sdn_recomputes", "Recomputations, by the kind of "
                                     "event they answered (periodic: none)",
                                     labels=["cause"])
    for cause, n in sorted(telemetry.recomputes.items()):
        recomputes.add_metric([cause], n)
    events = CounterMetricFamily("sdn_events", "Events recorded (GET /v1/events), by kind",
                                 labels=["kind"])
    for kind, n in sorted(view.event_counts().items()):
        events.add_metric([kind], n)
    policy = view.policy()
    info = InfoMetricFamily("sdn_policy", "The traffic-engineering policy in force")
    info.add_metric([], {"policy": policy["policy"],
                         "path_stretch": str(policy["path_stretch"])})
    return [packet_ins, dropped, flow_mods, group_mods, errors, duration, recomputes,
            events, info]


def service_families(view):
    state = GaugeMetricFamily("sdn_service_backend_state",
                              "1 for the backend's health state, 0 for the others",
                              labels=[*BACKEND_LABELS, "state"])
    up = GaugeMetricFamily("sdn_service_backend_up", "1 while the backend takes connections "
                           "(up), else 0", labels=list(BACKEND_LABELS))
    active = GaugeMetricFamily("sdn_service_backend_active_connections",
                               "Connections the switches hold open to the backend",
                               labels=list(BACKEND_LABELS))
    load = GaugeMetricFamily("sdn_service_backend_load_bytes_per_second",
                             "Traffic measured toward the backend",
                             labels=list(BACKEND_LABELS))
    weight = GaugeMetricFamily("sdn_service_backend_weight",
                               "The share of new connections the backend is given (its "
                               "weight, ramped and adapted)", labels=list(BACKEND_LABELS))
    requests = GaugeMetricFamily("sdn_service_new_connections_per_second",
                                 "New connections to the service per second",
                                 labels=["service"])
    placements = CounterMetricFamily("sdn_service_placements",
                                     "Connections the controller placed (least_conn)",
                                     labels=["service"])
    pool = GaugeMetricFamily("sdn_pool_size", "Backends serving", labels=["service"])
    desired = GaugeMetricFamily("sdn_pool_desired_size", "Backends the scaling policy "
                                "last asked for", labels=["service"])
    pool_load = GaugeMetricFamily("sdn_pool_load", "The scaling metric as last measured",
                                  labels=["service"])
    forecast = GaugeMetricFamily("sdn_pool_forecast", "The scaling metric's forecast peak "
                                 "over the start-up horizon", labels=["service"])
    for service in view.services():
        name = service["name"]
        requests.add_metric([name], service["requests_per_s"])
        placements.add_metric([name], service["controller_placements"])
        for backend in service["backends"]:
            labels = [name, backend["ip"]]
            for each in BACKEND_STATES:
                state.add_metric([*labels, each], 1 if backend["state"] == each else 0)
            up.add_metric(labels, 1 if backend["state"] == UP else 0)
            active.add_metric(labels, backend["active_connections"])
            load.add_metric(labels, backend["rate_bps"] / 8)
            weight.add_metric(labels, backend["effective_weight"])
        scaling = view.scaling(name)
        if scaling["policy"]["policy"] == "off":
            continue
        decisions = scaling["decisions"]
        pool.add_metric([name], scaling["current"])
        desired.add_metric([name], decisions[-1]["size"] if decisions else scaling["current"])
        if scaling["load"] is not None:
            pool_load.add_metric([name], scaling["load"])
        forecast.add_metric([name], scaling["forecast"])
    return [state, up, active, load, weight, requests, placements, pool, desired, pool_load,
            forecast]


def cluster_families(view):
    """This node in its controller cluster (nothing when it runs alone)."""
    status = view.cluster()
    if status.get("role") == "standalone":
        return []
    leader = GaugeMetricFamily("sdn_cluster_leader", "1 while this controller leads")
    leader.add_metric([], 1 if status["role"] == "leader" else 0)
    info = InfoMetricFamily("sdn_cluster", "This controller's cluster identity")
    info.add_metric([], {"node_id": str(status["node_id"]), "role": str(status["role"]),
                         "leader": str(status["leader"] or "")})
    generation = GaugeMetricFamily("sdn_cluster_generation",
                                   "The leader's generation (OpenFlow role generation_id)")
    if status["generation"] is not None:
        generation.add_metric([], status["generation"])
    store = GaugeMetricFamily("sdn_cluster_store_reachable",
                              "1 while the cluster store (etcd) answers")
    store.add_metric([], 1 if status["store_reachable"] else 0)
    members = GaugeMetricFamily("sdn_cluster_members", "Members with a live record in the store")
    members.add_metric([], len(status["members"]))
    return [leader, info, generation, store, members]


def admission_families(view):
    """Streams admission control admitted and refused (nothing when it is off)."""
    status = view.admission()
    if not status.get("enabled"):
        return []
    streams = CounterMetricFamily("sdn_admission_streams",
                                  "New streams judged by admission control, by verdict",
                                  labels=["verdict"])
    streams.add_metric(["admitted"], status["admitted"])
    streams.add_metric(["refused"], status["refused"])
    return [streams]


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
