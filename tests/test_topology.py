import networkx as nx
import pytest
from shipped_topologies import SETTLED, T0, model_of

from sdn_app.core.frames import handle_frame
from sdn_app.core.topology import (
    LLDP_DELAY_FACTOR,
    LLDP_DELAY_WINDOW,
    Port,
    Topology,
    TopologyError,
    normalize_mac,
    str_to_dpid,
)
from sdn_app.core.view import export_graph, links_dicts, topology_dict

H1, H2 = "00:00:00:00:00:01", "00:00:00:00:00:02"


def line(now=T0):
    """s1:2 <-> s2:1, a host port 1 on s1 and port 2 on s2."""
    topo = Topology(settle_time=1.0)
    topo.switch_connected(1, [Port(1), Port(2)], now)
    topo.switch_connected(2, [Port(1), Port(2)], now)
    topo.link_seen(1, 2, 2, 1, now)
    topo.link_seen(2, 1, 1, 2, now)
    return topo


def test_links_are_directed_edges_with_ports():
    topo = line()
    assert {(lk.src, lk.src_port, lk.dst, lk.dst_port) for lk in topo.links()} == {
        (1, 2, 2, 1), (2, 1, 1, 2)}
    assert topo.is_link_port(1, 2) and not topo.is_link_port(1, 1)


def test_link_seen_reports_a_change_only_for_a_new_link():
    topo = line()
    assert topo.link_seen(1, 2, 2, 1, T0 + 1) is False
    assert topo.links_at(1, 2)[0].last_seen == T0 + 1, "but the proof is refreshed"


def test_link_to_unknown_switch_raises_and_to_dead_port_is_ignored():
    topo = line()
    with pytest.raises(TopologyError):
        topo.link_seen(1, 1, 9, 1, T0)
    topo.port_changed(2, Port(2, live=False), T0)
    assert topo.link_seen(1, 1, 2, 2, T0) is False


def test_port_down_removes_its_links_and_reports_them_down():
    topo = line()
    assert topo.port_changed(1, Port(2, live=False), T0 + 1)
    assert topo.links() == []
    assert not topo.is_link_port(1, 2)
    states = {(d["src"]["dpid"][-1], d["state"]) for d in links_dicts(topo)}
    assert states == {("1", "down"), ("2", "down")}
    # LLDP proves it again once the port is back.
    topo.port_changed(1, Port(2, live=True), T0 + 2)
    topo.link_seen(1, 2, 2, 1, T0 + 2)
    topo.link_seen(2, 1, 1, 2, T0 + 2)
    assert {d["state"] for d in links_dicts(topo)} == {"up"}


def answered(topo, when, *dpids):
    for dpid in dpids or sorted(topo.graph):
        topo.switch_answered(dpid, when)


def test_silent_links_expire_but_not_those_of_a_disconnected_switch():
    topo = line()
    topo.link_seen(2, 1, 1, 2, T0 + 5)  # only 2 -> 1 keeps talking
    answered(topo, T0 + 4.5)
    expired = topo.expire_links(T0 + 5, timeout=3)
    assert [(lk.src, lk.dst) for lk in expired] == [(1, 2)]
    topo = line()
    topo.switch_disconnected(1)
    answered(topo, T0 + 9, 2)
    expired = topo.expire_links(T0 + 10, timeout=3)
    assert [(lk.src, lk.dst) for lk in expired] == [(2, 1)]
    assert 1 in topo.graph, "a switch cut off from the controller keeps forwarding"


def test_a_port_in_a_link_gains_no_second_neighbour_until_the_first_is_silent():
    topo = line()
    topo.switch_connected(3, [Port(1)], T0)
    assert topo.link_seen(3, 1, 1, 2, T0 + 1) is False, "s1:2 is cabled to s2:1"
    assert "is linked to 0000000000000002:1" in topo.refused_link
    assert topo.link_seen(1, 2, 3, 1, T0 + 1) is False
    assert {(lk.src, lk.dst) for lk in topo.links() if 3 in (lk.src, lk.dst)} == set()
    # Recabled with the carrier kept up: the old link's probes stop, then the new wins.
    late = T0 + topo.link_timeout
    assert topo.link_seen(1, 2, 3, 1, late) is True and topo.refused_link is None
    assert {(lk.src, lk.dst) for lk in topo.links() if lk.src == 1} == {(1, 3)}


