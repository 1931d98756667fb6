"""The OpenFlow codec, checked against Ryu's own wire encoders for 1.3 and 1.5."""

import struct
from types import SimpleNamespace

import pytest
from ryu.lib.packet import packet
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser, ofproto_v1_5, ofproto_v1_5_parser
from shipped_topologies import model_of

from sdn_app.core.pipeline import SELECT, Bucket, FlowEntry, GroupEntry, stream_entry
from sdn_app.core.plan import build_plan
from sdn_app.core.protection import plan_protection
from sdn_app.core.services import ServiceTable, parse_service
from sdn_app.core.te import compute_next_hops
from sdn_app.ryuapp import codec

VERSIONS = {
    "1.3": (ofproto_v1_3, ofproto_v1_3_parser),
    "1.5": (ofproto_v1_5, ofproto_v1_5_parser),
}


def datapath(version):
    ofp, parser = VERSIONS[version]
    return SimpleNamespace(id=1, ofproto=ofp, ofproto_parser=parser)


def as_reported_by_switch(dp, mod):
    """What a flow-stats entry for this FlowMod looks like once parsed off the wire."""
    buf = bytearray()
    mod.match.serialize(buf, 0)
    match = dp.ofproto_parser.OFPMatch.parser(bytes(buf), 0)
    return SimpleNamespace(table_id=mod.table_id, priority=mod.priority, match=match,
                           instructions=mod.instructions, idle_timeout=mod.idle_timeout,
                           hard_timeout=mod.hard_timeout, flags=mod.flags)


def assert_read_back_equal(dp, flows):
    """Each entry, encoded, then read back with its instructions parsed off the wire,
    equals the planned one."""
    for flow in flows:
        mod = codec.flow_mod(dp, flow, cookie=7)
        mod.serialize()
        reported = as_reported_by_switch(dp, mod)
        wire = []
        for inst in mod.instructions:
            buf = bytearray()
            inst.serialize(buf, 0)
            wire.append(type(inst).parser(bytes(buf), 0))
        reported.instructions = wire
        assert codec.flow_entry_from_stats(dp, reported) == flow


