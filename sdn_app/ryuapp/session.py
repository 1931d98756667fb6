"""One connected switch: everything the controller keeps per connection, in one object,
so a connect is one creation and a disconnect one deletion (nothing left behind in
side tables keyed by dpid)."""

from __future__ import annotations

import collections

from ryu.lib import hub

from ..core.meters import MeterBank
from ..core.pipeline import PACKET_IN_METER, MeterEntry, counted_destination, port_meter_id
from ..core.reconcile import SwitchTables
from . import codec

UNCONFIRMED_KEPT = 20000  # mods remembered by xid until a barrier confirms them


class SwitchSession:
    """A switch's control connection, from its features handshake to its disconnect.

    On creation it sets the packet-in meter (before any entry that uses it can be
    sent) and asks for the switch's description (what it is decides how it splits
    flows), its ports and our entries in its tables (to take them over after a
    controller restart); until the entries have been read back,
    ``tables.installed`` is None and the reconciler leaves the switch alone.
    """

    def __init__(self, datapath, settings, now: float):
        self.dp = datapath
        self.dpid = datapath.id
        self.cookie = settings.cookie
        self.connected_at = now
        self.tables = SwitchTables()
        self.ports: list | None = []  # collected from a multipart port-desc reply
        self.readback: dict | None = {}  # our entries collected from a flow-stats reply
        self.readback_xid = None
        meters = (settings.stats_time_constant, settings.stats_interval)
        self.port_meters = MeterBank(*meters)  # port_no -> port counter rates
        self.demand_meters = MeterBank(*meters)  # destination MAC -> bytes/s entering here
        self.request_meters = MeterBank(*meters)  # service name -> its new connections/s
        self._counted: set | None = None  # demand meters seen in a multipart reply
        self._barriers: dict = {}  # xid -> hub.Event set by the barrier reply
        self._polls: dict = {}  # xid of a port-stats request -> when it was sent
        self.packet_ins_dropped: dict = {}  # meter id -> its drops, as last polled
        self.role = None  # in a cluster: the role the switch last confirmed (master...)
        self.metered_ports: set = set()  # ports whose packet-in meter was set
        # xid -> (FlowEntry or GroupEntry, delete) of our mods not yet confirmed by a
        # barrier: an error reply names its request by xid (refused)
        self._unconfirmed: dict = {}
        self.refusals: collections.Counter = collections.Counter()  # plan key -> refusals
        self._set_meter(settings)
        datapath.send_msg(codec.desc_request(datapath))
        datapath.send_msg(codec.port_desc_request(datapath))
        self._ask_readback(now)

    def _set_meter(self, settings) -> None:
        for msg in codec.meter_mods(self.dp, MeterEntry(
                PACKET_IN_METER, settings.packet_in_rate, settings.packet_in_burst)):
            self.dp.send_msg(msg)

    def meter_ports(self, settings, ports) -> None:
        """Set the packet-in meter of each of ``ports`` (port numbers) not set yet on
        this connection: before the plan's punt entries for them, which need it, can
        be sent (pipeline.punt_entry)."""
        for port_no in sorted(set(ports) - self.metered_ports):
            meter_id = port_meter_id(port_no)
            if meter_id is None:
                continue
            for msg in codec.meter_mods(self.dp, MeterEntry(
                    meter_id, settings.packet_in_port_rate, settings.packet_in_port_burst)):
                self.dp.send_msg(msg)
            self.metered_ports.add(port_no)

    def _ask_readback(self, now: float) -> None:
        request = codec.flow_stats_request(self.dp, self.cookie)
        self.dp.send_msg(request)
        self.readback_xid = request.xid
        self.readback_since = now

    def take_over_again(self, settings, now: float) -> None:
        """This controller has just been elected leader: what it believed the switch
        holds may be stale (another leader ran it meanwhile), so the meter is set and
        our entries read back as on a new connection; nothing is sent until they are."""
        self.tables = SwitchTables()
        self.readback = {}
        self._set_meter(settings)
        ports, self.metered_ports = self.metered_ports, set()
        self.meter_ports(settings, ports)
        self._ask_readback(now)

    @property
    def version(self) -> int:
        return self.dp.ofproto.OFP_VERSION

    def send_msg(self, msg) -> None:
        self.dp.send_msg(msg)

    def new_packet_in_drops(self, meter_id: int, dropped: int, meter_age: float,
                            now: float) -> int:
        """Of ``dropped`` (packet-in meter ``meter_id``'s count, ``meter_age`` s old, at
        ``now``) the drops not counted at the last poll.  A meter older than this
        connection was set by an earlier run (our ADD met METER_EXISTS and kept its
        counters), so its first count is a baseline, not news; a count that went down
        belongs to a meter made again (OVS restarted), all of it new."""
        previous = self.packet_ins_dropped.get(meter_id)
        if previous is None:
            previous = dropped if meter_age > now - self.connected_at + 1.0 else 0
        elif dropped < previous:
            previous = 0
        self.packet_ins_dropped[meter_id] = dropped
        return dropped - previous

    def poll_ports(self, now: float) -> None:
        """Ask for port statistics, remembering when (see answered)."""
        request = codec.port_stats_request(self.dp)
        self.dp.send_msg(request)
        self._polls[request.xid] = now
        while len(self._polls) > 16:  # replies lost: forget the oldest asks
            del self._polls[next(iter(self._polls))]

    def answered(self, msg) -> float | None:
        """When the request this (last) port-stats reply part answers was sent."""
        if msg.flags & self.dp.ofproto.OFPMPF_REPLY_MORE:
            return None
        return self._polls.pop(msg.xid, None)

    # -- what the reconciler calls ----------------------------------------------------------

    def send(self, item, delete: bool = False) -> None:
        """Send one FlowEntry or GroupEntry (add-or-replace, or delete)."""
        if item.key[0] == "group":
            msg = codec.group_mod(self.dp, item, delete=delete)
        else:
            msg = codec.flow_mod(self.dp, item, self.cookie, delete=delete)
        self.dp.set_xid(msg)
        self._unconfirmed[msg.xid] = (item, delete)
        while len(self._unconfirmed) > UNCONFIRMED_KEPT:  # barriers lost: forget the oldest
            del self._unconfirmed[next(iter(self._unconfirmed))]
        self.dp.send_msg(msg)

    def refused(self, xid):
        """The (item, delete) of our mod an error reply with ``xid`` answers, or None
        (not one of ours, or confirmed long ago).  A refused add is no longer taken to
        be in the switch, and the next send compares every entry, so it goes again."""
        sent = self._unconfirmed.pop(xid, None)
        if sent is None:
            return None
        item, delete = sent
        self.refusals[item.key] += 1
        if not delete and self.tables.installed is not None:
            self.tables.installed.pop(item.key, None)
            self.tables.compare_all = True
        return sent

    def request_barrier(self):
        """Send a barrier request; the event is set when the switch answers it."""
        request = codec.barrier_request(self.dp)
        self.dp.set_xid(request)
        replied = self._barriers[request.xid] = hub.Event()
        self.dp.send_msg(request)
        return request.xid, replied

    def barrier_replied(self, xid) -> None:
        # A switch answers a barrier only after everything sent before it: the mods
        # before it that met no error were taken.
        while self._unconfirmed:
            first = next(iter(self._unconfirmed))
            if not 0 < (xid - first) % 2**32 < 2**31:  # not before the barrier
                break
            del self._unconfirmed[first]
        replied = self._barriers.pop(xid, None)
        if replied is not None:
            replied.set()

    def forget_barrier(self, xid) -> None:
        self._barriers.pop(xid, None)

    # -- replies being collected ------------------------------------------------------------

    def add_ports(self, msg) -> list | None:
        """Collect a port-desc reply; the whole port list once the last part is in."""
        if self.ports is None:
            return None
        self.ports.extend(p for p in (codec.parse_port(self.dp, d) for d in msg.body) if p)
        if msg.flags & self.dp.ofproto.OFPMPF_REPLY_MORE:
            return None
        ports, self.ports = self.ports, None
        return ports

    def is_readback(self, msg) -> bool:
        return self.readback is not None and msg.xid == self.readback_xid

    def add_readback(self, msg) -> dict | None:
        """Collect our entries from the take-over flow-stats reply; all of them once the
        last part is in."""
        for stat in msg.body:
            if stat.cookie == self.cookie:
                flow = codec.flow_entry_from_stats(self.dp, stat)
                self.readback[flow.key] = flow
        if msg.flags & self.dp.ofproto.OFPMPF_REPLY_MORE:
            return None
        entries, self.readback = self.readback, None
        return entries

    def abandon_readback(self) -> None:
        """The switch never reported its entries: clear ours and start afresh."""
        self.dp.send_msg(codec.delete_all_flows(self.dp, self.cookie))
        self.readback = None
        self.tables.start_empty()

    def add_flow_counters(self, msg, now: float) -> None:
        """Demand from a polled flow-stats reply, read off our counting entries.  Entries
        the switch no longer reports carry no demand any more."""
        if self._counted is None:
            self._counted = set()
        for stat in msg.body:
            match, byte_count = codec.flow_counters(self.dp, stat)
            mac = counted_destination(stat.table_id, stat.priority, match)
            if mac is not None:
                self.demand_meters.update(mac, {"bytes": byte_count}, now)
                self._counted.add(mac)
        if not msg.flags & self.dp.ofproto.OFPMPF_REPLY_MORE:
            seen, self._counted = self._counted, None
            self.demand_meters.forget(lambda mac: mac not in seen)
