import itertools

import networkx as nx
import pytest
from fakedataplane import FakeDataplane
from shipped_topologies import SETTLED, SHIPPED, T0, model_of

from sdn_app.core.frames import PendingArp, handle_frame
from sdn_app.core.pipeline import (
    ETH_TYPE_ARP,
    ETH_TYPE_LLDP,
    PACKET_IN_METER,
    GroupEntry,
    link_port_of,
    port_meter_id,
)
from sdn_app.core.plan import build_plan, group_ids, next_hops_towards
from sdn_app.core.protection import plan_protection
from sdn_app.core.reconcile import diff
from sdn_app.core.services import vip_mac
from sdn_app.core.te import compute_next_hops
from sdn_app.core.topology import Port, TopologyError
from sdn_app.core.trace import trace

BROADCAST = "ff:ff:ff:ff:ff:ff"


def all_pairs_delivered(topo, plan):
    """Every path any flow between any two hosts can take arrives, and is a shortest one."""
    dataplane = FakeDataplane(topo, plan)
    for src, dst in itertools.permutations(topo.hosts.values(), 2):
        result = dataplane.inject(src.dpid, src.port, src.mac, dst.mac)
        assert result.delivered and set(result.delivered) == {(dst.dpid, dst.port)}, (
            src.mac, dst.mac, result)
        assert not result.to_controller
        shortest = nx.shortest_path_length(topo.graph, src.dpid, dst.dpid) + 1
        assert all(len(path) == shortest for path in result.paths)


@pytest.mark.parametrize("policy", ["shortest", "ecmp", "adaptive"])
@pytest.mark.parametrize("spec", SHIPPED)
def test_every_host_reaches_every_other_on_shortest_paths(spec, policy):
    topo, _ = model_of(spec)
    all_pairs_delivered(topo, build_plan(topo, next_hops=compute_next_hops(topo, policy)))


@pytest.mark.parametrize("spec", SHIPPED)
def test_broadcast_and_unknown_unicast_go_to_the_controller_only(spec):
    topo, _ = model_of(spec)
    dataplane = FakeDataplane(topo, build_plan(topo))
    for host in topo.hosts.values():
        for dst, eth_type in ((BROADCAST, 0x0800), ("00:00:00:aa:bb:cc", 0x0800),
                              (BROADCAST, ETH_TYPE_ARP)):
            result = dataplane.inject(host.dpid, host.port, host.mac, dst, eth_type)
            assert result.hops == [] and result.delivered == []
            assert result.to_controller == [(host.dpid, 1 if eth_type != ETH_TYPE_ARP else 0)]
            # past its port's meter first, then its switch's
            assert result.meters == [(host.dpid, port_meter_id(host.port)),
                                     (host.dpid, PACKET_IN_METER)]


@pytest.mark.parametrize("spec", SHIPPED)
def test_every_port_of_every_switch_meters_what_it_sends_up(spec):
    """Whatever port a frame for the controller came in by (a host's, a link's, one
    with nothing behind it yet), it passes that port's meter and then the switch's,
    except LLDP from a proven link port, which passes neither."""
    topo, _ = model_of(spec)
    dataplane = FakeDataplane(topo, build_plan(topo))
    for dpid, switch in topo.switches.items():
        for port_no in switch.ports:
            for eth_type in (ETH_TYPE_ARP, ETH_TYPE_LLDP, 0x0800):
                result = dataplane.inject(dpid, port_no, "02:00:00:00:99:99",
                                          "00:00:00:aa:bb:cc", eth_type)
                if eth_type == ETH_TYPE_LLDP and topo.is_link_port(dpid, port_no):
                    assert result.meters == [] and result.to_controller == [(dpid, 0)]
                    continue
                assert result.to_controller, (dpid, port_no, eth_type)
                assert result.meters == [(dpid, port_meter_id(port_no)),
                                         (dpid, PACKET_IN_METER)], (dpid, port_no)


def test_lldp_and_unknown_sources_go_to_the_controller():
    topo, _ = model_of("diamond")
    dataplane = FakeDataplane(topo, build_plan(topo))
    assert dataplane.inject(0x10102, 1, "02:00:00:00:00:01", "01:80:c2:00:00:0e",
                            ETH_TYPE_LLDP).to_controller == [(0x10102, 0)]
    # A host seen at a new port (moved, or new) misses table 0.
    assert dataplane.inject(0x10104, 1, "00:00:00:00:00:01",
                            "00:00:00:00:00:02").to_controller == [(0x10104, 0)]