@pytest.mark.parametrize("version", VERSIONS)
def test_every_planned_entry_survives_the_round_trip(version):
    dp = datapath(version)
    topo, _ = model_of("leafspine,2,2,2")
    plan = build_plan(topo, host_idle_timeout=60, admission_ports=(9100, 9101))
    flows = [f for entries in plan.values() for f in entries.values()
             if isinstance(f, FlowEntry)]
    assert len(flows) > 20
    stream = dict(ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2", udp_src=40000, udp_dst=9100)
    flows += [stream_entry(stream, True, 10), stream_entry(stream, False, 5)]
    for flow in flows:
        mod = codec.flow_mod(dp, flow, cookie=7)
        mod.serialize()  # must encode
        assert codec.flow_entry_from_stats(dp, as_reported_by_switch(dp, mod)) == flow


@pytest.mark.parametrize("version", VERSIONS)
def test_delete_is_strict_and_cookie_scoped(version):
    dp = datapath(version)
    topo, _ = model_of("diamond")
    flow = next(iter(build_plan(topo)[0x10101].values()))
    mod = codec.flow_mod(dp, flow, cookie=7, delete=True)
    assert mod.command == dp.ofproto.OFPFC_DELETE_STRICT
    assert (mod.cookie, mod.cookie_mask) == (7, 2**64 - 1)
    everything = codec.delete_all_flows(dp, cookie=7)
    assert (everything.cookie_mask, everything.table_id) == (2**64 - 1, dp.ofproto.OFPTT_ALL)


@pytest.mark.parametrize("version", VERSIONS)
def test_packet_out_and_requests_encode(version):
    dp = datapath(version)
    for msg in (codec.packet_out(dp, [1, 2], b"\x00" * 60),
                codec.port_desc_request(dp),
                codec.flow_stats_request(dp, cookie=7),
                codec.flow_stats_request(dp, cookie=7, table=1),
                codec.aggregate_request(dp, cookie=7, table=3),
                codec.aggregate_request(dp, cookie=7, table=4, match={
                    "eth_type": 0x800, "ip_proto": 6, "reg2": 3, "reg3": 0,
                    "tcp_flags": (0x002, 0x012)}),
                codec.delete_flows(dp, cookie=7, table=3),
                codec.packet_out_steps(dp, 2, (("set_reg", 3, 5), ("resubmit", 4)),
                                       b"\x00" * 60)):
        msg.serialize()


@pytest.mark.parametrize("version", VERSIONS)
def test_counts_are_read_from_either_versions_aggregate_reply(version):
    dp = datapath(version)
    parser = dp.ofproto_parser
    if version == "1.3":
        body = parser.OFPAggregateStats(packet_count=9, byte_count=900, flow_count=5)
    else:
        body = parser.OFPAggregateStats(stats=parser.OFPStats(flow_count=5, packet_count=9))
    assert codec.aggregate_counts(SimpleNamespace(body=body)) == (5, 9)


def test_foreign_actions_never_equal_a_planned_entry():
    dp = datapath("1.3")
    parser = dp.ofproto_parser
    stat = SimpleNamespace(
        table_id=1, priority=100, match=parser.OFPMatch(eth_dst="00:00:00:00:00:01"),
        instructions=[parser.OFPInstructionActions(dp.ofproto.OFPIT_APPLY_ACTIONS,
                                                   [parser.OFPActionSetField(vlan_vid=5)])],
        idle_timeout=0, hard_timeout=0, flags=0)
    flow = codec.flow_entry_from_stats(dp, stat)
    assert flow.actions[0][0] == "other"


def test_lldp_frames_round_trip_and_foreign_lldp_is_ignored():
    key = b"k" * 32
    frame = codec.lldp_frame(0x30401, 3, "02:00:00:00:00:09", 1234.5, key)
    assert codec.parse_lldp(packet.Packet(frame), key) == (0x30401, 3, 1234.5, True)
    from ryu.lib.packet import ethernet, lldp
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=lldp.LLDP_MAC_NEAREST_BRIDGE,
                                       src="02:00:00:00:00:01", ethertype=0x88CC))
    pkt.add_protocol(lldp.lldp(tlvs=[
        lldp.ChassisID(subtype=lldp.ChassisID.SUB_MAC_ADDRESS, chassis_id=b"\x02" * 6),
        lldp.PortID(subtype=lldp.PortID.SUB_INTERFACE_NAME, port_id=b"eth0"),
        lldp.TTL(ttl=120), lldp.End()]))
    pkt.serialize()
    assert codec.parse_lldp(packet.Packet(bytes(pkt.data))) is None


@pytest.mark.parametrize("version", VERSIONS)
def test_ports(version):
    dp = datapath(version)
    ofp, parser = VERSIONS[version]
    if version == "1.3":
        def port(no, state=0, config=0):
            return parser.OFPPort(no, "02:00:00:00:00:01", b"s1-eth1", config, state,
                                  0, 0, 0, 0, 10_000_000, 0)
    else:
        def port(no, state=0, config=0):
            prop = parser.OFPPortDescPropEthernet(curr_speed=10_000_000)
            return parser.OFPPort(no, 0, "02:00:00:00:00:01", b"s1-eth1", config, state,
                                  [prop])
    p = codec.parse_port(dp, port(1))
    assert (p.port_no, p.name, p.live, p.speed_bps) == (1, "s1-eth1", True, 10_000_000_000)
    assert codec.parse_port(dp, port(2, state=ofp.OFPPS_LINK_DOWN)).live is False
    assert codec.parse_port(dp, port(3, config=ofp.OFPPC_PORT_DOWN)).live is False
    assert codec.parse_port(dp, port(ofp.OFPP_LOCAL)) is None


