"""Everything that knows what OpenFlow messages and LLDP frames look like.

The controller speaks OpenFlow 1.3 or 1.5, whichever the switch negotiates; the two
differ in packet-out (1.5 carries the in_port in a match), port speed (a property in
1.5) and flow statistics (FlowDesc in 1.5).  Those differences stay in this module, so
the rest of the application deals only in FlowEntry and Port values (core/pipeline.py).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct

from ryu.lib import addrconv
from ryu.lib.packet import arp, ethernet, lldp, packet
from ryu.ofproto import nicira_ext, ofproto_v1_3_parser, ofproto_v1_5, ofproto_v1_5_parser

from ..core.meters import PORT_TOTALS
from ..core.pipeline import (
    ACTIONS,
    CONNECTION_FIN_TIMEOUT,
    ETH_TYPE_IPV4,
    INSTRUCTION_ORDER,
    L4_NAMES,
    PRIORITY_FORWARD,
    REWRITABLE_FIELDS,
    SELECT,
    VLAN_PRESENT,
    FlowEntry,
    GroupEntry,
    MeterEntry,
)
from ..core.topology import Port

LLDP_CHASSIS_PREFIX = b"dpid:"
LLDP_TTL = 120
LLDP_OUI = b"\x0e\x5d\x00"  # our own TLVs (a locally administered OUI)
LLDP_SENT_AT = 1  # its subtype carrying when the probe was sent
LLDP_PROOF = 2  # its subtype carrying an HMAC-SHA256 over dpid, port and send time
ALL_ONES = 0xFFFFFFFFFFFFFFFF
# Open vSwitch extension (OpenFlow 1.1+): create the group or replace it if it exists,
# so installing a group is idempotent, e.g. when taking over after a restart.
OFPGC_ADD_OR_MOD = 0x8000
# OVS's group selection method property (Netronome experimenter 0x154d, type 1): a pad
# word, the method name NUL-padded to 16 bytes, then a 64-bit parameter.  ``dp_hash``
# with parameter 0 hashes the 5-tuple, ports included, and splits in proportion to the
# bucket weights: the one way measured here to spread UDP flows that differ only in
# their ports (../shared/ENVIRONMENT.md).
NTR_EXPERIMENTER = 0x0000154D
NTR_SELECTION_METHOD = 1
DP_HASH = "dp_hash"


def is_v15(datapath) -> bool:
    return datapath.ofproto.OFP_VERSION == ofproto_v1_5.OFP_VERSION


# -- flow entries ---------------------------------------------------------------------

def _encode_output(datapath, step):
    return [datapath.ofproto_parser.OFPActionOutput(step[1])]


def _encode_controller(datapath, step):
    ofp = datapath.ofproto
    return [datapath.ofproto_parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]


def _encode_group(datapath, step):
    return [datapath.ofproto_parser.OFPActionGroup(step[1])]


def _encode_push_vlan(datapath, step):
    parser = datapath.ofproto_parser
    return [parser.OFPActionPushVlan(0x8100),
            parser.OFPActionSetField(vlan_vid=VLAN_PRESENT | step[1])]


def _encode_pop_vlan(datapath, step):
    return [datapath.ofproto_parser.OFPActionPopVlan()]


def _encode_clear_in_port(datapath, step):
    """Lets a backup leave by the ingress port (OVS never outputs to in_port): OVS's
    idiom load:0->NXM_OF_IN_PORT[].  OpenFlow 1.3 carries it as a Nicira reg_load; OVS
    refuses reg_load over 1.5 (BAD_EXPERIMENTER) and refuses a set_field of 0 on the
    32-bit OXM in_port (BAD_SET_ARGUMENT), but accepts a 1.5 set_field on the 16-bit
    Nicira field, which is what ovs-ofctl sends."""
    parser = datapath.ofproto_parser
    if is_v15(datapath):
        return [parser.OFPActionSetField(in_port_nxm=0)]
    return [parser.NXActionRegLoad(ofs_nbits=nicira_ext.ofs_nbits(0, 15), dst="in_port_nxm",
                                   value=0)]


# OVS's multipath hash over addresses and ports, symmetric, UDP included
# (NX_HASH_FIELDS_SYMMETRIC_L3L4_UDP, which Ryu 4.34 does not name).  With the HRW
# algorithm it split 300 UDP flows that differ only in their ports 0.76 on a 3:1 split
# over OpenFlow 1.3 (../shared/ENVIRONMENT.md), where SELECT groups sent them all one way.
HASH_FIELDS_L3L4_UDP = 3


def _nicira_action_body(action) -> bytes:
    """An NX action's experimenter body (after type, length, experimenter, subtype)."""
    buf = bytearray()
    action.serialize(buf, 0)
    return bytes(buf[10:])