@pytest.mark.parametrize("policy", ["shortest", "ecmp"])
@pytest.mark.parametrize("spec", ["diamond", "ring,5", "leafspine,2,3,2", "fattree,4"])
def test_any_single_link_failure_reroutes_without_loops(spec, policy):
    base, _ = model_of(spec)
    links = {(lk.src, lk.src_port) for lk in base.links()}
    for dpid, port in sorted(links):
        topo, _ = model_of(spec)
        topo.port_changed(dpid, Port(port, live=False), SETTLED + 1)
        plan = build_plan(topo, next_hops=compute_next_hops(topo, policy))
        all_pairs_delivered(topo, plan)
        used = [f for f in plan[dpid].values() if getattr(f, "table", None) == 1
                and ("output", port) in f.actions]
        used += [g for g in plan[dpid].values() if any(
            ("output", port) in b.actions for b in getattr(g, "buckets", ()))]
        assert not used
        dataplane = FakeDataplane(topo, plan)
        for src, dst in itertools.permutations(topo.hosts.values(), 2):
            hops = dataplane.inject(src.dpid, src.port, src.mac, dst.mac).hops
            assert (dpid, port) not in [(d, o) for d, _, o in hops], "used the failed link"


def test_partitioned_hosts_are_not_forwarded_to():
    topo, _ = model_of("diamond")
    for dpid, port in ((0x10101, 2), (0x10101, 3)):
        topo.port_changed(dpid, Port(port, live=False), SETTLED + 1)
    plan = build_plan(topo)
    h1, h2 = sorted(topo.hosts.values(), key=lambda h: h.mac)
    with pytest.raises(TopologyError):
        trace(plan, topo, h1, h2)
    result = FakeDataplane(topo, plan).inject(h1.dpid, h1.port, h1.mac, h2.mac)
    assert result.delivered == [] and result.to_controller


def test_next_hops_are_stable_and_deterministic():
    topo, _ = model_of("fattree,4")
    root = 0x30101
    first = next_hops_towards(topo, root)
    again, _ = model_of("fattree,4")
    assert next_hops_towards(again, root) == first
    assert len(first) == 19
    assert next_hops_towards(topo, 0xDEAD) == {}


@pytest.mark.parametrize("policy", ["shortest", "ecmp", "adaptive"])
def test_trace_matches_the_dataplane(policy):
    topo, _ = model_of("fattree,4")
    plan = build_plan(topo, next_hops=compute_next_hops(topo, policy))
    dataplane = FakeDataplane(topo, plan)
    hosts = sorted(topo.hosts.values(), key=lambda h: h.mac)
    src, dst = hosts[0], hosts[-1]
    paths = trace(plan, topo, src, dst)
    injected = dataplane.inject(src.dpid, src.port, src.mac, dst.mac).paths
    assert sorted([(int(h["dpid"], 16), h["in_port"], h["out_port"]) for h in p["hops"]]
                  for p in paths) == sorted(injected)
    assert len(paths) == (1 if policy == "shortest" else 4)
    assert sum(p["share"] for p in paths) == pytest.approx(1.0, abs=0.01)


def test_host_learning_entries_carry_the_idle_timeout():
    topo, _ = model_of("diamond")
    plan = build_plan(topo, host_idle_timeout=30)
    learning = [f for flows in plan.values() for f in flows.values()
                if dict(getattr(f, "match", ())).get("eth_src")]
    assert len(learning) == 2
    assert all(f.idle_timeout == 30 and f.notify_removal for f in learning)
    assert all(not f.notify_removal for f in build_plan(topo)[0x10101].values())


def test_diff_changes_only_what_differs():
    topo, _ = model_of("ring,4")
    before = build_plan(topo)
    topo.port_changed(0x10101, Port(3, live=False), SETTLED + 1)
    after = build_plan(topo)
    changes = {dpid: diff(before[dpid], after[dpid]) for dpid in after}
    assert sum(len(a) + len(d) for a, d in changes.values()) > 0
    untouched = sum(1 for dpid in after for k in after[dpid]
                    if before[dpid].get(k) == after[dpid][k])
    assert untouched > sum(len(a) for a, _ in changes.values()), "most entries stay"
    for dpid in after:
        installed = dict(before[dpid])
        to_add, to_delete = changes[dpid]
        for f in to_add:
            installed[f.key] = f
        for f in to_delete:
            del installed[f.key]
        assert installed == after[dpid]
    assert diff(after[0x10101], after[0x10101]) == ([], [])


# -- frames the tables send to the controller --------------------------------------------