def test_hosts_learn_only_on_settled_edge_ports():
    topo = line()
    assert topo.learn_host(H1, 1, 1, T0 + 0.5) is False, "port not settled yet"
    assert H1 not in topo.hosts
    assert topo.learn_host(H1, 1, 2, SETTLED) is False, "inter-switch port"
    assert topo.learn_host(H1, 1, 1, SETTLED, "10.0.0.1") is True
    assert topo.learn_host(H1, 1, 1, SETTLED + 1, "10.0.0.1") is False, "nothing new"
    assert topo.find_host("10.0.0.1").mac == H1
    assert topo.find_host("00-00-00-00-00-01").mac == H1


def test_host_move_and_ip_reassignment():
    topo = line()
    topo.learn_host(H1, 1, 1, SETTLED, "10.0.0.1")
    assert topo.learn_host(H1, 2, 2, SETTLED + 1) is True
    assert (topo.hosts[H1].dpid, topo.hosts[H1].port) == (2, 2)
    topo.learn_host(H2, 1, 1, SETTLED + 2, "10.0.0.1")  # address now used by H2
    assert topo.find_host("10.0.0.1").mac == H2
    assert "10.0.0.1" not in topo.hosts[H1].ips


def test_port_flap_forgets_hosts_behind_it():
    topo = line()
    topo.learn_host(H1, 1, 1, SETTLED)
    topo.port_changed(1, Port(1, live=False), SETTLED + 1)
    assert H1 not in topo.hosts
    topo.port_changed(1, Port(1, live=True), SETTLED + 2)
    assert topo.learn_host(H1, 1, 1, SETTLED + 2.5) is False, "re-settling after a flap"
    assert topo.learn_host(H1, 1, 1, SETTLED + 3.5) is True


def test_discovering_a_switch_evicts_the_hosts_learned_through_it_before_it_connected():
    topo = Topology(settle_time=1.0)
    topo.switch_connected(1, [Port(1), Port(2)], T0)
    topo.learn_host("00:00:00:00:00:99", 1, 2, SETTLED)  # s2 forwarding on its own
    topo.switch_connected(2, [Port(1)], SETTLED + 1)
    assert topo.link_seen(2, 1, 1, 2, SETTLED + 1) is True
    assert "00:00:00:00:00:99" not in topo.hosts
    assert (1, 2) not in topo.host_ports


def relay_rig():
    """s1:2 <-> s2:1 and two settled host ports, s1:1 and s2:2, each with a host."""
    topo = line()
    topo.learn_host(H1, 1, 1, SETTLED)
    topo.learn_host(H2, 2, 2, SETTLED)
    return topo


def test_a_port_that_carried_host_traffic_makes_no_link():
    """Two hosts relaying our probes to each other (a wormhole) make no link."""
    topo = relay_rig()
    links = {(lk.src, lk.src_port, lk.dst, lk.dst_port) for lk in topo.links()}
    assert topo.link_seen(1, 1, 2, 2, SETTLED + 1) is False
    assert "0000000000000001:1 has carried host traffic" in topo.refused_link
    assert topo.link_seen(2, 2, 1, 1, SETTLED + 1) is False
    assert {(lk.src, lk.src_port, lk.dst, lk.dst_port) for lk in topo.links()} == links
    assert set(topo.hosts) == {H1, H2}, "the hosts stay where they are"
    # The host's own port coming back is no way around it: the far port counts too.
    topo.port_changed(1, Port(1, live=False), SETTLED + 2)
    topo.port_changed(1, Port(1), SETTLED + 2.1)
    assert topo.link_seen(1, 1, 2, 2, SETTLED + 3) is False
    assert "0000000000000002:2 has carried host traffic" in topo.refused_link


def test_unplugging_or_resetting_a_host_port_lets_a_switch_be_cabled_there():
    topo = relay_rig()
    topo.port_changed(2, Port(2, live=False), SETTLED + 1)  # H2 unplugged
    topo.port_changed(2, Port(2), SETTLED + 2)
    assert topo.reset_port(1, 1) is True, "s1:1 recabled without losing its carrier"
    assert H1 not in topo.hosts and (1, 1) not in topo.host_ports
    assert topo.reset_port(1, 1) is False, "nothing left to forget"
    assert topo.link_seen(1, 1, 2, 2, SETTLED + 3) is True
    with pytest.raises(TopologyError):
        topo.reset_port(1, 9)
    with pytest.raises(TopologyError):
        topo.reset_port(7, 1)