# Ryu 4.34's ofctl (behind ryu.app.ofctl_rest) shows a Nicira action it has no format
# for by its ``data``, which Ryu's own NXActionMultipath lacks: without this, GET
# /stats/flow/<dpid> of a switch holding our split entries answered 501 (seen in the
# test that runs us beside ofctl_rest).  With it, the action shows as EXPERIMENTER.
for _parser in (ofproto_v1_3_parser, ofproto_v1_5_parser):
    if not hasattr(_parser.NXActionMultipath, "data"):
        _parser.NXActionMultipath.data = property(_nicira_action_body)


def _encode_set_reg(datapath, step):
    return [datapath.ofproto_parser.OFPActionSetField(**{"reg%d" % step[1]: step[2]})]


def _encode_hash_split(datapath, step):
    return [datapath.ofproto_parser.NXActionMultipath(
        fields=HASH_FIELDS_L3L4_UDP, basis=0, algorithm=nicira_ext.NX_MP_ALG_HRW,
        max_link=step[1] - 1, arg=0, ofs_nbits=nicira_ext.ofs_nbits(0, 31), dst="reg0")]


# nx_hash_fields of OVS's multipath action: the IPv4 source address alone
HASH_FIELDS_NW_SRC = 4
HASH_SLOTS_FIELDS = {"l3l4": HASH_FIELDS_L3L4_UDP, "src": HASH_FIELDS_NW_SRC}


def _encode_hash_slots(datapath, step):
    return [datapath.ofproto_parser.NXActionMultipath(
        fields=HASH_SLOTS_FIELDS[step[2]], basis=0, algorithm=nicira_ext.NX_MP_ALG_HRW,
        max_link=step[1] - 1, arg=0, ofs_nbits=nicira_ext.ofs_nbits(0, 31), dst="reg4")]


def _encode_set_field(datapath, step):
    return [datapath.ofproto_parser.OFPActionSetField(**{step[1]: step[2]})]


def _encode_resubmit(datapath, step):
    return [datapath.ofproto_parser.NXActionResubmitTable(table_id=step[1])]


def _encode_learn_connection(datapath, step):
    """OVS's learn: an entry matching this frame's addresses and ports (copied from the
    frame) that loads the backend's id into reg3."""
    _, table, ip_proto, backend_id, idle_timeout, cookie = step
    parser = datapath.ofproto_parser
    l4 = L4_NAMES[ip_proto]
    specs = [parser.NXFlowSpecMatch(src=ETH_TYPE_IPV4, dst=("eth_type_nxm", 0), n_bits=16),
             parser.NXFlowSpecMatch(src=ip_proto, dst=("ip_proto_nxm", 0), n_bits=8)]
    for name, bits in (("ipv4_src", 32), ("ipv4_dst", 32), (l4 + "_src", 16),
                       (l4 + "_dst", 16)):
        field = (name + "_nxm", 0)
        specs.append(parser.NXFlowSpecMatch(src=field, dst=field, n_bits=bits))
    specs.append(parser.NXFlowSpecLoad(src=backend_id, dst=("reg3", 0), n_bits=32))
    return [parser.NXActionLearn(
        table_id=table, specs=specs, idle_timeout=idle_timeout, priority=PRIORITY_FORWARD,
        cookie=cookie, fin_idle_timeout=CONNECTION_FIN_TIMEOUT if l4 == "tcp" else 0)]


def _decode_learn_connection(act) -> tuple:
    proto = backend_id = None
    for spec in act.specs:
        if type(spec).__name__ == "NXFlowSpecMatch" and spec.dst == ("ip_proto_nxm", 0):
            proto = spec.src
        elif type(spec).__name__ == "NXFlowSpecLoad" and spec.dst == ("reg3", 0):
            backend_id = spec.src
    return ("learn_connection", act.table_id, proto, backend_id, act.idle_timeout,
            act.cookie)