def test_v15_group_mod_carries_dp_hash_and_weights_on_the_wire():
    """Checked on the bytes: Ryu 4.34's own OF1.5 bucket parser loops forever."""
    dp = datapath("1.5")
    ofp = dp.ofproto
    mod = codec.group_mod(dp, GroupEntry(0x10104, SELECT, (
        Bucket((("output", 2),), weight=1), Bucket((("output", 3),), weight=4))))
    mod.serialize()
    data = bytes(mod.buf)
    command, type_, group_id = struct.unpack_from("!HBxI", data, 8)
    assert (command, type_, group_id) == (codec.OFPGC_ADD_OR_MOD, ofp.OFPGT_SELECT, 0x10104)
    selection = (struct.pack("!HHII", ofp.OFPGPT_EXPERIMENTER, 40, 0x154D, 1) + b"\0" * 4
                 + b"dp_hash".ljust(16, b"\0") + b"\0" * 8)
    assert data.endswith(selection)
    for weight in (1, 4):
        assert struct.pack("!HHH2x", ofp.OFPGBPT_WEIGHT, 8, weight) in data


def test_v13_group_mod_and_deletes_encode():
    dp = datapath("1.3")
    group = GroupEntry(7, SELECT, (Bucket((("output", 1),), weight=3),
                                   Bucket((("output", 2),), weight=1)))
    mod = codec.group_mod(dp, group)
    mod.serialize()
    assert [b.weight for b in mod.buckets] == [3, 1]
    for version in VERSIONS:
        gone = codec.group_mod(datapath(version), group, delete=True)
        gone.serialize()
        assert gone.command == datapath(version).ofproto.OFPGC_DELETE


@pytest.mark.parametrize("version", VERSIONS)
def test_group_label_and_rewrite_entries_round_trip(version):
    dp = datapath(version)
    topo, _ = model_of("diamond")
    plan = build_plan(topo, next_hops=compute_next_hops(topo, "ecmp"))
    flows = [f for f in plan[0x10101].values() if isinstance(f, FlowEntry)]
    assert any(f.actions[0][0] == "group" for f in flows)
    assert any(f.actions[0][0] == "set_field" for f in flows)  # ingress entries
    assert any(f.match and isinstance(f.match[0][1], tuple) for f in flows)  # label entries
    for flow in flows:
        mod = codec.flow_mod(dp, flow, cookie=7)
        mod.serialize()
        assert codec.flow_entry_from_stats(dp, as_reported_by_switch(dp, mod)) == flow


@pytest.mark.parametrize("version", VERSIONS)
def test_failover_groups_with_tagged_detours_encode(version):
    dp = datapath(version)
    topo, _ = model_of("ring,5")
    hops = compute_next_hops(topo, "shortest")
    plan = build_plan(topo, next_hops=hops, protection=plan_protection(topo.graph, hops))
    groups = [g for entries in plan.values() for g in entries.values()
              if isinstance(g, GroupEntry)]
    assert groups and any(any(a[0] == "push_vlan" for a in b.actions)
                          for g in groups for b in g.buckets)
    for group in groups:
        mod = codec.group_mod(dp, group)
        mod.serialize()
        data = bytes(mod.buf)
        assert struct.pack("!BB", dp.ofproto.OFPGT_FF, 0) in data


@pytest.mark.parametrize("version", VERSIONS)
def test_in_port_is_cleared_in_the_encoding_ovs_accepts(version):
    """1.3: Nicira reg_load of NXM_OF_IN_PORT; 1.5: set_field on that 16-bit field (OVS
    refuses reg_load there, and a 0 on the 32-bit OXM in_port)."""
    dp = datapath(version)
    mod = codec.group_mod(dp, GroupEntry(7, "ff", (Bucket(
        (("clear_in_port",), ("output", 3)), watch_port=3),)))
    mod.serialize()
    data = bytes(mod.buf)
    if version == "1.5":
        # OFPAT_SET_FIELD, length 16, NXM_OF_IN_PORT header (class 0, field 0, 2 bytes), 0
        assert bytes.fromhex("0019001000000002" + "0000") in data
    else:
        # NXAST_REG_LOAD (subtype 7) with dst NXM_OF_IN_PORT and value 0
        assert bytes.fromhex("ffff0018" + "00002320" + "0007") in data
        assert bytes.fromhex("00000002" + "0000000000000000") in data


