"""Prometheus metrics (ryuapp/metrics.py) of a model with no switches attached, read back
through prometheus_client's own exposition parser: what a scrape would get."""

import logging
import socket

import pytest
from fake_controller import FakeApp
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from shipped_topologies import model_of

from sdn_app.core.admission import Admission
from sdn_app.core.services import ServiceTable, parse_service
from sdn_app.core.telemetry import Histogram
from sdn_app.core.topology import Port
from sdn_app.core.view import NetworkView
from sdn_app.ryuapp import metrics

LEAF = 0x20101  # leafspine,2,2,2's first leaf: hosts on ports 1 and 2, spines on 3 and 4


def scrape(app) -> dict:
    """{sample name: {labels as a sorted tuple: value}} of one scrape."""
    text = generate_latest(metrics.registry_for(NetworkView(app))).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            out.setdefault(sample.name, {})[key] = sample.value
    return out


def one(samples: dict, **labels) -> float:
    [value] = [v for key, v in samples.items() if set(labels.items()) <= set(key)]
    return value


@pytest.fixture
def app():
    topo, _ = model_of("leafspine,2,2,2")
    return FakeApp(topo)


def test_switches_ports_and_links_are_series_with_bounded_labels(app):
    app.totals = {LEAF: {3: {"rx_bytes": 1000, "tx_bytes": 2000, "rx_packets": 10,
                             "tx_packets": 20, "rx_dropped": 0, "tx_dropped": 1,
                             "rx_errors": 0, "tx_errors": 3}}}
    got = scrape(app)
    assert len(got["dp_status"]) == 4 and set(got["dp_status"].values()) == {1}
    assert len(got["port_status"]) == 2 * 2 + 2 * 4  # spines, leaves
    labels = {"dpid": "%016x" % LEAF, "port": "3"}
    assert one(got["of_port_tx_bytes_total"], **labels) == 2000
    assert one(got["of_port_tx_errors_total"], **labels) == 3
    assert len(got["of_port_rx_bytes_total"]) == 1, "only the ports the switch reported"
    assert len(got["sdn_link_up"]) == 8 and set(got["sdn_link_up"].values()) == {1}
    assert sum(got["sdn_hosts_learned"].values()) == 4
    assert sum(got["sdn_flow_entries"].values()) == sum(
        len(entries) for entries in app.plan.values()) - sum(got["sdn_groups"].values())
    for name, series in got.items():  # nothing per host, flow or user
        for key in series:
            assert {k for k, _ in key} <= {"dpid", "port", "port_name", "src", "src_port",
                                           "dst", "dst_port", "kind", "type", "cause",
                                           "policy", "path_stretch", "service", "backend",
                                           "state", "le"}, (name, key)


def test_a_cut_link_reads_zero_both_ways_and_its_port_down(app):
    app.topo.port_changed(LEAF, Port(3, live=False), 1000)
    got = scrape(app)
    down = [dict(key) for key, value in got["sdn_link_up"].items() if value == 0]
    leaf_port = ("%016x" % LEAF, "3")
    assert len(down) == 2
    assert leaf_port in {(d["src"], d["src_port"]) for d in down}
    assert leaf_port in {(d["dst"], d["dst_port"]) for d in down}
    assert one(got["port_status"], dpid="%016x" % LEAF, port="3") == 0


def test_the_controllers_own_counts(app):
    tele = app.telemetry
    tele.packet_ins[LEAF, "arp"] += 3
    tele.packet_ins[LEAF, "lldp"] += 5
    tele.errors[LEAF, "bad_match"] += 1
    tele.packet_ins_dropped[LEAF, None] += 40
    tele.packet_ins_dropped[LEAF, 3] += 7
    tele.connections[LEAF] += 2
    tele.disconnections[LEAF] += 1
    tele.recomputed(0.003, ["port_down", "port_down", "link_silent"])
    tele.recomputed(0.2, [])
    app.mods_sent_to.update({(LEAF, "flow_mods"): 12, (LEAF, "group_mods"): 4})
    app.event_log.record("link_refused")
    got = scrape(app)
    dpid = "%016x" % LEAF
    assert one(got["of_packet_ins_total"], dpid=dpid, kind="lldp") == 5
    assert one(got["of_errors_total"], type="bad_match") == 1
    assert one(got["of_packet_ins_dropped_total"], dpid=dpid, port="") == 40
    assert one(got["of_packet_ins_dropped_total"], dpid=dpid, port="3") == 7
    assert one(got["of_dp_connections_total"], dpid=dpid) == 2
    assert one(got["of_dp_disconnections_total"], dpid=dpid) == 1
    assert one(got["of_flowmsgs_sent_total"], dpid=dpid) == 12
    assert one(got["of_groupmsgs_sent_total"], dpid=dpid) == 4
    recomputes = {dict(k)["cause"]: v for k, v in got["sdn_recomputes_total"].items()}
    assert (recomputes["port_down"], recomputes["link_silent"], recomputes["periodic"],
            recomputes["port_up"]) == (1, 1, 1, 0), "watched causes count from zero"
    assert got["sdn_recompute_duration_seconds_count"][()] == 2
    assert got["sdn_recompute_duration_seconds_sum"][()] == pytest.approx(0.203)
    buckets = {dict(k)["le"]: v for k, v in got["sdn_recompute_duration_seconds_bucket"].items()}
    assert (buckets["0.0025"], buckets["0.005"], buckets["0.25"], buckets["+Inf"]) == (0, 1, 2, 2)
    assert one(got["sdn_events_total"], kind="port_down") == 5  # FakeApp's
    assert one(got["sdn_events_total"], kind="link_refused") == 1
    assert one(got["sdn_events_total"], kind="link_silent") == 0, "there from the start"
    assert one(got["sdn_policy_info"], policy="shortest") == 1