# One encoder per apply-action of the pipeline's vocabulary (core/pipeline.ACTIONS);
# the goto instruction is built by flow_mod.
ENCODERS = {
    "output": _encode_output,
    "controller": _encode_controller,
    "group": _encode_group,
    "push_vlan": _encode_push_vlan,
    "pop_vlan": _encode_pop_vlan,
    "clear_in_port": _encode_clear_in_port,
    "set_reg": _encode_set_reg,
    "hash_split": _encode_hash_split,
    "hash_slots": _encode_hash_slots,
    "set_field": _encode_set_field,
    "resubmit": _encode_resubmit,
    "learn_connection": _encode_learn_connection,
}


def _actions(datapath, steps) -> list:
    """OpenFlow actions for the apply-action steps of a FlowEntry or a Bucket."""
    actions = []
    for step in steps:
        kind = ACTIONS.get(step[0])
        if kind == "apply":
            actions += ENCODERS[step[0]](datapath, step)
        elif kind is None:
            raise ValueError("unknown action %r" % (step,))
    return actions


def flow_mod(datapath, flow: FlowEntry, cookie: int, delete: bool = False):
    """An add-or-replace FlowMod for ``flow``, or a strict delete of it.  The delete is
    restricted to our cookie, so another application's identical entry is never hit."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    instructions = []
    apply_actions = _actions(datapath, flow.actions)
    meters = [step[1] for step in flow.actions if step[0] == "meter"]
    if is_v15(datapath):  # a meter is the first action there (its instruction is gone)
        apply_actions[:0] = [parser.OFPActionMeter(meter_id) for meter_id in meters]
    else:
        instructions += [parser.OFPInstructionMeter(meter_id, ofp.OFPIT_METER)
                         for meter_id in meters]
    if apply_actions:
        instructions.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                         apply_actions))
    for step in flow.actions:
        if step[0] == "goto":
            instructions.append(parser.OFPInstructionGotoTable(step[1]))
    return parser.OFPFlowMod(
        datapath, cookie=cookie, cookie_mask=ALL_ONES if delete else 0,
        table_id=flow.table,
        command=ofp.OFPFC_DELETE_STRICT if delete else ofp.OFPFC_ADD,
        idle_timeout=flow.idle_timeout, hard_timeout=flow.hard_timeout,
        priority=flow.priority, flags=ofp.OFPFF_SEND_FLOW_REM if flow.notify_removal else 0,
        out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch(**dict(flow.match)), instructions=instructions)


def meter_mods(datapath, meter: MeterEntry) -> list:
    """Create-or-replace a packets-per-second meter with one drop band.  OpenFlow has
    no single command for that: an ADD (refused with METER_EXISTS when the meter is
    there, which is_meter_exists tells apart) and a MODIFY, in that order, leave it as
    asked either way."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    bands = [parser.OFPMeterBandDrop(rate=meter.rate, burst_size=meter.burst)]
    return [parser.OFPMeterMod(datapath, command=command,
                               flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS,
                               meter_id=meter.meter_id, bands=bands)
            for command in (ofp.OFPMC_ADD, ofp.OFPMC_MODIFY)]


def is_meter_exists(datapath, error) -> bool:
    """An error message answering meter_mods' ADD of a meter already there."""
    ofp = datapath.ofproto
    return error.type == ofp.OFPET_METER_MOD_FAILED and \
        error.code == ofp.OFPMMFC_METER_EXISTS


def error_type_name(datapath, error_type: int) -> str:
    """An OpenFlow error type as its short name ("bad_match" for OFPET_BAD_MATCH), or
    its number when this OpenFlow version does not name it."""
    for name in dir(datapath.ofproto):
        if name.startswith("OFPET_") and getattr(datapath.ofproto, name) == error_type:
            return name[len("OFPET_"):].lower()
    return str(error_type)


def meter_stats_request(datapath, meter_id: int | None = None):
    """Statistics of one meter, or (None) of every meter the switch has."""
    if meter_id is None:
        meter_id = datapath.ofproto.OFPM_ALL
    return datapath.ofproto_parser.OFPMeterStatsRequest(datapath, 0, meter_id)


def meter_drops(stat) -> tuple[int, int, float]:
    """(meter id, packets its bands dropped, its age in s) of one entry of a
    meter-stats reply."""
    return (stat.meter_id, sum(band.packet_band_count for band in stat.band_stats),
            stat.duration_sec + stat.duration_nsec / 1e9)


