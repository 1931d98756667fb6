"""A switch session (ryuapp/session.py) on a fake datapath that encodes with Ryu's real
OpenFlow 1.3 parser: what a connection asks for, how multipart replies are collected,
demand from counting entries, barriers."""

from types import SimpleNamespace

import pytest
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser, ofproto_v1_5, ofproto_v1_5_parser

from sdn_app.core.pipeline import (
    FAST_FAILOVER,
    PACKET_IN_METER,
    Bucket,
    GroupEntry,
    egress_entry,
    ingress_entry,
    label_entry,
    label_mac,
    port_meter_id,
    port_of_meter,
)
from sdn_app.core.settings import Settings
from sdn_app.ryuapp import codec
from sdn_app.ryuapp.session import SwitchSession

OFP, PARSER = ofproto_v1_3, ofproto_v1_3_parser
VERSIONS = {"1.3": (ofproto_v1_3, ofproto_v1_3_parser), "1.5": (ofproto_v1_5, ofproto_v1_5_parser)}
COOKIE = Settings().cookie
H1, H2 = "00:00:00:00:00:01", "00:00:00:00:00:02"


class FakeDatapath:
    """What a session uses of ryu.controller.Datapath: ids, parsers, send_msg (which
    numbers a message as Ryu's does) and set_xid."""

    def __init__(self):
        self.id = 0x10101
        self.ofproto, self.ofproto_parser = OFP, PARSER
        self.sent = []
        self._xid = 0

    def set_xid(self, msg):
        self._xid += 1
        msg.set_xid(self._xid)

    def send_msg(self, msg):
        if msg.xid is None:
            self.set_xid(msg)
        msg.serialize()  # must encode
        self.sent.append(msg)


def reply(body, more=False, xid=None):
    return SimpleNamespace(body=body, flags=OFP.OFPMPF_REPLY_MORE if more else 0, xid=xid)


def port(no):
    return PARSER.OFPPort(no, "00:00:00:00:01:%02x" % (no & 0xFF), b"s1-eth%d" % no, 0, 0,
                          0, 0, 0, 0, 10_000_000, 0)


def stat(flow, cookie=COOKIE, byte_count=0):
    mod = PARSER.OFPFlowMod(None, table_id=flow.table, priority=flow.priority,
                            match=PARSER.OFPMatch(**dict(flow.match)), instructions=[
                                PARSER.OFPInstructionActions(OFP.OFPIT_APPLY_ACTIONS,
                                                             [PARSER.OFPActionOutput(2)])])
    return SimpleNamespace(table_id=mod.table_id, priority=mod.priority, match=mod.match,
                           instructions=mod.instructions, idle_timeout=0, hard_timeout=0, flags=0,
                           cookie=cookie, byte_count=byte_count)


def new_session():
    dp = FakeDatapath()
    return dp, SwitchSession(dp, Settings(), now=5.0)


def test_a_new_session_sets_the_packet_in_meter_then_asks_what_the_switch_holds():
    dp, session = new_session()
    kinds = [type(m).__name__ for m in dp.sent]
    assert kinds == ["OFPMeterMod", "OFPMeterMod", "OFPDescStatsRequest",
                     "OFPPortDescStatsRequest", "OFPFlowStatsRequest"]
    add, modify = dp.sent[:2]
    assert (add.command, modify.command) == (OFP.OFPMC_ADD, OFP.OFPMC_MODIFY)
    settings = Settings()
    for mod in (add, modify):
        assert mod.meter_id == PACKET_IN_METER and mod.flags & OFP.OFPMF_PKTPS
        assert [(b.rate, b.burst_size) for b in mod.bands] == [
            (settings.packet_in_rate, settings.packet_in_burst)]
    assert dp.sent[4].cookie == COOKIE and dp.sent[4].cookie_mask == 2**64 - 1
    assert session.readback_xid == dp.sent[4].xid
    assert session.tables.installed is None  # nothing is sent until the read-back is in


def test_packet_in_drops_are_news_only_once_and_only_from_this_run():
    _, fresh = new_session()  # connected at 5.0; its meter is as old as the connection
    m = PACKET_IN_METER
    assert fresh.new_packet_in_drops(m, 7, meter_age=2.0, now=7.0) == 7
    assert fresh.new_packet_in_drops(m, 7, meter_age=3.0, now=8.0) == 0
    assert fresh.new_packet_in_drops(m, 10, meter_age=4.0, now=9.0) == 3
    assert fresh.new_packet_in_drops(m, 2, meter_age=0.5, now=10.0) == 2  # made again
    port = port_meter_id(3)  # each meter counts on its own
    assert fresh.new_packet_in_drops(port, 4, meter_age=5.0, now=10.0) == 4
    assert fresh.new_packet_in_drops(m, 2, meter_age=1.5, now=11.0) == 0
    _, taken_over = new_session()  # the meter an earlier run set, an hour ago
    assert taken_over.new_packet_in_drops(m, 5000, meter_age=3600.0, now=7.0) == 0
    assert taken_over.new_packet_in_drops(m, 5004, meter_age=3601.0, now=8.0) == 4


