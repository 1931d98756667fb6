"""Everything that knows what OpenFlow messages and LLDP frames look like.

The controller speaks OpenFlow 1.3 or 1.5, whichever the switch negotiates; the two
differ in packet-out (1.5 carries the in_port in a match), port speed (a property in
1.5) and flow statistics (FlowDesc in 1.5).  Those differences stay in this module, so
the rest of the application deals only in FlowEntry and Port values.
"""

from __future__ import annotations

import struct

from ryu.lib.packet import arp, ethernet, lldp, packet
from ryu.ofproto import ofproto_v1_5

from .forwarding import FlowEntry
from .topology import Port

LLDP_CHASSIS_PREFIX = b"dpid:"
LLDP_TTL = 120


def is_v15(datapath) -> bool:
    return datapath.ofproto.OFP_VERSION == ofproto_v1_5.OFP_VERSION


# -- flow entries ---------------------------------------------------------------------

def flow_mod(datapath, flow: FlowEntry, cookie: int, delete: bool = False):
    """An add-or-replace FlowMod for ``flow``, or a strict delete of it.  The delete is
    restricted to our cookie, so another application's identical entry is never hit."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    instructions = []
    apply_actions = []
    for step in flow.actions:
        if step[0] == "output":
            apply_actions.append(parser.OFPActionOutput(step[1]))
        elif step[0] == "controller":
            apply_actions.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER,
                                                        ofp.OFPCML_NO_BUFFER))
        elif step[0] == "goto":
            instructions.append(parser.OFPInstructionGotoTable(step[1]))
        else:
            raise ValueError("unknown action %r" % (step,))
    if apply_actions:
        instructions.insert(0, parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                            apply_actions))
    return parser.OFPFlowMod(
        datapath, cookie=cookie, cookie_mask=0xFFFFFFFFFFFFFFFF if delete else 0,
        table_id=flow.table,
        command=ofp.OFPFC_DELETE_STRICT if delete else ofp.OFPFC_ADD,
        idle_timeout=flow.idle_timeout, priority=flow.priority,
        flags=ofp.OFPFF_SEND_FLOW_REM if flow.notify_removal else 0,
        out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch(**dict(flow.match)), instructions=instructions)


def delete_all_flows(datapath, cookie: int):
    """Remove every entry carrying our cookie, in every table, and nothing else."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPFlowMod(datapath, cookie=cookie, cookie_mask=0xFFFFFFFFFFFFFFFF,
                             table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=parser.OFPMatch())


def flow_stats_request(datapath, cookie: int):
    """Ask for our entries (by cookie) so a restarted controller can take them over."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    request = parser.OFPFlowDescStatsRequest if is_v15(datapath) else parser.OFPFlowStatsRequest
    return request(datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                   cookie, 0xFFFFFFFFFFFFFFFF, parser.OFPMatch())


def flow_entry_from_stats(datapath, stat) -> FlowEntry:
    """The inverse of flow_mod, for one entry of a flow statistics reply."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    actions = []
    for inst in stat.instructions:
        if isinstance(inst, parser.OFPInstructionGotoTable):
            actions.append(("goto", inst.table_id))
        elif isinstance(inst, parser.OFPInstructionActions):
            for act in inst.actions:
                if isinstance(act, parser.OFPActionOutput):
                    actions.append(("controller",) if act.port == ofp.OFPP_CONTROLLER
                                   else ("output", act.port))
                else:  # not ours: never equal to a planned entry, so it gets replaced
                    actions.append(("other", repr(act)))
        else:
            actions.append(("other", repr(inst)))
    actions.sort(key=lambda step: step[0] == "goto")  # apply-actions come first, as we build
    match = tuple(sorted((name, value.lower() if isinstance(value, str) else value)
                         for name, value in stat.match.items()))
    return FlowEntry(stat.table_id, stat.priority, match, tuple(actions),
                     stat.idle_timeout, bool(stat.flags & ofp.OFPFF_SEND_FLOW_REM))