def group_mod(datapath, group: GroupEntry, delete: bool = False):
    """Create-or-replace (or delete) a SELECT or FAST_FAILOVER group.  Over OpenFlow 1.5
    a SELECT group asks OVS for the dp_hash selection method, whose split follows the
    weights for any 5-tuple; over 1.3 the switch's default hash applies (see
    ENVIRONMENT.md: OVS's default ignores UDP ports)."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    group_type = ofp.OFPGT_SELECT if group.kind == SELECT else ofp.OFPGT_FF
    if delete:
        return parser.OFPGroupMod(datapath, command=ofp.OFPGC_DELETE, type_=group_type,
                                  group_id=group.group_id)
    if is_v15(datapath):
        buckets = []
        for i, bucket in enumerate(group.buckets):
            if group.kind == SELECT:
                prop = parser.OFPGroupBucketPropWeight(type_=ofp.OFPGBPT_WEIGHT,
                                                       weight=bucket.weight)
            else:
                prop = parser.OFPGroupBucketPropWatch(type_=ofp.OFPGBPT_WATCH_PORT,
                                                      watch=bucket.watch_port)
            buckets.append(parser.OFPBucket(bucket_id=i, actions=_actions(datapath,
                                                                          bucket.actions),
                                            properties=[prop]))
        properties = []
        if group.kind == SELECT:
            name = struct.unpack("!4I", DP_HASH.encode().ljust(16, b"\0"))
            properties.append(parser.OFPGroupPropExperimenter(
                type_=ofp.OFPGPT_EXPERIMENTER, experimenter=NTR_EXPERIMENTER,
                exp_type=NTR_SELECTION_METHOD, data=[0, *name, 0, 0]))
        return parser.OFPGroupMod(datapath, command=OFPGC_ADD_OR_MOD, type_=group_type,
                                  group_id=group.group_id, buckets=buckets,
                                  properties=properties)
    buckets = [parser.OFPBucket(
        weight=bucket.weight if group.kind == SELECT else 0,
        watch_port=ofp.OFPP_ANY if bucket.watch_port is None else bucket.watch_port,
        watch_group=ofp.OFPG_ANY, actions=_actions(datapath, bucket.actions))
        for bucket in group.buckets]
    return parser.OFPGroupMod(datapath, OFPGC_ADD_OR_MOD, group_type, group.group_id, buckets)


def delete_all_flows(datapath, cookie: int):
    """Remove every entry carrying our cookie, in every table, and nothing else."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPFlowMod(datapath, cookie=cookie, cookie_mask=ALL_ONES,
                             table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=parser.OFPMatch())


def aggregate_request(datapath, cookie: int, table: int, match: dict | None = None):
    """The entries of one table that carry ``cookie`` (and, if given, whose match
    includes ``match``: pipeline terms), counted and summed by the switch in an aggregate
    request, so it lists nothing (a flow dump of thousands of learned connection entries
    stalled Open vSwitch's forwarding long enough to lose SYNs)."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPAggregateStatsRequest(datapath, 0, table, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                           cookie, ALL_ONES,
                                           parser.OFPMatch(**dict(match or {})))


def aggregate_counts(msg) -> tuple[int, int]:
    """(entries, packets) in an aggregate reply (OpenFlow 1.3 has fields, 1.5 OXS
    stats)."""
    body = msg.body[0] if isinstance(msg.body, list) else msg.body
    stats = getattr(body, "stats", None)
    fields = dict(stats.fields) if stats is not None else {}
    return tuple(int(getattr(body, name, None) or fields.get(name, 0))
                 for name in ("flow_count", "packet_count"))


def delete_flows(datapath, cookie: int, table: int):
    """Remove the entries of one table that carry exactly ``cookie``."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPFlowMod(datapath, cookie=cookie, cookie_mask=ALL_ONES, table_id=table,
                             command=ofp.OFPFC_DELETE, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=parser.OFPMatch())


