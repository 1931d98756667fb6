"""Admission control (core/admission.py): verdicts from measured and reserved load, and
the admission table on the simulated dataplane."""

import pytest
from fakedataplane import FakeDataplane
from shipped_topologies import model_of

from sdn_app.core.admission import REPEAT_S, RESERVE_S, Admission, links_toward, parse_ports
from sdn_app.core.pipeline import TABLE_ADMISSION, TABLE_FORWARD, stream_entry
from sdn_app.core.plan import build_plan
from sdn_app.core.routing import Routing
from sdn_app.core.te import compute_next_hops

MBIT = 1e6
EDGE_1, EDGE_2, EDGE_3 = 0x30101, 0x30102, 0x30201  # fattree,4: pod 1's edges, pod 2's first


def fat_tree(mbit=10):
    topo, macs = model_of("fattree,4")
    for lk in topo.links():
        topo.capacity_overrides[(lk.src, lk.src_port)] = mbit * MBIT
    return topo, macs


def placed(topo):
    """Next hops with one port per (u, d): every stream has exactly one path."""
    return {key: hops[:1] for key, hops in compute_next_hops(topo, "ecmp").items()}


def test_ports_parse_from_lists_and_ranges_and_bad_text_is_refused():
    assert parse_ports("") == ()
    assert parse_ports("9100") == (9100,)
    assert parse_ports(" 9101, 9100-9102 ") == (9100, 9101, 9102)
    for bad in ("udp:9100", "9100-", "0", "70000", "9102-9100", "1-100"):
        with pytest.raises(ValueError, match="admission_udp_ports"):
            parse_ports(bad)


def test_a_stream_may_cross_every_branch_of_a_split_and_only_one_of_a_placement():
    topo, _ = fat_tree()
    split = compute_next_hops(topo, "ecmp")
    one = placed(topo)
    across = links_toward(topo, split, EDGE_1, EDGE_3)  # to another pod: 4 paths
    assert len({u for u, _ in across}) == 1 + 2 + 4 + 2  # edge, 2 aggs, 4 cores, 2 aggs
    assert len(links_toward(topo, one, EDGE_1, EDGE_3)) == 4  # edge-agg-core-agg-edge
    assert links_toward(topo, one, EDGE_1, EDGE_3) <= across
    assert len(links_toward(topo, split, EDGE_1, EDGE_2)) == 4  # in the pod: via 2 aggs


def test_streams_are_admitted_until_a_link_would_pass_the_limit():
    """Streams admitted a moment ago count at the assumed rate (the measurement does not
    show them yet): a crowd arriving within a second cannot all squeeze in."""
    topo, _ = fat_tree()
    hops = placed(topo)
    admission = Admission(utilization=0.9, stream_bps=2 * MBIT)
    verdicts = [admission.decide(topo, hops, ("stream", i), EDGE_1, EDGE_3, 100.0 + i / 10)
                for i in range(6)]
    assert [v.admitted for v in verdicts] == [True] * 4 + [False] * 2, \
        "10 Mbit/s links at 90%: four 2 Mbit/s streams fit, a fifth would make 100%"
    refused = verdicts[4]
    assert refused.busiest == pytest.approx(1.0) and refused.link in \
        links_toward(topo, hops, EDGE_1, EDGE_3)
    assert "would be at 100%" in refused.reason
    assert admission.admitted == 4 and admission.refused == 2
    assert admission.describe(101.0)["recent_refusals"][0]["stream"] == ["stream", 4]


def test_measured_load_replaces_the_reservation_once_it_shows():
    topo, _ = fat_tree()
    hops = placed(topo)
    admission = Admission(utilization=0.9, stream_bps=2 * MBIT)
    path = links_toward(topo, hops, EDGE_1, EDGE_3)
    assert admission.decide(topo, hops, "a", EDGE_1, EDGE_3, 0.0).admitted
    assert set(admission.reserved_bps(0.5)) == path
    assert admission.reserved_bps(RESERVE_S + 0.1) == {}, "reservations lapse"
    for lk in topo.links():
        if (lk.src, lk.src_port) in path:
            lk.rate_bps = 7.5 * MBIT  # what the ports now measure, the stream included
    later = admission.decide(topo, hops, "b", EDGE_1, EDGE_3, RESERVE_S + 0.1)
    assert not later.admitted and later.busiest == pytest.approx(0.95)
    back = admission.decide(topo, hops, "c", EDGE_3, EDGE_1, RESERVE_S + 0.2)
    assert back.admitted, "links the stream does not cross (the other way) do not count"