def test_frames_from_a_switch_port_address_do_not_make_a_host_port():
    topo = Topology(settle_time=1.0)
    topo.switch_connected(1, [Port(1), Port(2)], T0)
    topo.switch_connected(2, [Port(1, hw_addr="02:00:00:00:02:01")], T0)
    topo.learn_host("02:00:00:00:02:01", 1, 2, SETTLED)  # s2's port autoconfiguring
    assert topo.link_seen(2, 1, 1, 2, SETTLED + 1) is True


def test_a_link_lost_to_silence_comes_back_over_its_ports():
    topo = line()
    answered(topo, T0 + 10)
    assert len(topo.expire_links(T0 + 10, timeout=3)) == 2
    # its ports are host ports now; frames from the far switch are learned there
    topo.learn_host(H1, 1, 2, T0 + 10.5)
    assert topo.link_seen(2, 1, 1, 2, T0 + 11) is True
    assert topo.link_seen(1, 2, 2, 1, T0 + 11) is True
    assert H1 not in topo.hosts


def test_reconnect_keeps_settled_ports_and_drops_vanished_ones():
    topo = line()
    topo.learn_host(H1, 1, 1, SETTLED)
    topo.switch_disconnected(1)
    assert not topo.is_edge_port(1, 1, SETTLED)
    topo.switch_connected(1, [Port(2)], SETTLED + 1)  # port 1 is gone
    assert H1 not in topo.hosts
    assert topo.is_link_port(1, 2)


def test_remove_switch_and_unknown_queries():
    topo = line()
    topo.learn_host(H1, 1, 1, SETTLED)
    topo.remove_switch(1)
    assert 1 not in topo.graph and H1 not in topo.hosts
    assert topo.links() == [] and topo.down_links == {}
    with pytest.raises(TopologyError):
        topo.switch(1)
    with pytest.raises(TopologyError):
        topo.find_host("10.9.9.9")
    with pytest.raises(TopologyError):
        topo.port_changed(7, Port(1), T0)


@pytest.mark.parametrize("text", ["", "xyz", "1" * 17, "0x"])
def test_bad_dpids_are_rejected(text):
    with pytest.raises(ValueError):
        str_to_dpid(text)


def test_dpid_forms():
    assert str_to_dpid("000000000001000a") == str_to_dpid("0x1000A") == 0x1000A


@pytest.mark.parametrize("text", ["", "00:11", "zz:00:00:00:00:00", "0:0:0:0:0:0:0"])
def test_bad_macs_are_rejected(text):
    with pytest.raises(ValueError):
        normalize_mac(text)


def test_node_link_export_round_trips_through_networkx():
    topo, macs = model_of("fattree,4")
    data = nx.node_link_data(export_graph(topo))
    graph = nx.node_link_graph(data, directed=True, multigraph=True)
    kinds = nx.get_node_attributes(graph, "kind")
    assert sum(k == "switch" for k in kinds.values()) == 20
    assert sum(k == "host" for k in kinds.values()) == 16
    # 48 links (32 inter-switch, 16 host), each in both directions
    assert graph.number_of_edges() == 96
    assert nx.is_strongly_connected(graph)


def test_to_dict_shape():
    topo, _ = model_of("diamond")
    data = topology_dict(topo)
    assert len(data["switches"]) == 4 and len(data["links"]) == 8 and len(data["hosts"]) == 2
    assert all(p["role"] in ("edge", "link") for s in data["switches"] for p in s["ports"])


def test_restore_host_from_a_taken_over_entry_skips_settling_but_not_sanity():
    topo = line()
    assert topo.restore_host(H1, 1, 1, T0) is True, "no settle wait: the entry is proof"
    assert topo.restore_host(H2, 1, 2, T0) is False, "never on an inter-switch port"
    assert topo.restore_host(H2, 9, 1, T0) is False, "never on an unknown switch"
    topo.port_changed(2, Port(2, live=False), T0)
    assert topo.restore_host(H2, 2, 2, T0) is False, "never on a dead port"
    assert topo.restore_host(H1, 2, 2, T0) is False, "a known host is not overwritten"