def test_each_port_gets_its_packet_in_meter_once_per_connection_and_again_on_takeover():
    dp, session = new_session()
    settings = Settings(packet_in_port_rate=30, packet_in_port_burst=40)
    dp.sent.clear()
    session.meter_ports(settings, [2, 1])
    session.meter_ports(settings, [1, 2, 3])  # only the new one
    mods = [(m.command, m.meter_id, [(b.rate, b.burst_size) for b in m.bands])
            for m in dp.sent]
    assert mods == [(command, port_meter_id(p), [(30, 40)]) for p in (1, 2, 3)
                    for command in (OFP.OFPMC_ADD, OFP.OFPMC_MODIFY)]
    assert port_of_meter(port_meter_id(3)) == 3 and port_of_meter(PACKET_IN_METER) is None
    dp.sent.clear()
    session.take_over_again(settings, now=9.0)  # another leader may have changed them
    meters = [m.meter_id for m in dp.sent if type(m).__name__ == "OFPMeterMod"]
    assert meters == [PACKET_IN_METER] * 2 + [port_meter_id(p) for p in (1, 2, 3)
                                              for _ in range(2)]


def test_meter_drops_read_id_count_and_age_from_a_reply():
    band = PARSER.OFPMeterBandStats(packet_band_count=9, byte_band_count=900)
    entry = PARSER.OFPMeterStats(meter_id=PACKET_IN_METER, duration_sec=3,
                                 duration_nsec=500_000_000, band_stats=[band, band])
    assert codec.meter_drops(entry) == (PACKET_IN_METER, 18, 3.5)


def test_ports_are_collected_over_a_multipart_reply():
    _, session = new_session()
    assert session.add_ports(reply([port(1), port(OFP.OFPP_LOCAL)], more=True)) is None
    ports = session.add_ports(reply([port(2)]))
    assert [p.port_no for p in ports] == [1, 2]  # LOCAL is not a port of the fabric
    assert ports[0].speed_bps == 10_000_000_000
    assert session.add_ports(reply([port(3)])) is None  # a late duplicate is ignored


def test_our_entries_are_read_back_and_nobody_elses():
    _, session = new_session()
    ours, theirs = label_entry(7, (("output", 2),)), label_entry(8, (("output", 2),))
    assert not session.is_readback(reply([], xid=session.readback_xid + 1))
    first = reply([stat(ours)], more=True, xid=session.readback_xid)
    assert session.is_readback(first) and session.add_readback(first) is None
    entries = session.add_readback(reply([stat(theirs, cookie=7)], xid=session.readback_xid))
    assert list(entries.values()) == [ours]
    assert session.readback is None and not session.is_readback(first)


def test_demand_comes_from_ingress_entries_and_stops_with_them():
    _, session = new_session()
    counting = ingress_entry(H2, (("set_field", "eth_dst", label_mac(7, 1)), ("output", 2)))
    plain = label_entry(7, (("output", 2),))
    egress = egress_entry(label_mac(7, 2), H1, 3)
    for t, count in ((0.0, 0), (1.0, 1000)):
        session.add_flow_counters(reply([stat(counting, byte_count=count),
                                         stat(plain, byte_count=5 * count),
                                         stat(egress, byte_count=3 * count)]), t)
    assert set(session.demand_meters.meters) == {H2}
    assert session.demand_meters.rate(H2, "bytes") > 0
    session.add_flow_counters(reply([stat(plain, byte_count=9000)]), 2.0)
    assert session.demand_meters.meters == {}


def test_plan_items_are_encoded_with_our_cookie():
    dp, session = new_session()
    dp.sent.clear()
    flow = ingress_entry(H1, (("output", 2),))
    group = GroupEntry(2**31, FAST_FAILOVER, (Bucket((("output", 2),), watch_port=2),
                                              Bucket((("output", 3),), watch_port=3)))
    session.send(group)
    session.send(flow)
    session.send(flow, delete=True)
    assert [type(m).__name__ for m in dp.sent] == ["OFPGroupMod", "OFPFlowMod", "OFPFlowMod"]
    assert dp.sent[1].cookie == COOKIE and dp.sent[2].command == OFP.OFPFC_DELETE_STRICT


