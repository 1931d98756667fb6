"""Services (core/services.py): definitions and their errors, the heartbeat state machine,
Maglev slot tables, and the service entries run on the simulated dataplane: a client's
connection to the VIP reaches the backend its slot names, rewritten, through the fabric
(and a failed link), the reply comes back from the VIP, and an established connection
stays on its backend when the pool changes."""

import collections
import dataclasses
import itertools

import pytest
from fakedataplane import FakeDataplane
from shipped_topologies import model_of

from sdn_app.core.pipeline import TABLE_CONNECTIONS, TABLE_SLOTS, slot_of
from sdn_app.core.plan import build_plan
from sdn_app.core.protection import plan_protection
from sdn_app.core.services import (
    SLOTS,
    Conflict,
    Health,
    HealthSpec,
    ServiceTable,
    parse_service,
    parse_services_file,
    placement,
    slot_table,
    vip_mac,
)
from sdn_app.core.te import compute_next_hops

COOKIE = 0x5DA0_0000_0000_0001


def web(**changes):
    obj = {"name": "web", "vip": "10.0.0.100", "port": 80, "protocol": "tcp",
           "backends": [{"ip": "10.0.0.2", "weight": 1}, {"ip": "10.0.0.3", "weight": 3},
                        {"ip": "10.0.0.4", "role": "backup"}]}
    obj.update(changes)
    return obj


# -- definitions ----------------------------------------------------------------------------

def test_a_service_definition_with_defaults():
    spec = parse_service(web())
    assert spec.scheduler == "wrr" and spec.health == HealthSpec()
    assert [(b.ip, b.port, b.weight, b.role) for b in spec.backends] == [
        ("10.0.0.2", 80, 1, "primary"), ("10.0.0.3", 80, 3, "primary"),
        ("10.0.0.4", 80, 1, "backup")]
    assert parse_service(spec.to_dict()) == spec