def test_services_and_pools(app):
    app.services = ServiceTable()
    spec = parse_service({"name": "web", "vip": "10.0.0.100", "port": 80, "protocol": "tcp",
                          "backends": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}],
                          "scaling": {"policy": "reactive", "max_backends": 3,
                                      "standby": [{"ip": "10.0.0.4"}]}})
    app.services.add(spec)
    service = app.services.get("web")
    backend = service.backend("10.0.0.2")
    for t in range(3):
        backend.health.result(True, float(t))  # up after `rise` answers
    app.connections = {backend.backend_id: 7}
    got = scrape(app)
    assert one(got["sdn_service_backend_up"], backend="10.0.0.2") == 1
    assert one(got["sdn_service_backend_up"], backend="10.0.0.3") == 0
    assert one(got["sdn_service_backend_state"], backend="10.0.0.3", state="down") == 1
    assert one(got["sdn_service_backend_state"], backend="10.0.0.3", state="up") == 0
    assert one(got["sdn_service_backend_active_connections"], backend="10.0.0.2") == 7
    assert one(got["sdn_service_new_connections_per_second"], service="web") == 12.5
    assert one(got["sdn_pool_size"], service="web") == 2  # in the pool, up or not
    assert one(got["sdn_pool_desired_size"], service="web") == 2


def test_a_failing_part_costs_only_its_own_families(app, caplog):
    view = NetworkView(app)
    view.links = lambda: 1 / 0
    collector = metrics.NetworkCollector(view)
    with caplog.at_level(logging.ERROR):
        names = {family.name for family in collector.collect()}
    assert "dp_status" in names and "sdn_link_up" not in names
    assert "link_families failed" in caplog.text


def test_a_port_in_use_is_logged_and_nothing_served(app, caplog):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with caplog.at_level(logging.ERROR):
            served = metrics.serve(NetworkView(app), "127.0.0.1", taken.getsockname()[1],
                                   spawn=lambda *a, **k: pytest.fail("nothing to serve"))
    finally:
        taken.close()
    assert served is None and "metrics not served" in caplog.text


def test_histogram_buckets_are_cumulative():
    hist = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        hist.observe(value)
    assert hist.cumulative() == [(0.1, 2), (1.0, 3), (float("inf"), 4)]
    assert hist.count == 4 and hist.total == pytest.approx(3.65)


def test_a_clustered_node_says_whether_it_leads(app):
    assert "sdn_cluster_leader" not in scrape(app), "nothing while it runs alone"
    app.cluster_status = lambda: {"role": "follower", "node_id": "c1", "leader": "c0",
                                  "generation": 7, "store_reachable": True,
                                  "members": [{}, {}, {}]}
    got = scrape(app)
    assert got["sdn_cluster_leader"] == {(): 0}
    assert got["sdn_cluster_generation"] == {(): 7}
    assert got["sdn_cluster_members"] == {(): 3}
    assert one(got["sdn_cluster_info"], node_id="c1", leader="c0") == 1


def test_admission_counts_streams_by_verdict(app):
    assert "sdn_admission_streams_total" not in scrape(app), "nothing while it is off"
    app.admission = Admission(utilization=0.8, stream_bps=1.0)
    app.admission.admitted, app.admission.refused = 5, 2
    got = scrape(app)["sdn_admission_streams_total"]
    assert one(got, verdict="admitted") == 5 and one(got, verdict="refused") == 2