def flow_stats_request(datapath, cookie: int, table: int | None = None):
    """Our entries (by cookie), with their counters, in one table or all of them: read
    back when a switch connects (take-over) and polled for demand.  In OpenFlow 1.5 the
    counters come with the flow descriptions (OVS does not implement 1.5's separate
    flow-stats request)."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    request = parser.OFPFlowDescStatsRequest if is_v15(datapath) else parser.OFPFlowStatsRequest
    return request(datapath, 0, ofp.OFPTT_ALL if table is None else table, ofp.OFPP_ANY,
                   ofp.OFPG_ANY, cookie, ALL_ONES, parser.OFPMatch())


def flow_counters(datapath, stat) -> tuple[dict, int]:
    """(match fields, byte count) of one entry of a flow-statistics reply."""
    if is_v15(datapath):
        byte_count = stat.stats.get("byte_count", 0) if stat.stats is not None else 0
    else:
        byte_count = stat.byte_count
    return dict(stat.match.items()), byte_count


def barrier_request(datapath):
    return datapath.ofproto_parser.OFPBarrierRequest(datapath)


def port_stats_request(datapath):
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPPortStatsRequest(datapath, 0, ofp.OFPP_ANY)


def port_counters(stat) -> dict[str, int]:
    return {name: getattr(stat, name) for name in PORT_TOTALS}


def _lower(value):
    """A match value as the pipeline writes it: MACs (masked ones too) in lower case."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, tuple):
        return tuple(_lower(part) for part in value)
    return value


def flow_entry_from_stats(datapath, stat) -> FlowEntry:
    """The inverse of flow_mod, for one entry of a flow statistics reply."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    actions = []
    for inst in stat.instructions:
        if isinstance(inst, parser.OFPInstructionGotoTable):
            actions.append(("goto", inst.table_id))
        elif type(inst).__name__ == "OFPInstructionMeter":  # OpenFlow 1.3
            actions.append(("meter", inst.meter_id))
        elif isinstance(inst, parser.OFPInstructionActions):
            for act in inst.actions:
                if type(act).__name__ == "OFPActionMeter":  # OpenFlow 1.5
                    actions.append(("meter", act.meter_id))
                elif isinstance(act, parser.OFPActionOutput):
                    actions.append(("controller",) if act.port == ofp.OFPP_CONTROLLER
                                   else ("output", act.port))
                elif isinstance(act, parser.OFPActionGroup):
                    actions.append(("group", act.group_id))
                elif isinstance(act, parser.OFPActionPopVlan):
                    actions.append(("pop_vlan",))
                elif (isinstance(act, parser.OFPActionSetField)
                      and str(act.key).startswith("reg") and act.key[3:].isdigit()):
                    actions.append(("set_reg", int(act.key[3:]), act.value))
                elif isinstance(act, parser.OFPActionSetField) and \
                        act.key in REWRITABLE_FIELDS:
                    value = act.value.lower() if isinstance(act.value, str) else act.value
                    actions.append(("set_field", act.key, value))
                elif (isinstance(act, parser.NXActionMultipath) and act.dst == "reg0"
                      and act.fields == HASH_FIELDS_L3L4_UDP):
                    actions.append(("hash_split", act.max_link + 1))
                elif isinstance(act, parser.NXActionMultipath) and act.dst == "reg4" and \
                        act.fields in HASH_SLOTS_FIELDS.values():
                    over = {v: k for k, v in HASH_SLOTS_FIELDS.items()}[act.fields]
                    actions.append(("hash_slots", act.max_link + 1, over))
                elif isinstance(act, parser.NXActionResubmitTable):
                    actions.append(("resubmit", act.table_id))
                elif isinstance(act, parser.NXActionLearn):
                    actions.append(_decode_learn_connection(act))
                else:  # not ours: never equal to a planned entry, so it gets replaced
                    actions.append(("other", repr(act)))
        else:
            actions.append(("other", repr(inst)))
    # Actions first, then goto: the order flow_mod builds them in.
    actions.sort(key=lambda step: INSTRUCTION_ORDER.get(step[0], 0))
    match = tuple(sorted((name, _lower(value)) for name, value in stat.match.items()))
    return FlowEntry(stat.table_id, stat.priority, match, tuple(actions),
                     stat.idle_timeout, bool(stat.flags & ofp.OFPFF_SEND_FLOW_REM),
                     stat.hard_timeout)


# -- ports ----------------------------------------------------------------------------

def desc_request(datapath):
    return datapath.ofproto_parser.OFPDescStatsRequest(datapath, 0)


def splits_by_hash(datapath, desc) -> bool:
    """Whether this switch should split flows with the split table (pipeline.py) rather
    than SELECT groups: Open vSwitch over OpenFlow 1.3, where no selection method can be
    asked for and its default hash ignores UDP ports (measured: 300 UDP flows differing
    only in ports all took one bucket).  Over 1.5 our SELECT groups ask for dp_hash,
    which spreads them; other switches keep standard SELECT groups."""
    hardware = desc.hw_desc
    if isinstance(hardware, bytes):
        hardware = hardware.decode("utf-8", "replace")
    return not is_v15(datapath) and "Open vSwitch" in hardware


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


def packet_out_steps(datapath, in_port: int, steps, data: bytes):
    """Run ``data`` through pipeline steps as if it had arrived on ``in_port``."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    actions = _actions(datapath, steps)
    if is_v15(datapath):
        return parser.OFPPacketOut(datapath, buffer_id=ofp.OFP_NO_BUFFER,
                                   match=parser.OFPMatch(in_port=in_port),
                                   actions=actions, data=data)
    return parser.OFPPacketOut(datapath, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                               actions=actions, data=data)