@pytest.mark.parametrize("change, field", [
    ({"vip": "10.0.0.300"}, "service.vip"),
    ({"port": 0}, "service.port"),
    ({"protocol": "sctp"}, "service.protocol"),
    ({"scheduler": "random"}, "service.scheduler"),
    ({"backends": [{"ip": "10.0.0.2", "weight": -1}]}, "service.backends[0].weight"),
    ({"backends": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.2"}]}, "service.backends[1].ip"),
    ({"backends": [{"ip": "10.0.0.2", "role": "spare"}]}, "service.backends[0].role"),
    ({"backends": [{"addr": "10.0.0.2"}]}, "service.backends[0]"),
    ({"health": {"fall": 0}}, "service.health.fall"),
    ({"health": {"kind": "udp"}}, "service.health.kind"),
    ({"health": {"agent_port": 70000}}, "service.health.agent_port"),
    ({"name": "a b"}, "service.name"),
    ({"vip": "10.0.0.2"}, "service.vip"),
    ({"extra": 1}, "service"),
    ({"adaptive": "yes"}, "service.adaptive"),
    ({"slow_start_ms": -5}, "service.slow_start_ms"),
    ({"drain_timeout_ms": 1.5}, "service.drain_timeout_ms"),
    ({"backends": [{"ip": "10.0.0.2", "max_connections": -1}]},
     "service.backends[0].max_connections"),
])
def test_bad_definitions_name_the_field(change, field):
    with pytest.raises(ValueError) as err:
        parse_service(web(**change))
    assert str(err.value).startswith(field + ":"), str(err.value)


def test_a_services_file_refuses_duplicates():
    assert len(parse_services_file({"services": [web(), web(name="b", port=81)]})) == 2
    with pytest.raises(ValueError, match=r"services\[1\]\.name"):
        parse_services_file([web(), web()])
    with pytest.raises(ValueError, match=r"services\[1\]\.vip"):
        parse_services_file([web(), web(name="b")])
    with pytest.raises(ValueError, match="services_file"):
        parse_services_file({"service": []})


def test_the_table_refuses_a_vip_that_is_a_host_or_a_shared_backend():
    table = ServiceTable()
    table.add(parse_service(web()))
    with pytest.raises(Conflict):
        table.add(parse_service(web()))
    with pytest.raises(Conflict, match="known host"):
        table.add(parse_service(web(name="b", vip="10.0.0.9")), host_ips=["10.0.0.9"])
    with pytest.raises(Conflict, match="already serves"):
        table.add(parse_service(web(name="b", vip="10.0.0.101")))
    table.add(parse_service(web(name="b", vip="10.0.0.101", port=8080,
                                backends=[{"ip": "10.0.0.2", "port": 8080}])))


# -- health -----------------------------------------------------------------------------------

def test_health_rises_and_falls_on_streaks_only():
    health = Health(HealthSpec(rise=2, fall=3))
    assert not health.up
    assert [health.result(True, t) for t in (1, 2)] == [False, True] and health.up
    # a flapping backend: a miss between answers never reaches fall
    for t in range(3, 21):
        assert not health.result(t % 2 == 0, t)
    assert health.up
    assert [health.result(False, t) for t in (21, 22, 23)] == [False, False, True]
    assert not health.up and health.last_change == 23
    assert not health.result(True, 24) and not health.result(False, 25)
    assert not health.result(True, 26) and health.result(True, 27)


# -- slots --------------------------------------------------------------------------------------

def test_slots_follow_weights_within_one_slot():
    for weights in ({"a": 1, "b": 1}, {"a": 1, "b": 3}, {"a": 5, "b": 2, "c": 1},
                    {"a": 1, "b": 0}):
        table = slot_table(weights)
        assert len(table) == SLOTS and None not in table
        counts = collections.Counter(table)
        total = sum(weights.values())
        for owner, weight in weights.items():
            assert abs(counts[owner] - SLOTS * weight / total) <= 1, (weights, counts)
    assert slot_table({}) == [] and slot_table({"a": 0}) == []


def test_a_backend_leaving_moves_its_own_slots_only_and_one_joining_takes_its_share():
    names = ["10.0.0.%d" % i for i in range(2, 8)]
    before = slot_table(dict.fromkeys(names, 1))
    assert slot_table(dict.fromkeys(names, 1)) == before, "deterministic"
    for gone in names:
        after = slot_table(dict.fromkeys([n for n in names if n != gone], 1), before)
        assert [a for a, b in zip(before, after, strict=True) if a != b] == \
            [gone] * before.count(gone)
    joined = slot_table(dict.fromkeys(names + ["10.0.0.8"], 1), before)
    moved = sum(1 for a, b in zip(before, joined, strict=True) if a != b)
    assert moved == joined.count("10.0.0.8") in (SLOTS // 7, SLOTS // 7 + 1)
    # a fresh table (a restarted controller) is balanced too, if not the same one
    fresh = slot_table(dict.fromkeys(names[1:], 1))
    assert max(map(fresh.count, names[1:])) - min(map(fresh.count, names[1:])) <= 1


def test_backups_get_slots_only_while_no_primary_is_up():
    table = ServiceTable()
    service = table.add(parse_service(web()))
    backends = service.backends
    assert service.slots() == [], "nobody answered yet"
    backends["10.0.0.4"].health.up = True
    assert set(service.slots()) == {backends["10.0.0.4"].backend_id}
    backends["10.0.0.2"].health.up = True
    assert set(service.slots()) == {backends["10.0.0.2"].backend_id}
    backends["10.0.0.3"].health.up = True
    counts = collections.Counter(service.slots())
    assert set(counts) == {backends["10.0.0.2"].backend_id, backends["10.0.0.3"].backend_id}
    backends["10.0.0.3"].draining = True
    assert set(service.slots()) == {backends["10.0.0.2"].backend_id}
    service.set_weight("10.0.0.2", 0)
    assert set(service.slots()) == {backends["10.0.0.4"].backend_id}


# -- in the switches (simulated) --------------------------------------------------------------

CLIENTS = ["10.0.0.%d" % i for i in range(5, 17)]


def fabric_with(service_obj, failed=(), hash_split=False):
    """fattree,4 with ECMP, protection and one service whose backends are all up; with
    ``hash_split`` every switch splits by hashing (OpenFlow 1.3 Open vSwitch)."""
    topo, _ = model_of("fattree,4")
    table = ServiceTable()
    service = table.add(parse_service(service_obj))
    for backend in service.backends.values():
        backend.health.up = True
    hops = compute_next_hops(topo, "ecmp")
    splits = frozenset(topo.graph) if hash_split else frozenset()
    plan = build_plan(topo, next_hops=hops, protection=plan_protection(topo.graph, hops),
                      hash_split_switches=splits)
    set_services(topo, plan, table)
    return topo, table, service, plan, dataplane_of(topo, plan, failed=failed)


def set_services(topo, plan, table, active=None, now=None):
    """Put each switch with hosts' service entries in its plan, in place of earlier
    ones (as the Ryu layer does: per switch, so "nearest" has its distances)."""
    def mac_of(ip):
        host = topo.host_by_ip(ip)
        return host.mac if host else None
    for dpid in {h.dpid for h in topo.hosts.values()}:
        entries = table.entries(mac_of, 60, COOKIE, now, active, topo.hops_to_hosts(dpid),
                                dpid)
        for key in plan[dpid].pop("services", ()):
            del plan[dpid][key]
        for flow in entries:
            plan[dpid][flow.key] = flow
        plan[dpid]["services"] = [flow.key for flow in entries]


def dataplane_of(topo, plan, learned_from=None, failed=()):
    """A dataplane for ``plan`` (its service-key list left out) that keeps the
    connections ``learned_from`` learned."""
    clean = {d: {k: v for k, v in e.items() if k != "services"} for d, e in plan.items()}
    dataplane = FakeDataplane(topo, clean, failed)
    if learned_from is not None:
        dataplane.tables.update({k: v for k, v in learned_from.tables.items()
                                 if k[1] == TABLE_CONNECTIONS})
    return dataplane


def connect(topo, dataplane, client_ip, sport, vip="10.0.0.100", port=80):
    client = topo.host_by_ip(client_ip)
    return dataplane.inject(client.dpid, client.port, client.mac, vip_mac(vip),
                            ipv4_src=client_ip, ipv4_dst=vip, ip_proto=6,
                            tcp_src=sport, tcp_dst=port)


def reached(topo, result):
    """The backend IP a connection's frame reached, checking it was rewritten to it
    (along every path a multipath split may send it, the same frame to one host)."""
    arrivals = {(dpid, port, tuple(sorted(header.items())))
                for dpid, port, header in result.frames}
    assert len(arrivals) == 1 and not result.to_controller, result
    dpid, port, header = result.frames[0]
    host = topo.host_by_ip(header["ipv4_dst"])
    assert (host.dpid, host.port) == (dpid, port) and header["eth_dst"] == host.mac
    return header["ipv4_dst"]


@pytest.mark.parametrize("hash_split", [False, True])
def test_connections_reach_backends_by_weight_and_replies_come_from_the_vip(hash_split):
    topo, table, service, plan, dataplane = fabric_with(web(
        backends=[{"ip": "10.0.0.2", "weight": 1}, {"ip": "10.0.0.3", "weight": 3,
                                                    "port": 8080}]), hash_split=hash_split)
    counts = collections.Counter()
    for client_ip, sport in itertools.product(CLIENTS, range(40000, 40050)):
        result = connect(topo, dataplane, client_ip, sport)
        backend = reached(topo, result)
        counts[backend] += 1
        header = result.frames[0][2]
        assert header["tcp_dst"] == (8080 if backend == "10.0.0.3" else 80)
        # the backend's reply, sent to the client from its own address and port
        server, client = topo.host_by_ip(backend), topo.host_by_ip(client_ip)
        reply = dataplane.inject(server.dpid, server.port, server.mac, client.mac,
                                 ipv4_src=backend, ipv4_dst=client_ip, ip_proto=6,
                                 tcp_src=header["tcp_dst"], tcp_dst=sport)
        assert {(d, p) for d, p, _ in reply.frames} == {(client.dpid, client.port)}
        back = reply.frames[0][2]
        assert (back["ipv4_src"], back["tcp_src"], back["eth_src"]) == (
            "10.0.0.100", 80, vip_mac("10.0.0.100"))
    share = counts["10.0.0.3"] / sum(counts.values())
    assert abs(share - 0.75) < 0.05, counts


def test_an_established_connection_keeps_its_backend_when_the_pool_changes():
    topo, table, service, plan, dataplane = fabric_with(web(backends=[
        {"ip": "10.0.0.%d" % i} for i in (2, 3, 4)]))
    first = {(c, s): reached(topo, connect(topo, dataplane, c, s))
             for c, s in itertools.product(CLIENTS, range(40000, 40010))}
    # 10.0.0.3 drains, 10.0.0.4 is re-weighted and a fourth backend joins
    service.backends["10.0.0.3"].draining = True
    service.set_weight("10.0.0.4", 5)
    table.add_backend("web", parse_service(web(backends=[{"ip": "10.0.0.1"}])).backends[0])
    service.backends["10.0.0.1"].health.up = True
    set_services(topo, plan, table)
    fresh = dataplane_of(topo, plan, learned_from=dataplane)
    assert {(c, s): reached(topo, connect(topo, fresh, c, s)) for c, s in first} == first
    new = collections.Counter(reached(topo, connect(topo, fresh, c, s))
                              for c, s in itertools.product(CLIENTS, range(41000, 41040)))
    assert "10.0.0.3" not in new and new["10.0.0.4"] > new["10.0.0.2"] and new["10.0.0.1"]


def test_source_hash_sends_a_client_to_one_backend_whatever_its_ports():
    topo, table, service, plan, dataplane = fabric_with(web(scheduler="source_hash",
                                                            backends=[{"ip": "10.0.0.2"},
                                                                      {"ip": "10.0.0.3"}]))
    seen = collections.defaultdict(set)
    for client_ip, sport in itertools.product(CLIENTS, range(40000, 40020)):
        seen[client_ip].add(reached(topo, connect(topo, dataplane, client_ip, sport)))
    assert all(len(backends) == 1 for backends in seen.values()), seen
    assert len(set().union(*seen.values())) == 2, "clients spread over both"


def test_a_service_survives_a_failed_link_and_no_slots_means_no_delivery():
    topo, _ = model_of("fattree,4")
    cut = next(lk for lk in topo.links() if lk.src >> 16 == 3)
    topo2, table, service, plan, dataplane = fabric_with(
        web(backends=[{"ip": "10.0.0.2"}]), failed=[(cut.src, cut.src_port),
                                                    (cut.dst, cut.dst_port)])
    for client_ip in CLIENTS:
        assert reached(topo2, connect(topo2, dataplane, client_ip, 40000)) == "10.0.0.2"
    service.backends["10.0.0.2"].health.up = False
    set_services(topo2, plan, table)
    result = connect(topo2, dataplane_of(topo2, plan), CLIENTS[0], 40001)
    assert not result.frames and not result.to_controller


def test_health_answers_to_the_vip_go_to_the_controller():
    topo, table, service, plan, dataplane = fabric_with(web())
    server = topo.host_by_ip("10.0.0.2")
    answer = dataplane.inject(server.dpid, server.port, server.mac, vip_mac("10.0.0.100"),
                              ipv4_src="10.0.0.2", ipv4_dst="10.0.0.100", ip_proto=6,
                              tcp_src=80, tcp_dst=50000)
    assert answer.to_controller and not answer.frames


# -- schedulers, slow start, draining ---------------------------------------------------------

def up_service(**changes):
    table = ServiceTable()
    service = table.add(parse_service(web(**changes)))
    for backend in service.backends.values():
        backend.health.up = True
    return table, service


def test_least_conn_evens_connections_per_weight_and_equals_take_turns():
    table, service = up_service(scheduler="least_conn", backends=[
        {"ip": "10.0.0.2", "weight": 1}, {"ip": "10.0.0.3", "weight": 3}])
    ids = {ip: b.backend_id for ip, b in service.backends.items()}
    active = collections.Counter()
    for _ in range(400):  # held connections: each choice sees the ones before it
        active[service.least_conn(active).backend_id] += 1
    assert active == {ids["10.0.0.2"]: 100, ids["10.0.0.3"]: 300}
    active[ids["10.0.0.3"]] -= 60  # 60 of the busy one's connections end
    picks = collections.Counter(service.least_conn(active).spec.ip for _ in range(20))
    assert picks == {"10.0.0.3": 20}, "the emptier one (per weight) takes new ones"
    service.set_weight("10.0.0.3", 1)
    turns = [service.least_conn({}).spec.ip for _ in range(4)]
    assert sorted(turns) == ["10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.3"], turns
    capped = service.backends["10.0.0.2"]
    capped.spec = dataclasses.replace(capped.spec, max_connections=5)
    assert service.least_conn({ids["10.0.0.2"]: 5, ids["10.0.0.3"]: 50}).spec.ip == \
        "10.0.0.3", "a backend at its cap takes no more while another does"


def test_least_conn_sends_first_frames_to_the_controller_which_runs_a_slots_steps():
    topo, table, service, plan, dataplane = fabric_with(web(scheduler="least_conn"))
    result = connect(topo, dataplane, CLIENTS[0], 40000)
    assert result.to_controller and not result.frames
    assert not any(flow.table == TABLE_SLOTS and flow.priority > 0
                   for flow in plan[topo.host_by_ip(CLIENTS[0]).dpid].values()
                   if hasattr(flow, "table"))
    wrr = ServiceTable()
    wrr.add(parse_service(web()))
    for backend in wrr.get("web").backends.values():
        backend.health.up = True
    slot_steps = {flow.actions for flow in wrr.entries(lambda ip: None, 60, COOKIE)
                  if flow.table == TABLE_SLOTS and flow.priority > 0}
    assert {placement(service.spec, b.backend_id, 60, COOKIE)
            for b in wrr.get("web").backends.values()} >= slot_steps


def test_nearest_keeps_clients_near_their_backend_and_spills_over_at_its_cap():
    topo, _ = model_of("fattree,4")
    far = topo.host_by_ip(CLIENTS[-1])  # another pod than 10.0.0.2's
    assert topo.hops_to_hosts(far.dpid)("10.0.0.2") == 4
    clients = CLIENTS[:-1]
    service_obj = web(scheduler="nearest", backends=[
        {"ip": "10.0.0.2", "weight": 1, "max_connections": 10}, {"ip": far.ips[0],
                                                                 "weight": 1}])
    topo, table, service, plan, dataplane = fabric_with(service_obj)
    by_client = collections.defaultdict(collections.Counter)
    for client_ip, sport in itertools.product(clients, range(40000, 40020)):
        by_client[client_ip][reached(topo, connect(topo, dataplane, client_ip, sport))] += 1
    hops = {ip: {b: topo.hops_to_hosts(topo.host_by_ip(ip).dpid)(b) for b in
                 service.backends} for ip in clients}
    for client_ip, counts in by_client.items():
        fewest = min(hops[client_ip].values())
        assert {b for b in counts} == {b for b, h in hops[client_ip].items() if h == fewest}
    assert any(len(c) == 1 for c in by_client.values()), "some client has one nearest"
    # 10.0.0.2 at its cap: even the clients beside it go to the other backend
    full = {service.backends["10.0.0.2"].backend_id: 10}
    set_services(topo, plan, table, active=full)
    fresh = dataplane_of(topo, plan)
    assert {reached(topo, connect(topo, fresh, ip, 41000)) for ip in clients} == {far.ips[0]}


def test_slow_start_ramps_a_backend_that_comes_up_into_a_live_pool():
    spec = {"kind": "tcp", "interval_ms": 100, "rise": 1, "fall": 1}
    table, service = up_service(slow_start_ms=1000, health=spec, backends=[
        {"ip": "10.0.0.2", "weight": 2}, {"ip": "10.0.0.3", "weight": 2}])
    for backend in service.backends.values():
        backend.health.up = False
    assert service.health_result("10.0.0.2", True, 0.0)  # first up: a pool of one
    assert service.eligible(0.5) == {"10.0.0.2": 2}
    assert service.health_result("10.0.0.3", True, 10.0)  # joins a live pool
    ramp = [service.eligible(10.0 + t)["10.0.0.3"] for t in (0.0, 0.25, 0.55, 0.99, 1.0)]
    assert ramp == pytest.approx([0.2, 0.6, 1.2, 2.0, 2.0])
    slots = collections.Counter(service.slots(10.0))
    assert slots[service.backends["10.0.0.3"].backend_id] == round(61 * 0.2 / 2.2)
    assert service.health_result("10.0.0.3", False, 12.0)  # down, then up again: ramps
    assert service.health_result("10.0.0.3", True, 13.0)
    assert service.eligible(13.0)["10.0.0.3"] == pytest.approx(0.2)


def test_a_draining_backend_leaves_when_its_connections_end_or_at_the_timeout():
    table, service = up_service(drain_timeout_ms=5000)
    ids = {ip: b.backend_id for ip, b in service.backends.items()}
    service.set_draining("10.0.0.2", True)
    service.set_draining("10.0.0.3", True)
    active = {ids["10.0.0.2"]: 4, ids["10.0.0.3"]: 0}
    assert table.drained(active, counted_at=0.5, now=1.0) == [], \
        "a count asked for before the drain was seen proves nothing"
    assert table.drained(active, counted_at=1.5, now=2.0) == [
        ("web", "10.0.0.3", "connections ended")]
    assert table.drained(active, counted_at=5.0, now=6.0) == [
        ("web", "10.0.0.2", "drain timeout"), ("web", "10.0.0.3", "connections ended")]
    service.set_draining("10.0.0.2", False)
    assert [ip for _, ip, _ in table.drained(active, 7.0, 7.0)] == ["10.0.0.3"]


def test_source_hash_moves_about_one_nth_of_clients_when_a_backend_leaves():
    table, service = up_service(scheduler="source_hash", backends=[
        {"ip": "10.0.0.%d" % i} for i in range(2, 7)])
    clients = ["10.%d.%d.%d" % (a, b, c) for a in (1, 2) for b in range(20) for c in
               range(1, 51)]

    def owners():
        slots = service.slots()
        return {c: slots[slot_of({"ipv4_src": c}, SLOTS, "src")] for c in clients}
    before = owners()
    gone = service.backends["10.0.0.4"].backend_id
    service.backends["10.0.0.4"].health.up = False
    after = owners()
    moved = sum(before[c] != after[c] for c in clients) / len(clients)
    assert all(after[c] == before[c] for c in clients if before[c] != gone)
    assert moved <= 1 / 5 + 0.05, moved


def test_the_shared_slot_table_survives_forgetting_switches_that_left():
    table, service = up_service(backends=[{"ip": "10.0.0.%d" % i} for i in (2, 3, 4)])
    before = service.slots()
    service.forget_places({0x20101, 0x20102})  # as the Ryu layer does on every rebuild
    gone = service.backends["10.0.0.3"].backend_id
    service.backends["10.0.0.3"].health.up = False
    after = service.slots()
    assert all(b == a for b, a in zip(before, after, strict=True) if b != gone)


def test_adaptive_weights_turn_new_connections_away_from_a_loaded_backend():
    table, service = up_service(adaptive=True, backends=[
        {"ip": "10.0.0.2", "weight": 1}, {"ip": "10.0.0.3", "weight": 1}])
    slow, fast = (service.backends[ip] for ip in ("10.0.0.2", "10.0.0.3"))
    no_rate = {}
    # a slow backend's connections pile up: 30 active against 10 at equal weights
    active = {slow.backend_id: 30, fast.backend_id: 10}
    assert service.adapt(active, no_rate, now=0.0, threshold=0.05, hold=5.0)
    assert slow.load_factor < 1.0 == fast.load_factor
    assert service.eligible()["10.0.0.2"] < service.eligible()["10.0.0.3"]
    first = slow.load_factor
    assert not service.adapt(active, no_rate, now=2.0, threshold=0.05, hold=5.0), "hold"
    assert service.adapt(active, no_rate, now=6.0, threshold=0.05, hold=5.0)
    assert slow.load_factor < first, "still above its share: lower again"
    # loads even out at these factors: an equilibrium, nothing moves
    even = {slow.backend_id: 20, fast.backend_id: 20}
    held = slow.load_factor
    assert not service.adapt(even, no_rate, now=12.0, threshold=0.05, hold=5.0)
    assert slow.load_factor == held
    # it stops being slow: with fewer new connections its load falls under its share,
    # and its factor climbs back to its full weight
    light = {slow.backend_id: 5, fast.backend_id: 20}
    for t in range(18, 200, 6):
        service.adapt(light, no_rate, now=float(t), threshold=0.05, hold=5.0)
    assert slow.load_factor == 1.0 and fast.load_factor < 1.0
    # a hot backend (more traffic at equal connections) gets less as well
    slow.load_factor = fast.load_factor = 1.0
    hot = {"10.0.0.2": 9e6, "10.0.0.3": 1e6}
    assert service.adapt(even, hot, now=500.0, threshold=0.05, hold=5.0)
    assert slow.load_factor < fast.load_factor
    # too little load to judge, or a service that is not adaptive: nothing changes
    assert not service.adapt({slow.backend_id: 3}, {}, now=600.0, threshold=0.05, hold=5.0)
    _, fixed = up_service()
    assert not fixed.adapt(active, no_rate, now=0.0, threshold=0.05, hold=5.0)


def test_adaptive_factors_never_starve_a_backend():
    table, service = up_service(adaptive=True, backends=[
        {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}])
    ids = [b.backend_id for b in service.backends.values()]
    for t in range(0, 600, 6):
        service.adapt({ids[0]: 1000, ids[1]: 1}, {}, float(t), 0.01, 5.0)
    assert min(b.load_factor for b in service.backends.values()) >= 0.1
    assert ids[0] in service.slots(), "the loaded backend still has a slot or more"


def test_the_slots_are_rebuilt_when_a_ramp_steps_or_a_cap_is_reached():
    table, service = up_service(slow_start_ms=1000, backends=[
        {"ip": "10.0.0.2"}, {"ip": "10.0.0.3", "max_connections": 5}])
    capped = service.backends["10.0.0.3"]
    steady = table.slot_inputs(0.0, {})
    assert table.slot_inputs(9.0, {}) == steady, "nothing ramps, nothing is full"
    assert table.slot_inputs(0.0, {capped.backend_id: 5}) != steady
    capped.health.up = False
    assert not service.health_result("10.0.0.3", True, 9.9)  # rise 2: one answer ...
    assert service.health_result("10.0.0.3", True, 10.0)  # ... then up, into a live pool
    ramping = [table.slot_inputs(10.0 + t, {}) for t in (0.0, 0.05, 0.15, 2.0, 3.0)]
    assert ramping[0] == ramping[1] != ramping[2], "a tenth of the ramp later"
    assert ramping[3] == ramping[4], "ramp over"