# -- ports ----------------------------------------------------------------------------

def port_desc_request(datapath):
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    if is_v15(datapath):
        return parser.OFPPortDescStatsRequest(datapath, 0, ofp.OFPP_ANY)
    return parser.OFPPortDescStatsRequest(datapath, 0)


def parse_port(datapath, desc) -> Port | None:
    """A Port from an ofp_port, or None for reserved ports (LOCAL and the like)."""
    ofp = datapath.ofproto
    if desc.port_no > ofp.OFPP_MAX:
        return None
    if is_v15(datapath):
        speeds = [p.curr_speed for p in desc.properties if hasattr(p, "curr_speed")]
        speed_kbps = speeds[0] if speeds else 0
    else:
        speed_kbps = desc.curr_speed
    name = desc.name.decode("utf-8", "replace") if isinstance(desc.name, bytes) else desc.name
    live = not (desc.state & ofp.OFPPS_LINK_DOWN) and not (desc.config & ofp.OFPPC_PORT_DOWN)
    return Port(desc.port_no, name=name.rstrip("\0"), hw_addr=desc.hw_addr, live=live,
                speed_bps=speed_kbps * 1000)


# -- packets --------------------------------------------------------------------------

def packet_out(datapath, ports: list[int], data: bytes):
    """Send ``data`` out of the given ports (as coming from the controller)."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    actions = [parser.OFPActionOutput(p) for p in ports]
    if is_v15(datapath):
        return parser.OFPPacketOut(datapath, buffer_id=ofp.OFP_NO_BUFFER,
                                   match=parser.OFPMatch(in_port=ofp.OFPP_CONTROLLER),
                                   actions=actions, data=data)
    return parser.OFPPacketOut(datapath, buffer_id=ofp.OFP_NO_BUFFER,
                               in_port=ofp.OFPP_CONTROLLER, actions=actions, data=data)


def lldp_frame(dpid: int, port_no: int, hw_addr: str) -> bytes:
    """An LLDP frame naming the switch and port it leaves from."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=lldp.LLDP_MAC_NEAREST_BRIDGE,
                                       src=hw_addr or "00:00:00:00:00:00",
                                       ethertype=0x88CC))
    pkt.add_protocol(lldp.lldp(tlvs=[
        lldp.ChassisID(subtype=lldp.ChassisID.SUB_LOCALLY_ASSIGNED,
                       chassis_id=LLDP_CHASSIS_PREFIX + b"%016x" % dpid),
        lldp.PortID(subtype=lldp.PortID.SUB_PORT_COMPONENT,
                    port_id=struct.pack("!I", port_no)),
        lldp.TTL(ttl=LLDP_TTL),
        lldp.End(),
    ]))
    pkt.serialize()
    return bytes(pkt.data)


def parse_lldp(pkt: packet.Packet) -> tuple[int, int] | None:
    """(dpid, port_no) from one of our LLDP frames; None for anybody else's."""
    frame = pkt.get_protocol(lldp.lldp)
    if frame is None or len(frame.tlvs) < 2:
        return None
    chassis, port = frame.tlvs[0], frame.tlvs[1]
    if not isinstance(chassis, lldp.ChassisID) or not isinstance(port, lldp.PortID):
        return None
    if not chassis.chassis_id.startswith(LLDP_CHASSIS_PREFIX) or len(port.port_id) != 4:
        return None
    try:
        dpid = int(chassis.chassis_id[len(LLDP_CHASSIS_PREFIX):], 16)
    except ValueError:
        return None
    return dpid, struct.unpack("!I", port.port_id)[0]


def arp_reply(request_eth, request_arp, answer_mac: str) -> bytes:
    """The reply a host owning the requested address would send (proxy ARP)."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=request_eth.src, src=answer_mac, ethertype=0x0806))
    pkt.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=answer_mac,
                             src_ip=request_arp.dst_ip, dst_mac=request_arp.src_mac,
                             dst_ip=request_arp.src_ip))
    pkt.serialize()
    return bytes(pkt.data)