def test_hash_split_entries_survive_the_wire_round_trip():
    """Split entries (OpenFlow 1.3 Open vSwitch) read back equal, instructions parsed
    off the wire, so a restarted controller does not rewrite them."""
    dp = datapath("1.3")
    topo, _ = model_of("leafspine,2,2,2")
    hops = compute_next_hops(topo, "ecmp")
    plan = build_plan(topo, host_idle_timeout=60, next_hops=hops,
                      protection=plan_protection(topo.graph, hops),
                      hash_split_switches=frozenset(topo.graph))
    flows = [f for entries in plan.values() for f in entries.values()
             if isinstance(f, FlowEntry)]
    names = {step[0] for f in flows for step in f.actions}
    assert {"set_reg", "hash_split"} <= names
    assert_read_back_equal(dp, flows)


@pytest.mark.parametrize("version", VERSIONS)
def test_service_entries_survive_the_wire_round_trip(version):
    """Rewrites, resubmits, slot hashes and learn actions read back equal, parsed off the
    wire, so the reconciler does not resend a service's entries at every poll."""
    dp = datapath(version)
    topo, _ = model_of("leafspine,2,2,2")
    table = ServiceTable()
    for name, scheduler, port in (("web", "wrr", 80), ("dns", "source_hash", 53),
                                  ("near", "nearest", 81), ("lc", "least_conn", 82)):
        service = table.add(parse_service({
            "name": name, "vip": "10.0.0.100", "port": port,
            "protocol": "udp" if port == 53 else "tcp", "scheduler": scheduler,
            "backends": [{"ip": "10.0.0.2", "port": 8000 + port}, {"ip": "10.0.0.3"}]}))
        for backend in service.backends.values():
            backend.health.up = True
    macs = {ip: h.mac for h in topo.hosts.values() for ip in h.ips}
    flows = table.entries(macs.get, 60, 0x5DA0_0000_0000_0001)
    names = {step[0] for f in flows for step in f.actions}
    assert {"set_field", "resubmit", "hash_slots", "learn_connection"} <= names
    assert_read_back_equal(dp, flows)


def test_ryus_ofctl_can_show_a_split_entry():
    """ryu.app.ofctl_rest renders flows with ryu.lib.ofctl_v1_3; it must not fail on the
    multipath action a switch reports back (it answered 501 before codec's shim, as
    NX_UNKNOWN it shows the action's bytes)."""
    import base64

    from ryu.lib import ofctl_v1_3
    from ryu.ofproto import nicira_ext
    dp = datapath("1.3")
    actions = codec._actions(dp, (("set_reg", 1, 7), ("hash_split", 5)))
    inst = dp.ofproto_parser.OFPInstructionActions(dp.ofproto.OFPIT_APPLY_ACTIONS, actions)
    buf = bytearray()
    inst.serialize(buf, 0)
    parsed = type(inst).parser(bytes(buf), 0).actions
    shown = [ofctl_v1_3.action_to_str(act) for act in parsed]
    assert shown[0] == "SET_FIELD: {reg1:7}"
    assert shown[1].startswith("NX_UNKNOWN: {subtype: %d," % nicira_ext.NXAST_MULTIPATH)
    body = base64.b64decode(shown[1].split("data: ")[1].rstrip("}"))
    assert body[:2] == b"\x00\x03"  # multipath's body begins with its hash fields


def test_an_lldp_probe_is_proven_only_with_our_key_and_unaltered():
    """A host that captured one of our probes can replay it but not forge another: a
    different key (another run), or a changed port, dpid or send time fails the proof."""
    key = b"k" * 32
    frame = codec.lldp_frame(0x30401, 3, "02:00:00:00:00:09", 1234.5, key)
    assert codec.parse_lldp(packet.Packet(frame), b"x" * 32)[3] is False
    unsigned = codec.lldp_frame(0x30401, 3, "02:00:00:00:00:09", 1234.5, b"")
    assert codec.parse_lldp(packet.Packet(unsigned), key)[3] is False
    import struct
    port_field = struct.pack("!I", 3)
    at = frame.index(port_field)
    for altered in (frame[:at] + struct.pack("!I", 4) + frame[at + 4:],
                    frame.replace(struct.pack("!d", 1234.5), struct.pack("!d", 1299.5)),
                    frame.replace(b"%016x" % 0x30401, b"%016x" % 0x30402)):
        parsed = codec.parse_lldp(packet.Packet(altered), key)
        assert parsed is not None and parsed[3] is False