def test_a_barrier_reply_wakes_its_waiter_only():
    dp, session = new_session()
    xid, replied = session.request_barrier()
    assert type(dp.sent[-1]).__name__ == "OFPBarrierRequest" and dp.sent[-1].xid == xid
    session.barrier_replied(xid + 100)  # someone else's
    assert not replied.is_set()
    session.barrier_replied(xid)
    assert replied.is_set()


def test_a_switch_that_never_reports_its_entries_is_cleared_and_started_afresh():
    dp, session = new_session()
    session.abandon_readback()
    assert dp.sent[-1].command == OFP.OFPFC_DELETE and dp.sent[-1].cookie == COOKIE
    assert session.tables.installed == {} and session.readback is None


@pytest.mark.parametrize("hardware,version,splits", [
    (b"Open vSwitch", "1.3", True), ("Open vSwitch", "1.3", True),
    ("Open vSwitch", "1.5", False), ("Some ASIC", "1.3", False)])
def test_only_openflow13_open_vswitch_splits_by_hashing(hardware, version, splits):
    dp = SimpleNamespace(ofproto=VERSIONS[version][0], ofproto_parser=VERSIONS[version][1])
    desc = SimpleNamespace(mfr_desc="Nicira, Inc.", hw_desc=hardware)
    assert codec.splits_by_hash(dp, desc) is splits


def test_a_port_poll_answered_tells_when_it_was_asked():
    """The last part of a port-stats reply names the time its request went out: what
    Topology.expire_links needs to tell a silent link from a controller behind."""
    dp, session = new_session()
    session.poll_ports(10.0)
    first = dp.sent[-1].xid
    session.poll_ports(11.0)
    second = dp.sent[-1].xid
    assert session.answered(reply([], more=True, xid=first)) is None, "more parts to come"
    assert session.answered(reply([], xid=first)) == 10.0
    assert session.answered(reply([], xid=first)) is None, "each request answers once"
    assert session.answered(reply([], xid=999)) is None, "not one of ours"
    assert session.answered(reply([], xid=second)) == 11.0


def test_a_follower_sends_no_modifying_message_whatever_asks():
    from sdn_app.ryuapp.cluster import guard_datapath, role_request
    dp = FakeDatapath()
    leading = [False]
    guard_datapath(dp, lambda: leading[0])
    session = SwitchSession(dp, Settings(), now=5.0)
    session.send(ingress_entry(H2, [("output", 2)]))
    dp.send_msg(codec.packet_out(dp, [1], b"\x00" * 60))
    dp.send_msg(role_request(dp, master=False, generation=7))
    kinds = [type(m).__name__ for m in dp.sent]
    assert kinds == ["OFPDescStatsRequest", "OFPPortDescStatsRequest", "OFPFlowStatsRequest",
                     "OFPRoleRequest"], "reads and the role pass; meter, flow mod, packet-out not"
    assert dp.send_msg.refused == 4  # two meter mods, a flow mod, a packet-out
    assert dp.sent[-1].role == OFP.OFPCR_ROLE_SLAVE and dp.sent[-1].generation_id == 7
    leading[0] = True
    session.take_over_again(Settings(), now=9.0)
    kinds = [type(m).__name__ for m in dp.sent[4:]]
    assert kinds == ["OFPMeterMod", "OFPMeterMod", "OFPFlowStatsRequest"]
    assert session.tables.installed is None and session.readback_xid == dp.sent[-1].xid


def test_a_refused_mod_is_named_by_its_xid_and_no_longer_taken_to_be_installed():
    dp, session = new_session()
    session.tables.start_empty()
    flow = ingress_entry("00:00:00:00:00:01", (("output", 1),))
    group = GroupEntry(7, FAST_FAILOVER, (Bucket((("output", 1),), watch_port=1),))
    for item in (group, flow):
        session.send(item)
        session.tables.installed[item.key] = item  # as the reconciler records it
    group_xid, flow_xid = dp.sent[-2].xid, dp.sent[-1].xid
    assert session.refused(flow_xid) == (flow, False)
    assert flow.key not in session.tables.installed and session.tables.compare_all
    assert session.refusals[flow.key] == 1
    assert session.refused(flow_xid) is None  # answered once
    assert session.refused(12345) is None  # not ours
    xid, _ = session.request_barrier()
    session.barrier_replied(xid)  # confirms what went before it
    assert session.refused(group_xid) is None and group.key in session.tables.installed
    session.send(flow, delete=True)
    assert session.refused(dp.sent[-1].xid) == (flow, True)