H1, H2 = "00:00:00:00:00:01", "00:00:00:00:00:02"
S1, S2, S3, S4 = 0x10101, 0x10102, 0x10103, 0x10104


def test_frame_for_a_known_host_is_delivered_even_from_an_inter_switch_port():
    """A packet in flight while the destination's entries are still being installed
    misses table 1 on a switch mid-path: it must still arrive."""
    topo, _ = model_of("diamond")
    verdict = handle_frame(topo, S2, 2, SETTLED, H1, H2)  # s10102 port 2 faces s10104
    assert verdict.outputs == {S4: [1]}
    assert not verdict.learned, "never learn from an inter-switch port"


def test_broadcast_is_flooded_only_out_of_other_edge_ports():
    topo, _ = model_of("leafspine,2,3,2")
    src = topo.hosts["00:00:00:00:00:01"]
    verdict = handle_frame(topo, src.dpid, src.port, SETTLED, src.mac, BROADCAST)
    ports = {(d, p) for d, ps in verdict.outputs.items() for p in ps}
    assert ports == {(h.dpid, h.port) for h in topo.hosts.values()} - {(src.dpid, src.port)}


def test_broadcast_from_an_inter_switch_or_unsettled_port_is_dropped():
    topo, _ = model_of("diamond")
    assert handle_frame(topo, S2, 1, SETTLED, H1, BROADCAST).outputs == {}
    topo.port_changed(S1, Port(1, live=False), SETTLED)
    topo.port_changed(S1, Port(1, live=True), SETTLED + 0.1)
    verdict = handle_frame(topo, S1, 1, SETTLED + 0.2, "00:00:00:00:00:77", BROADCAST)
    assert verdict.outputs == {} and not verdict.learned


def test_new_host_is_learned_and_its_frame_delivered():
    topo, _ = model_of("diamond", learn_hosts=False)
    verdict = handle_frame(topo, S1, 1, SETTLED, H1, H2, src_ip="10.0.0.1")
    assert verdict.learned and topo.hosts[H1].ips == ["10.0.0.1"]
    assert verdict.outputs == {S4: [1]}, "unknown destination: flood to the other edge port"
    assert not handle_frame(topo, S1, 1, SETTLED, H1, H2).learned, "already known"


def test_arp_for_a_known_address_is_answered_by_the_controller():
    topo, _ = model_of("diamond")
    verdict = handle_frame(topo, S1, 1, SETTLED, H1, BROADCAST, "10.0.0.1",
                           arp_request_for="10.0.0.2")
    assert verdict.arp_reply_mac == H2 and verdict.outputs == {}
    unknown = handle_frame(topo, S1, 1, SETTLED, H1, BROADCAST, "10.0.0.1",
                           arp_request_for="10.0.0.99")
    assert unknown.arp_reply_mac is None and unknown.outputs == {S4: [1]}


def test_multicast_source_is_never_learned():
    topo, _ = model_of("diamond", learn_hosts=False)
    assert not handle_frame(topo, S1, 1, SETTLED, "01:00:5e:00:00:01", BROADCAST).learned
    assert topo.hosts == {}


def test_a_sender_using_a_label_address_is_never_learned():
    """Label addresses are the fabric's own (pipeline.py): a host claiming one would be
    taken for the host it stands for."""
    topo, _ = model_of("diamond", learn_hosts=False)
    verdict = handle_frame(topo, S1, 1, SETTLED, "0e:5d:00:01:00:02", BROADCAST)
    assert not verdict.learned and topo.hosts == {}


def test_a_frame_from_a_vip_address_is_never_learned():
    """A backend's reply leaves its switch rewritten to the VIP's address; seen on a port
    whose link is not yet proven (a new leader's first seconds), it was learned as a host
    there and turned an inter-switch port into an edge port."""
    topo, _ = model_of("diamond", learn_hosts=False)
    verdict = handle_frame(topo, S1, 1, SETTLED, vip_mac("10.0.0.100"), BROADCAST,
                           "10.0.0.100")
    assert not verdict.learned and topo.hosts == {}