def test_a_busy_link_whose_lldp_is_lost_in_congestion_stays_up():
    topo = line()
    topo.port_received(2, 1, T0 + 5)  # traffic keeps arriving over 1 -> 2
    answered(topo, T0 + 6)
    expired = topo.expire_links(T0 + 6, timeout=3)
    assert [(lk.src, lk.dst) for lk in expired] == [(2, 1)], "only the silent direction"
    answered(topo, T0 + 9)
    expired = topo.expire_links(T0 + 9, timeout=3)
    assert [(lk.src, lk.dst) for lk in expired] == [(1, 2)], "traffic stopped too"


def test_a_controller_that_fell_behind_does_not_call_links_silent():
    """Links go silent only once both ends answered requests sent after the silence
    began: a controller busy for longer than the timeout finds LLDP queued, not lost."""
    topo = line()
    assert topo.expire_links(T0 + 30, timeout=3) == [], "nothing answered since T0"
    answered(topo, T0 + 2.5)
    assert topo.expire_links(T0 + 30, timeout=3) == [], "answers not yet past the timeout"
    answered(topo, T0 + 29, 1)
    assert topo.expire_links(T0 + 30, timeout=3) == [], "the far end has not caught up"
    answered(topo, T0 + 29, 2)
    assert len(topo.expire_links(T0 + 30, timeout=3)) == 2


def test_host_caps_refuse_a_flood_of_sources_and_keep_the_hosts_learned():
    from sdn_app.core.frames import handle_frame
    topo = line()
    topo.switch_connected(1, [Port(1), Port(2), Port(3)], T0)
    topo.link_seen(1, 2, 2, 1, T0)
    topo.max_hosts_per_port, topo.max_hosts_per_switch = 3, 4
    now = T0 + 2
    flood = ["02:00:00:00:00:%02x" % i for i in range(10)]
    learned = [handle_frame(topo, 1, 1, now, mac, H2).learned for mac in flood]
    assert learned == [True] * 3 + [False] * 7
    verdict = handle_frame(topo, 1, 1, now, flood[9], H2)
    assert "max_hosts_per_port (3)" in verdict.refused and not verdict.outputs
    assert topo.refused[:3] == (flood[9], 1, 1)
    # the learned ones keep working and refresh; another port has room up to the switch
    assert handle_frame(topo, 1, 1, now + 1, flood[0], H2).refused is None
    assert topo.hosts[flood[0]].last_seen == now + 1
    assert topo.learn_host(H1, 1, 3, now)
    assert "max_hosts_per_switch (4)" in handle_frame(topo, 1, 3, now, flood[5], H2).refused
    assert topo.learn_host(H2, 2, 2, now), "another switch has its own cap"
    # one learned host moving onto the full port is refused too, and stays where it was
    assert not topo.learn_host(H1, 1, 1, now) and topo.hosts[H1].port == 3
    topo.remove_host(flood[1])  # one left (or was forgotten): room for one
    assert topo.learn_host(flood[7], 1, 1, now)
    topo.max_hosts_per_port = topo.max_hosts_per_switch = 0
    for mac in flood:
        topo.learn_host(mac, 1, 1, now)
    assert all(topo.hosts[mac].port == 1 for mac in flood), "0: no cap"


def test_a_switch_disconnected_long_enough_is_forgotten_with_its_links_and_hosts():
    topo = line()
    assert topo.learn_host(H1, 1, 1, T0 + 2)
    topo.switch_disconnected(1, T0 + 10)
    assert topo.forget_disconnected(T0 + 69, 60) == [], "not yet"
    assert 1 in topo.graph and topo.links()
    topo.switch_connected(2, [Port(1), Port(2)], T0 + 20)  # still connected: kept
    assert topo.forget_disconnected(T0 + 70, 60) == [1]
    assert 1 not in topo.graph and not topo.links() and H1 not in topo.hosts
    assert not [lk for lk in topo.down_links.values() if 1 in (lk.src, lk.dst)]
    assert list(topo.switches) == [2]
    topo.switch_connected(1, [Port(1), Port(2)], T0 + 80)  # it comes back: learned anew
    assert topo.switch(1).connected and topo.switch(1).disconnected_since is None