def test_a_repeated_first_frame_gets_the_same_verdict_without_reserving_again():
    topo, _ = fat_tree()
    hops = placed(topo)
    admission = Admission(utilization=0.9, stream_bps=4 * MBIT)
    first = admission.decide(topo, hops, "s", EDGE_1, EDGE_3, 0.0)
    again = admission.decide(topo, hops, "s", EDGE_1, EDGE_3, REPEAT_S / 2)
    assert first.admitted and again == first and admission.admitted == 1
    assert max(admission.reserved_bps(0.6).values()) == 4 * MBIT
    assert admission.decide(topo, hops, "t", EDGE_1, EDGE_3, 0.7).admitted
    assert not admission.decide(topo, hops, "u", EDGE_1, EDGE_3, 0.8).admitted


def test_local_and_unknown_destinations_are_admitted():
    topo, _ = fat_tree(mbit=1)  # any fabric stream would be refused
    hops = placed(topo)
    admission = Admission(utilization=0.9, stream_bps=2 * MBIT)
    assert not admission.decide(topo, hops, "far", EDGE_1, EDGE_3, 0.0).admitted
    assert admission.decide(topo, hops, "local", EDGE_1, EDGE_1, 0.0).admitted
    assert admission.decide(topo, hops, "vip", EDGE_1, None, 0.0).admitted


def udp_frame(dataplane, topo, macs, src, dst, port, sport=40000):
    s, d = topo.hosts[macs[src]], topo.hosts[macs[dst]]
    return dataplane.inject(s.dpid, s.port, s.mac, d.mac, ip_proto=17,
                            ipv4_src=s.ips[0], ipv4_dst=d.ips[0], udp_src=sport,
                            udp_dst=port)


def test_the_admission_table_sends_a_new_stream_up_and_lets_the_rest_through():
    topo, macs = model_of("leafspine,2,2,2")
    plan = build_plan(topo, admission_ports=(9100,))
    assert plan == build_plan(topo, admission_ports=(9100,)), "stable"
    dataplane = FakeDataplane(topo, plan)
    src, dst = "h1", "h3"  # on different leaves
    new = udp_frame(dataplane, topo, macs, src, dst, 9100)
    assert new.to_controller == [(topo.hosts[macs[src]].dpid, TABLE_ADMISSION)]
    assert not new.delivered
    other = udp_frame(dataplane, topo, macs, src, dst, 5000)
    assert other.delivered == [(topo.hosts[macs[dst]].dpid, topo.hosts[macs[dst]].port)]
    s, d = topo.hosts[macs[src]], topo.hosts[macs[dst]]
    fields = dict(ipv4_src=s.ips[0], ipv4_dst=d.ips[0], udp_src=40000, udp_dst=9100)
    dataplane.learn(s.dpid, stream_entry(fields, True, 10))
    admitted = udp_frame(dataplane, topo, macs, src, dst, 9100)
    assert admitted.delivered == other.delivered and not admitted.to_controller
    assert udp_frame(dataplane, topo, macs, src, dst, 9100, sport=40001).to_controller, \
        "another stream of the same hosts is a stream of its own"
    dataplane.learn(s.dpid, stream_entry(fields, False, 5))
    refused = udp_frame(dataplane, topo, macs, src, dst, 9100)
    assert not refused.delivered and not refused.to_controller
    assert [dpid for dpid, _, _ in refused.hops] == [], "dropped where it entered"


def test_without_admission_ports_the_pipeline_is_as_before():
    topo, _ = model_of("leafspine,2,2,2")
    plan = build_plan(topo)
    assert not any(key[0] == TABLE_ADMISSION for entries in plan.values() for key in entries)
    learning = [f for entries in plan.values() for f in entries.values()
                if getattr(f, "table", None) == 0 and dict(f.match).get("eth_src")]
    assert learning and all(f.actions == (("goto", TABLE_FORWARD),) for f in learning)


def test_incremental_routing_builds_the_same_admission_table_as_a_full_plan():
    topo, macs = model_of("fattree,4")
    routing = Routing(protect=False, host_idle_timeout=300, admission_ports=(9100, 9101))
    routing.update(topo, "ecmp")
    assert routing.plan == build_plan(topo, 300, routing.next_hops, None,
                                      admission_ports=(9100, 9101))
    host = topo.hosts[macs["h1"]]
    assert topo.remove_host(host.mac)
    routing.update(topo, "ecmp")
    assert routing.plan == build_plan(topo, 300, routing.next_hops, None,
                                      admission_ports=(9100, 9101)), "a host gone"