def test_an_arp_request_from_a_port_about_to_settle_is_looked_at_again_when_it_has():
    """A host's first ARP, sent as its link came up, is kept until the port settles
    (settle_time without LLDP) and answered then, not dropped for its retry; other
    frames from such a port are dropped."""
    topo, macs = model_of("diamond", learn_hosts=False)
    s1_host_port = next(p for p in topo.switch(S1).ports if not topo.is_link_port(S1, p))
    early = T0 + 0.25  # the ports came up at T0; settle_time is 1 s
    asking = {"arp_request_for": "10.0.0.3"}
    verdict = handle_frame(topo, S1, s1_host_port, early, macs["h1"], BROADCAST, **asking)
    assert verdict.retry_after == pytest.approx(0.75)
    assert not verdict.learned and not verdict.outputs and topo.hosts == {}
    other = handle_frame(topo, S1, s1_host_port, early, macs["h1"], BROADCAST)
    assert other.retry_after is None and not other.learned and not other.outputs
    link_port = next(p for p in topo.switch(S1).ports if topo.is_link_port(S1, p))
    assert handle_frame(topo, S1, link_port, early, macs["h1"], BROADCAST,
                        **asking).retry_after is None
    again = handle_frame(topo, S1, s1_host_port, early + verdict.retry_after, macs["h1"],
                         BROADCAST, **asking)
    assert again.retry_after is None and again.learned


def test_group_ids_never_collide_and_keep_their_ranges():
    failover = [(p, b, t) for p in range(1, 11) for b in range(1, 6) for t in (0, 7)]
    shared = [("select", (((p, 0, 0), 1), ((p + 1, 0, 0), w))) for p in range(1, 30)
              for w in (1, 2)] + [("split", ((p, 0, 0), (p + 1, 0, 0))) for p in range(1, 30)]
    ids = group_ids(failover + shared)
    assert len(set(ids.values())) == len(failover) + len(shared)
    assert all(2**31 <= ids[k] < 2**32 - 256 for k in failover)
    assert all(1 <= ids[k] < 2**31 for k in shared)


def test_destinations_that_leave_the_same_way_share_their_groups():
    topo, _ = model_of("fattree,4")
    hops = compute_next_hops(topo, "ecmp")
    plan = build_plan(topo, next_hops=hops, protection=plan_protection(topo.graph, hops))
    edge = min(h.dpid for h in topo.hosts.values())  # the same uplinks toward every pod
    remote = {d for (u, d), h in hops.items() if u == edge and len(h) > 1}
    groups = [g for g in plan[edge].values() if isinstance(g, GroupEntry)]
    selects = [g for g in groups if g.kind == "select"]
    assert len(remote) > 1 and len(selects) == 1
    assert len(set(groups)) == len(groups)  # one group per distinct content


def test_arp_requests_for_nobody_yet_wait_for_their_host_for_a_while():
    pending = PendingArp(hold=2.0, limit=3)
    pending.add("10.0.0.9", "first", 0.0)
    pending.add("10.0.0.9", "second", 1.5)
    pending.add("10.0.0.8", "other", 1.0)
    pending.add("10.0.0.7", "full", 1.0)  # over the limit, nothing expired: not kept
    assert pending.take("10.0.0.9", 2.5) == ["second"]  # the first waited too long
    assert pending.take("10.0.0.9", 2.6) == []  # answered once
    pending.add("10.0.0.7", "room again", 3.5)
    assert pending.take("10.0.0.7", 3.6) == ["room again"]
    assert pending.take("10.0.0.8", 3.6) == []


@pytest.mark.parametrize("spec", ["fattree,4", "ring,5"])
def test_every_packet_in_passes_the_meter_but_lldp_from_proven_link_ports(spec):
    """A flood toward the controller is bounded per switch (the packet-in meter); the
    probes that keep proven links alive are not in that budget."""
    topo, _ = model_of(spec)
    hops = compute_next_hops(topo, "ecmp")
    plan = build_plan(topo, host_idle_timeout=60, next_hops=hops,
                      protection=plan_protection(topo.graph, hops))
    for dpid, entries in plan.items():
        link_ports = {lk.dst_port for lk in topo.links() if lk.dst == dpid}
        exempt = set()
        for flow in entries.values():
            if isinstance(flow, GroupEntry) or ("controller",) not in flow.actions:
                continue
            if flow.actions[0] == ("meter", PACKET_IN_METER):
                continue
            match = dict(flow.match)
            assert match.get("eth_type") == ETH_TYPE_LLDP and "in_port" in match, flow
            exempt.add(match["in_port"])
        assert exempt == link_ports


def test_a_plans_link_port_entries_name_exactly_its_link_ports():
    """What a restarted controller reads back to know which links to wait for."""
    topo, _ = model_of("fattree,4")
    plan = build_plan(topo, host_idle_timeout=60)
    for dpid, entries in plan.items():
        found = {p for f in entries.values() if not isinstance(f, GroupEntry)
                 and (p := link_port_of(f)) is not None}
        assert found == {lk.dst_port for lk in topo.links() if lk.dst == dpid}
