"""The Ryu side of admission control (core/admission.py): a frame the admission table
sent up becomes a verdict, and the verdict the stream's own entry at that switch."""

from __future__ import annotations

from ryu.lib.packet import ethernet, ipv4, udp

from ..core.admission import ADMITTED_IDLE_S, Admission
from ..core.pipeline import stream_entry
from . import codec

ADMISSION_COOKIE_FLAG = 0x4000_0000


def admission_cookie(cookie: int) -> int:
    """The cookie of stream entries: our cookie's upper half and a flag, never our
    cookie, so reconciling and reading tables back (which go by our cookie) leave them
    alone, as they do the connections the switches learn."""
    return (cookie & ~0xFFFF_FFFF) | ADMISSION_COOKIE_FLAG


class AdmissionRunner:
    def __init__(self, settings, topo, next_hops, report_refusal, logger):
        """``next_hops``: a callable giving the next hops in force; ``report_refusal``:
        the controller's rate-limited log line and event (kind, dpid, port, why, now,
        **fields)."""
        self.admission = Admission(settings.admission_utilization,
                                   settings.admission_stream_mbps * 1e6)
        self.refusal_s = settings.admission_refusal_s
        self.cookie = admission_cookie(settings.cookie)
        self.topo = topo
        self.next_hops = next_hops
        self.report_refusal = report_refusal
        self.logger = logger

    def frame_in(self, session, in_port: int, pkt, data: bytes, now: float) -> None:
        """A stream's first frame (or one sent before its entry was in place)."""
        eth = pkt.get_protocol(ethernet.ethernet)
        ip, datagram = pkt.get_protocol(ipv4.ipv4), pkt.get_protocol(udp.udp)
        if eth is None or ip is None or datagram is None:
            return  # the admission table sends up UDP only; a fragment has no ports
        fields = dict(ipv4_src=ip.src, ipv4_dst=ip.dst, udp_src=datagram.src_port,
                      udp_dst=datagram.dst_port)
        host = self.topo.hosts.get(eth.dst)
        verdict = self.admission.decide(self.topo, self.next_hops(), tuple(fields.values()),
                                        session.dpid, host.dpid if host else None, now)
        flow = stream_entry(fields, verdict.admitted,
                            ADMITTED_IDLE_S if verdict.admitted else self.refusal_s)
        session.send_msg(codec.flow_mod(session.dp, flow, self.cookie))
        if verdict.admitted:
            # on through the tables, now holding the stream's entry (a switch handles a
            # connection's messages in order)
            session.send_msg(codec.packet_out_steps(
                session.dp, in_port, (("output", session.dp.ofproto.OFPP_TABLE),), data))
            self.logger.debug("stream %s admitted at %016x: %s", fields, session.dpid,
                              verdict.reason)
        else:
            self.report_refusal("stream_refused", session.dpid, in_port, verdict.reason,
                                now, src="%s:%d" % (ip.src, datagram.src_port),
                                dst="%s:%d" % (ip.dst, datagram.dst_port))

    def describe(self, now: float) -> dict:
        return self.admission.describe(now)