def test_a_port_settles_only_once_a_late_lldp_probe_would_have_come_back():
    """settle_time is the least wait; when our LLDP probes come back late (a controller
    or switch falling behind), an unproven port waits LLDP_DELAY_FACTOR times the
    slowest of the last LLDP_DELAY_WINDOW seconds, and no longer once those are old."""
    topo = line()
    assert not topo.is_edge_port(1, 1, T0 + 0.9) and topo.is_edge_port(1, 1, T0 + 1.0)
    topo.lldp_delay_seen(0.5, T0 + 1.0)  # one probe took half a second
    assert topo.settle_after(T0 + 1.0) == pytest.approx(LLDP_DELAY_FACTOR * 0.5)
    assert not topo.is_edge_port(1, 1, T0 + 1.5)
    assert topo.settling(1, 1, T0 + 1.5) == pytest.approx(LLDP_DELAY_FACTOR * 0.5 - 1.5)
    assert topo.is_edge_port(1, 1, T0 + LLDP_DELAY_FACTOR * 0.5)
    assert topo.settle_after(T0 + 1.0 + LLDP_DELAY_WINDOW + 0.1) == 1.0
    assert topo.settling(1, 2, T0 + 0.5) is None  # a link port never settles


def test_a_port_waits_again_when_a_switch_connects_before_it_settled():
    """The switch behind a port may still be connecting: until it has, no LLDP can come
    back, so a switch connecting anywhere restarts the wait of ports not yet settled."""
    topo = line()  # both switches connected at T0; settle_time 1 s
    topo.switch_connected(3, [Port(1)], T0 + 0.6)
    assert not topo.is_edge_port(1, 1, T0 + 1.2)
    assert topo.settling(1, 1, T0 + 1.2) == pytest.approx(0.4)
    assert topo.is_edge_port(1, 1, T0 + 1.6)
    topo.switch_connected(4, [Port(1)], T0 + 5.0)  # after it settled: it stays settled
    assert topo.is_edge_port(1, 1, T0 + 5.1)


def test_discovery_is_left_until_every_live_port_is_a_link_or_settled():
    topo = line(T0)
    assert topo.discovery_left(T0) == pytest.approx(1.0), "s1:1 and s2:2 still settling"
    assert topo.discovery_left(T0 + 0.75) == pytest.approx(0.25)
    assert topo.discovery_left(SETTLED) is None
    topo.port_changed(1, Port(3), SETTLED)  # a port comes up: discovery goes on there
    assert topo.discovery_left(SETTLED) == pytest.approx(1.0)
    topo.port_changed(1, Port(3, live=False), SETTLED + 0.1)
    assert topo.discovery_left(SETTLED + 0.1) is None, "a down port holds nothing up"


def test_discovery_waits_for_the_links_a_taken_over_switch_had_until_given_up():
    topo = line(T0)
    topo.switch_connected(3, [Port(1)], T0)
    topo.expect_links(1, [2], until=SETTLED + 3)  # proven already: nothing to wait for
    topo.expect_links(3, [1], until=SETTLED + 3)  # its neighbour has not reconnected
    topo.learn_host(H1, 3, 1, SETTLED)  # (settled as an edge port meanwhile)
    assert topo.discovery_left(SETTLED) == pytest.approx(0.1), "polled"
    assert topo.discovery_left(SETTLED + 2.95) == pytest.approx(0.05)
    assert topo.discovery_left(SETTLED + 3) is None, "given up on: the neighbour is gone"


def test_a_port_a_taken_over_switch_had_in_a_link_learns_no_host_until_given_up():
    """Frames arriving on it before LLDP proves the link again are transit traffic: a
    host learned there would mark the port host-facing, and the link would be refused
    as a relay once proven (seen when a standby controller took over)."""
    topo = line(T0)
    topo.switch_connected(3, [Port(1)], T0)
    topo.expect_links(3, [1], until=SETTLED + 3)
    assert not topo.is_edge_port(3, 1, SETTLED + 1)
    verdict = handle_frame(topo, 3, 1, SETTLED + 1, H1, "ff:ff:ff:ff:ff:ff", "10.0.0.1",
                           None)
    assert not verdict.learned and (3, 1) not in topo.host_ports
    assert topo.is_edge_port(3, 1, SETTLED + 3), "given up on: a host port after all"
