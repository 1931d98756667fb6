"""Admission control's Ryu-layer runner (ryuapp/admission.py) without a switch: what a
stream's first frame makes it send, and frames it must shrug off.  Frames are built with
Ryu's packet library, as on the wire."""

import logging
from types import SimpleNamespace

from ryu.lib.packet import ethernet, ipv4, packet, tcp, udp
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser
from shipped_topologies import model_of

from sdn_app.core.pipeline import TABLE_ADMISSION
from sdn_app.core.settings import Settings
from sdn_app.core.te import compute_next_hops
from sdn_app.ryuapp.admission import AdmissionRunner, admission_cookie


class Session:
    def __init__(self, dpid):
        self.dpid = dpid
        self.dp = SimpleNamespace(id=dpid, ofproto=ofproto_v1_3,
                                  ofproto_parser=ofproto_v1_3_parser)
        self.sent = []

    def send_msg(self, msg):
        self.sent.append(msg)


def setup(mbps):
    topo, macs = model_of("leafspine,2,2,2")
    for lk in topo.links():
        topo.capacity_overrides[(lk.src, lk.src_port)] = 10e6
    hops = compute_next_hops(topo, "shortest")
    refusals = []
    settings = Settings(admission_udp_ports="9100", admission_stream_mbps=mbps)
    runner = AdmissionRunner(settings, topo, lambda: hops,
                             lambda *args, **fields: refusals.append((args, fields)),
                             logging.getLogger("test"))
    return topo, macs, runner, refusals


def frame(topo, macs, src, dst, sport, l4="udp"):
    s, d = topo.hosts[macs[src]], topo.hosts[macs[dst]]
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=d.mac, src=s.mac, ethertype=0x0800))
    pkt.add_protocol(ipv4.ipv4(src=s.ips[0], dst=d.ips[0], proto=17 if l4 == "udp" else 6))
    pkt.add_protocol(udp.udp(src_port=sport, dst_port=9100) if l4 == "udp"
                     else tcp.tcp(src_port=sport, dst_port=9100))
    pkt.add_protocol(b"x" * 100)
    pkt.serialize()
    return packet.Packet(bytes(pkt.data)), bytes(pkt.data), s


def test_an_admitted_stream_gets_its_entry_then_its_frame_back_through_the_tables():
    topo, macs, runner, refusals = setup(mbps=4)
    pkt, data, src = frame(topo, macs, "h1", "h3", 40000)
    session = Session(src.dpid)
    runner.frame_in(session, src.port, pkt, data, 0.0)
    mod, out = session.sent
    assert mod.table_id == TABLE_ADMISSION and mod.cookie == admission_cookie(
        Settings().cookie) and mod.idle_timeout > 0 and mod.hard_timeout == 0
    assert dict(mod.match.items())["udp_src"] == 40000
    assert out.in_port == src.port and out.data == data
    assert out.actions[0].port == ofproto_v1_3.OFPP_TABLE
    assert not refusals


def test_a_refused_stream_gets_a_drop_entry_and_a_report_and_its_frame_goes_nowhere():
    topo, macs, runner, refusals = setup(mbps=4)
    session = Session(topo.hosts[macs["h1"]].dpid)
    for sport in (40000, 40001, 40002):  # 4 + 4 fit 10 Mbit/s at 80%; 12 does not
        pkt, data, src = frame(topo, macs, "h1", "h3", sport)
        runner.frame_in(session, src.port, pkt, data, 0.0)
    drop = session.sent[-1]
    assert drop.hard_timeout == Settings().admission_refusal_s and drop.idle_timeout == 0
    assert drop.instructions == []
    assert len(session.sent) == 2 + 2 + 1, "two admitted (entry, frame), one refused"
    (kind, dpid, port, why, _now), fields = refusals[0]
    assert kind == "stream_refused" and dpid == session.dpid and "would be at" in why
    assert fields["src"].endswith(":40002") and fields["dst"].endswith(":9100")


def test_frames_that_are_not_a_udp_stream_are_left_alone():
    topo, macs, runner, refusals = setup(mbps=4)
    session = Session(topo.hosts[macs["h1"]].dpid)
    pkt, data, src = frame(topo, macs, "h1", "h3", 40000, l4="tcp")
    runner.frame_in(session, src.port, pkt, data, 0.0)
    garbage = packet.Packet(b"\x00" * 20)
    runner.frame_in(session, src.port, garbage, b"\x00" * 20, 0.0)
    assert session.sent == [] and refusals == []
    assert runner.describe(0.0)["admitted"] == 0