def _lldp_proof(key: bytes, dpid: int, port_no: int, sent_at: float) -> bytes:
    return hmac.new(key, struct.pack("!QId", dpid, port_no, sent_at), hashlib.sha256).digest()


def lldp_frame(dpid: int, port_no: int, hw_addr: str, sent_at: float = 0.0,
               key: bytes = b"") -> bytes:
    """An LLDP frame naming the switch and port it leaves from, and when it was sent
    (the controller's monotonic clock, in a TLV of its own: how late probes come back
    decides how long an unproven port waits, Topology.settle_after), signed with the
    controller's secret ``key`` so a host cannot forge one (parse_lldp)."""
    return frame_bytes(
        ethernet.ethernet(dst=lldp.LLDP_MAC_NEAREST_BRIDGE,
                          src=hw_addr or "00:00:00:00:00:00", ethertype=0x88CC),
        lldp.lldp(tlvs=[
            lldp.ChassisID(subtype=lldp.ChassisID.SUB_LOCALLY_ASSIGNED,
                           chassis_id=LLDP_CHASSIS_PREFIX + b"%016x" % dpid),
            lldp.PortID(subtype=lldp.PortID.SUB_PORT_COMPONENT,
                        port_id=struct.pack("!I", port_no)),
            lldp.TTL(ttl=LLDP_TTL),
            lldp.OrganizationallySpecific(oui=LLDP_OUI, subtype=LLDP_SENT_AT,
                                          info=struct.pack("!d", sent_at)),
            lldp.OrganizationallySpecific(oui=LLDP_OUI, subtype=LLDP_PROOF,
                                          info=_lldp_proof(key, dpid, port_no, sent_at)),
            lldp.End(),
        ]))


def parse_lldp(pkt: packet.Packet, key: bytes = b""
               ) -> tuple[int, int, float | None, bool] | None:
    """(dpid, port_no, sent at or None, proven) from a frame in our LLDP format; None for
    anybody else's.  ``proven`` is whether it carries a send time and a proof made with
    ``key``: only then did this controller send it (a forged or altered one is not)."""
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
    if not 0 <= dpid < 1 << 64:
        return None
    port_no = struct.unpack("!I", port.port_id)[0]
    sent_at, proof = None, None
    for tlv in frame.tlvs[3:]:
        if isinstance(tlv, lldp.OrganizationallySpecific) and tlv.oui == LLDP_OUI:
            if tlv.subtype == LLDP_SENT_AT and len(tlv.info) == 8:
                sent_at = struct.unpack("!d", tlv.info)[0]
            elif tlv.subtype == LLDP_PROOF:
                proof = bytes(tlv.info)
    proven = (sent_at is not None and proof is not None and not math.isnan(sent_at)
              and hmac.compare_digest(proof, _lldp_proof(key, dpid, port_no, sent_at)))
    return dpid, port_no, sent_at, proven


def arp_reply(request_eth, request_arp, answer_mac: str) -> bytes:
    """The reply a host owning the requested address would send (proxy ARP)."""
    return frame_bytes(
        ethernet.ethernet(dst=request_eth.src, src=answer_mac, ethertype=0x0806),
        arp.arp(opcode=arp.ARP_REPLY, src_mac=answer_mac, src_ip=request_arp.dst_ip,
                dst_mac=request_arp.src_mac, dst_ip=request_arp.src_ip))


def with_destination(frame: bytes, mac: str) -> bytes:
    """An Ethernet frame with its destination MAC replaced."""
    return addrconv.mac.text_to_bin(mac) + frame[6:]


def frame_bytes(*layers) -> bytes:
    """A frame built from Ryu packet-library layers (and a bytes payload), serialized."""
    pkt = packet.Packet()
    for layer in layers:
        pkt.add_protocol(layer)
    pkt.serialize()
    return bytes(pkt.data)
