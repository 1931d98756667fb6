"""The Ryu application: turns OpenFlow events into calls on the topology model, and the
forwarding plan into the FlowMods that differ from what the switches hold.

Run it as ``ryu-manager sdn_app.controller`` (options: see sdn_app/options.py).
"""

from __future__ import annotations

import collections
import hashlib
import time

from ryu.app.wsgi import WSGIApplication
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub
from ryu.lib.packet import arp, ethernet, ipv4, packet
from ryu.ofproto import ofproto_v1_3, ofproto_v1_5

from . import options, southbound
from .balance import POLICIES, Damper, allowed_ports, compute_next_hops
from .forwarding import (
    ETH_TYPE_LLDP,
    FAST_FAILOVER,
    FROM_LOCAL_HOST,
    TABLE_FORWARD,
    TABLE_INGRESS,
    GroupEntry,
    build_plan,
    diff,
    handle_frame,
    update_waves,
)
from .protection import plan_protection
from .rest import RestApi
from .stats import MeterBank
from .topology import Topology, TopologyError, dpid_to_str

# How long a switch may take to report the flows it holds before we clear ours instead.
READBACK_TIMEOUT = 5.0
EVENT_LOG_SIZE = 1000  # GET /v1/events keeps this many, oldest dropped first
# A frame the controller saw this recently is not delivered again: the guard against a
# broadcast coming back through a link that LLDP has not proven yet.
DUPLICATE_WINDOW = 0.5
# Entries and groups a new plan no longer needs stay this long before they are deleted:
# packets already on their way under the old plan (on a detour, say) still find them.
# Measured: deleted at once, moving traffic off a fast-reroute detour lost 1-5 probes in
# 2 runs of 3; with the grace 1 in 2 of 10 (the rest was the order across switches,
# which update_waves fixes).
RETIRE_GRACE = 0.5
# How long one wave of an update waits for the switches' barrier replies at most.
BARRIER_TIMEOUT = 0.5


class ElasticController(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION, ofproto_v1_5.OFP_VERSION]
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            self.settings = options.load(self.CONF)
        except ValueError as exc:
            self.logger.error("%s", exc)
            raise SystemExit(2) from None
        self.topo = Topology(settle_time=self.settings.settle_time)
        for dpid, port, mbps in self.settings.link_capacity_mbps:
            self.topo.capacity_overrides[(dpid, port)] = mbps * 1e6
        self.datapaths = {}  # dpid -> connected Datapath
        # dpid -> {FlowEntry.key: FlowEntry} we know the switch holds; absent while the
        # switch's own table is being read back after it connects.
        self.installed = {}
        self.readback = {}  # dpid -> entries collected from a multipart flow-stats reply
        self.port_replies = {}  # dpid -> ports collected from a multipart port-desc reply
        # dpid -> time until which entries taken over from a switch are not deleted: the
        # restarted controller must first re-prove the links and hosts they serve.
        self.keep_until = {}
        self.retiring = {}  # dpid -> {key: when the plan stopped needing it}
        self.plan = {}
        self.policy = self.settings.policy
        self.next_hops = {}  # (u, d) -> ((port, weight), ...) in force
        self.damper = Damper(self.settings.rebalance_threshold, self.settings.rebalance_hold)
        self._restored = set()  # (dpid, port) of links back since the last recomputation
        meters = (self.settings.stats_time_constant, self.settings.stats_interval)
        self.port_meters = MeterBank(*meters)  # (dpid, port) -> port counter rates
        self.demand_meters = MeterBank(*meters)  # (ingress dpid, dst mac) -> bytes/s
        self.readback_xid = {}  # dpid -> xid of the take-over flow request
        self._counted = {}  # dpid -> demand meters seen so far in a multipart reply
        self.last_reconcile = {}  # timings and message counts of the last recomputation
        self.last_change = {}  # ... of the last one that changed any switch
        self._reconcile_wanted = False
        self._resend_wanted = False
        self._reconcile_running = False
        self.event_log = collections.deque(maxlen=EVENT_LOG_SIZE)
        self._event_seq = 0
        self._pending_causes = []  # events since the last recomputation: what it answers
        self._barriers = {}  # (dpid, xid) -> hub.Event set by the barrier reply
        self._recent_frames = {}  # frame digest -> time first delivered
        kwargs["wsgi"].register(RestApi, {"app": self})
        self.threads.append(hub.spawn(self._housekeeping))
        self.threads.append(hub.spawn(self._poll_stats))
        self.threads.append(hub.spawn(self._rebalance))

    # -- switches -----------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev):
        dp = ev.datapath
        if dp.id is None:
            return
        if ev.state == MAIN_DISPATCHER:
            self.logger.info("switch %s connected (OpenFlow 0x%x)", dpid_to_str(dp.id),
                             dp.ofproto.OFP_VERSION)
            self.event("switch_connected", dpid=dpid_to_str(dp.id),
                       openflow=dp.ofproto.OFP_VERSION)
            self.datapaths[dp.id] = dp
            self.installed.pop(dp.id, None)
            self.readback[dp.id] = {}
            self.port_replies[dp.id] = []
            dp.send_msg(southbound.port_desc_request(dp))
            request = southbound.flow_stats_request(dp, self.settings.cookie)
            dp.send_msg(request)
            self.readback_xid[dp.id] = request.xid
            dp.connected_at = time.monotonic()
        elif self.datapaths.get(dp.id) is dp:
            self.logger.warning("switch %s disconnected; its flows stay in place",
                                dpid_to_str(dp.id))
            self.event("switch_disconnected", dpid=dpid_to_str(dp.id))
            del self.datapaths[dp.id]
            self.installed.pop(dp.id, None)
            self.keep_until.pop(dp.id, None)
            self.retiring.pop(dp.id, None)
            # Counters restart with the next connection: no rate across the gap.
            self.port_meters.forget(lambda key: key[0] == dp.id)
            self.demand_meters.forget(lambda key: key[0] == dp.id)
            self.topo.switch_disconnected(dp.id)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev):
        dp = ev.msg.datapath
        collected = self.port_replies.get(dp.id)
        if collected is None:
            return
        collected.extend(p for p in (southbound.parse_port(dp, d) for d in ev.msg.body) if p)
        if ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
            return
        del self.port_replies[dp.id]
        self.topo.switch_connected(dp.id, collected, time.monotonic())
        self._schedule_reconcile()
        self._send_lldp(dp)

    @set_ev_cls([ofp_event.EventOFPFlowStatsReply, ofp_event.EventOFPFlowDescStatsReply],
                MAIN_DISPATCHER)
    def _flow_stats(self, ev):
        dp = ev.msg.datapath
        collected = self.readback.get(dp.id)
        if collected is None or ev.msg.xid != self.readback_xid.get(dp.id):
            self._flow_counters(dp, ev.msg)
            return
        for stat in ev.msg.body:
            if stat.cookie == self.settings.cookie:
                flow = southbound.flow_entry_from_stats(dp, stat)
                collected[flow.key] = flow
        if ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
            return
        self.logger.info("switch %s holds %d of our flow entries; taking them over",
                         dpid_to_str(dp.id), len(collected))
        self.installed[dp.id] = self.readback.pop(dp.id)
        now = time.monotonic()
        if collected:
            self.keep_until[dp.id] = now + self.settings.link_timeout
        for flow in collected.values():
            fields = dict(flow.match)
            if flow.table == TABLE_INGRESS and "eth_src" in fields and "in_port" in fields:
                self.topo.restore_host(fields["eth_src"], dp.id, fields["in_port"], now)
        self._schedule_reconcile()

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        dp, msg = ev.msg.datapath, ev.msg
        port = southbound.parse_port(dp, msg.desc)
        if port is None or dp.id not in self.topo.graph:
            return
        now = time.monotonic()
        if msg.reason == dp.ofproto.OFPPR_DELETE:
            changed = self.topo.port_deleted(dp.id, port.port_no)
        else:
            changed = self.topo.port_changed(dp.id, port, now)
        state = ("deleted" if msg.reason == dp.ofproto.OFPPR_DELETE
                 else "up" if port.live else "down")
        self.logger.info("port %s:%d %s", dpid_to_str(dp.id), port.port_no, state)
        self.event("port_" + state, dpid=dpid_to_str(dp.id), port_no=port.port_no,
                   changed_forwarding=changed)
        if port.live and msg.reason != dp.ofproto.OFPPR_DELETE:
            self._send_lldp(dp, [port.port_no])
        if changed:
            self._schedule_reconcile()

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev):
        dp, msg = ev.msg.datapath, ev.msg
        if msg.cookie != self.settings.cookie:
            return
        flow = southbound.flow_entry_from_stats(dp, _StatsView(msg))
        self.installed.get(dp.id, {}).pop(flow.key, None)
        mac = dict(flow.match).get("eth_src")
        host = self.topo.hosts.get(mac) if mac else None
        if flow.table == TABLE_INGRESS and host and host.dpid == dp.id:
            self.logger.info("host %s idle; forgetting it", mac)
            self.event("host_expired", mac=mac)
            self.topo.remove_host(mac)
        self._schedule_reconcile()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _error(self, ev):
        msg = ev.msg
        self.logger.error("switch %s reported error type=%d code=%d",
                          dpid_to_str(msg.datapath.id), msg.type, msg.code)

    # -- event log ------------------------------------------------------------------------

    def event(self, kind: str, **details) -> dict:
        """Record something that happened (GET /v1/events); topology changes become the
        cause of the recomputation that follows them."""
        self._event_seq += 1
        record = {"seq": self._event_seq, "time": round(time.time(), 4), "event": kind,
                  **details}
        self.event_log.append(record)
        if kind != "reconciled":
            self._pending_causes.append(self._event_seq)
        return record

    # -- reconciling flow tables ----------------------------------------------------------

    def _schedule_reconcile(self, recompute: bool = True):
        """Coalesce a burst of events into one recomputation, run right after them.  One
        runner at a time: sending can yield (a switch's send queue fills up), and two
        recomputations interleaving on one switch's table image would corrupt it.
        ``recompute=False`` only sends the plan in force again (what it retired)."""
        if recompute:
            self._reconcile_wanted = True
        else:
            self._resend_wanted = True
        if not self._reconcile_running:
            self._reconcile_running = True
            hub.spawn(self._reconcile_runner)

    def _reconcile_runner(self):
        try:
            while self._reconcile_wanted or self._resend_wanted:
                recompute = self._reconcile_wanted
                self._reconcile_wanted = self._resend_wanted = False
                if recompute:
                    self._reconcile()
                else:
                    self._send_plan([sorted(self.datapaths)])
        finally:
            self._reconcile_running = False

    def _reconcile(self):
        try:
            started = time.monotonic()
            allowed = allowed_ports(self.topo, self.settings.path_stretch)
            restored, self._restored = self._restored, set()
            revert = {d for (u, d), ports in allowed.items()
                      if any((u, port) in restored for port in ports)}
            in_force = self.next_hops
            current = {key: hops for key, hops in in_force.items() if key[1] not in revert}
            proposed = compute_next_hops(self.topo, self.policy, self.demand(),
                                         self.settings.path_stretch, current)
            computed = time.monotonic()
            if self.policy == "adaptive":
                proposed = self.damper.apply(proposed, self.next_hops, computed, allowed,
                                             revert=revert)
            self.next_hops = proposed
            protection = (plan_protection(self.topo.graph, proposed, self.settings.path_stretch)
                          if self.settings.protection else None)
            self.plan = build_plan(self.topo, self.settings.host_idle_timeout, proposed,
                                   protection)
            waves = update_waves(self.topo, in_force, proposed)
            waves.append(sorted(set(self.datapaths) - {d for w in waves for d in w}))
            totals = self._send_plan(waves)
            self.last_reconcile = dict(totals, compute_seconds=round(computed - started, 4),
                                       total_seconds=round(time.monotonic() - started, 4))
            causes, self._pending_causes = self._pending_causes, []
            if totals["group_mods"] or totals["flow_mods"]:
                self.last_change = self.last_reconcile
                self.event("reconciled", policy=self.policy, causes=causes,
                           **self.last_reconcile)
                self.logger.info("reconciled (%s): %d flow mods, %d group mods in %.1f ms",
                                 self.policy, totals["flow_mods"], totals["group_mods"],
                                 1000 * (time.monotonic() - started))
        except Exception:  # never let one bad recomputation kill the controller
            self.logger.exception("recomputing the forwarding plan failed")

    # -- policy and statistics ----------------------------------------------------------

    def set_policy(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError("policy must be one of %s, got %r" % (", ".join(POLICIES), policy))
        if policy != self.policy:
            self.logger.info("policy %s -> %s", self.policy, policy)
            self.event("policy", old=self.policy, new=policy)
            self.policy = policy
            self.next_hops = {}  # a new policy takes effect whole, not damped
            self._schedule_reconcile()

    def demand(self) -> dict:
        """{(ingress switch, destination switch): bits/s} measured by the ingress
        counting entries (see forwarding.py)."""
        where = {mac: host.dpid for mac, host in self.topo.hosts.items()}
        result = {}
        for (dpid, mac), meter in self.demand_meters.meters.items():
            dst = where.get(mac)
            if dst is not None and dst != dpid:
                key = (dpid, dst)
                result[key] = result.get(key, 0.0) + 8 * meter.rate("bytes")
        return result

    def _poll_stats(self):
        while True:
            hub.sleep(self.settings.stats_interval)
            for dpid, dp in list(self.datapaths.items()):
                if dpid not in self.installed:
                    continue
                try:
                    dp.send_msg(southbound.port_stats_request(dp))
                    dp.send_msg(southbound.flow_stats_request(dp, self.settings.cookie,
                                                              TABLE_FORWARD))
                except Exception:
                    self.logger.exception("polling %s failed", dpid_to_str(dpid))

    def _rebalance(self):
        while True:
            hub.sleep(self.settings.rebalance_interval)
            if self.policy == "adaptive":
                self._schedule_reconcile()

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev):
        dp, now = ev.msg.datapath, time.monotonic()
        if dp.id not in self.topo.graph:
            return
        for stat in ev.msg.body:
            if stat.port_no <= dp.ofproto.OFPP_MAX:
                meter = self.port_meters.update((dp.id, stat.port_no),
                                                southbound.port_counters(stat), now)
                if "rx_packets" in meter.grew:
                    self.topo.port_received(dp.id, stat.port_no, now)
        for link in self.topo.links():
            if link.src == dp.id:
                link.rate_bps = 8 * self.port_meters.rate((dp.id, link.src_port), "tx_bytes")

    def _flow_counters(self, dp, msg):
        now = time.monotonic()
        seen = self._counted.setdefault(dp.id, set())
        for stat in msg.body:
            if stat.table_id != TABLE_FORWARD:
                continue
            match, byte_count = southbound.flow_counters(dp, stat)
            if match.get("metadata") == FROM_LOCAL_HOST and "eth_dst" in match:
                key = (dp.id, match["eth_dst"])
                self.demand_meters.update(key, {"bytes": byte_count}, now)
                seen.add(key)
        if not msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
            # An entry the switch no longer reports carries no demand any more.
            del self._counted[dp.id]
            self.demand_meters.forget(lambda key: key[0] == dp.id and key not in seen)

    def port_rates(self, dpid: int) -> list[dict]:
        switch = self.topo.switch(dpid)
        rows = []
        for port_no in sorted(switch.ports):
            row = {"port_no": port_no, "capacity_bps": self.topo.capacity(dpid, port_no)}
            for name in southbound.PORT_COUNTERS:  # zero until two samples were seen
                rate = self.port_meters.rate((dpid, port_no), name)
                if name.endswith("_bytes"):
                    row[name.replace("_bytes", "_bps")] = round(8 * rate, 1)
                else:
                    row[name.replace("_packets", "_pps").replace("_dropped", "_drops")] = round(
                        rate, 1)
            rows.append(row)
        return rows

    def _sync_switch(self, dp, installed, desired):
        """Send what differs.  Order makes it make-before-break: groups a new entry points
        at exist before it, entries exist before what they supersede is deleted, and a
        group goes only once no entry points at it."""
        to_add, to_delete = diff(installed, desired)
        now = time.monotonic()
        if now < self.keep_until.get(dp.id, 0):
            to_delete = []
        else:
            to_delete = self._retire(dp.id, to_delete, now)
        cookie = self.settings.cookie
        counts = {"flow_mods": 0, "group_mods": 0}

        def send(item, delete=False):
            if isinstance(item, GroupEntry):
                dp.send_msg(southbound.group_mod(dp, item, delete=delete))
                counts["group_mods"] += 1
            else:
                dp.send_msg(southbound.flow_mod(dp, item, cookie, delete=delete))
                counts["flow_mods"] += 1
            if delete:
                installed.pop(item.key, None)  # a flow-removed may have beaten us to it
            else:
                installed[item.key] = item

        for item in sorted(to_add, key=_install_order):
            send(item)
        for item in sorted(to_delete, key=_install_order, reverse=True):
            send(item, delete=True)
        return counts

    def _send_plan(self, waves) -> dict:
        """Bring every switch to the plan in force, wave after wave; message counts."""
        totals = {"flow_mods": 0, "group_mods": 0, "waves": 0}
        for wave in waves:
            changed = []
            for dpid in wave:
                dp, installed = self.datapaths.get(dpid), self.installed.get(dpid)
                if dp is None or installed is None:
                    continue
                counts = self._sync_switch(dp, installed, self.plan.get(dpid, {}))
                for name, count in counts.items():
                    totals[name] += count
                if any(counts.values()):
                    changed.append(dp)
            if changed:
                totals["waves"] += 1
                self._wait_applied(changed)  # before the next wave sends into them
        now = time.monotonic()
        if any(now - since < RETIRE_GRACE for retiring in self.retiring.values()
               for since in retiring.values()):
            hub.spawn_after(RETIRE_GRACE, self._schedule_reconcile, False)
        return totals

    def _wait_applied(self, dps) -> None:
        """Until each switch has answered a barrier (it has applied everything sent to
        it before), BARRIER_TIMEOUT at most: a silent switch must not stall the rest."""
        waiting = []
        for dp in dps:
            request = southbound.barrier_request(dp)
            dp.set_xid(request)
            replied = hub.Event()
            self._barriers[(dp.id, request.xid)] = replied
            waiting.append(((dp.id, request.xid), replied))
            dp.send_msg(request)
        deadline = time.monotonic() + BARRIER_TIMEOUT
        for key, replied in waiting:
            replied.wait(max(0.0, deadline - time.monotonic()))
            self._barriers.pop(key, None)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        replied = self._barriers.pop((ev.msg.datapath.id, ev.msg.xid), None)
        if replied is not None:
            replied.set()

    def _retire(self, dpid, unneeded, now) -> list:
        """Of what the plan no longer needs, what has been unneeded for RETIRE_GRACE
        (_send_plan sends the plan again once the rest is due)."""
        since = self.retiring.get(dpid, {})
        since = {item.key: since.get(item.key, now) for item in unneeded}
        self.retiring[dpid] = since
        return [item for item in unneeded if now - since[item.key] >= RETIRE_GRACE]

    # -- discovery ----------------------------------------------------------------------

    def _housekeeping(self):
        while True:
            hub.sleep(self.settings.lldp_interval)
            try:
                now = time.monotonic()
                for dpid, dp in list(self.datapaths.items()):
                    if dpid not in self.installed and dpid not in self.readback:
                        continue
                    if dpid in self.readback and now - dp.connected_at > READBACK_TIMEOUT:
                        self.logger.warning("switch %s did not report its flows; clearing "
                                            "ours and reinstalling", dpid_to_str(dpid))
                        dp.send_msg(southbound.delete_all_flows(dp, self.settings.cookie))
                        del self.readback[dpid]
                        self.installed[dpid] = {}
                        self._schedule_reconcile()
                    self._send_lldp(dp)
                for dpid in [d for d, t in self.keep_until.items() if now >= t]:
                    del self.keep_until[dpid]
                    self._schedule_reconcile()  # now remove what was not re-proven
                expired = self.topo.expire_links(now, self.settings.link_timeout)
                for link in expired:
                    self.logger.warning("link %s:%d -> %s:%d silent; down",
                                        dpid_to_str(link.src), link.src_port,
                                        dpid_to_str(link.dst), link.dst_port)
                    self.event("link_silent", src=dpid_to_str(link.src),
                               src_port=link.src_port, dst=dpid_to_str(link.dst),
                               dst_port=link.dst_port)
                if expired:
                    self._schedule_reconcile()
                cutoff = now - DUPLICATE_WINDOW
                self._recent_frames = {k: t for k, t in self._recent_frames.items()
                                       if t > cutoff}
            except Exception:
                self.logger.exception("housekeeping failed")

    def _send_lldp(self, dp, port_numbers=None):
        if dp.id not in self.topo.graph:
            return
        switch = self.topo.switch(dp.id)
        for port_no in port_numbers or list(switch.ports):
            port = switch.ports.get(port_no)
            if port is not None and port.live:
                frame = southbound.lldp_frame(dp.id, port_no, port.hw_addr)
                dp.send_msg(southbound.packet_out(dp, [port_no], frame))

    # -- packets from the switches ------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        if dp.id not in self.topo.graph:
            return
        try:
            in_port = msg.match["in_port"]
            pkt = packet.Packet(msg.data)
            eth = pkt.get_protocol(ethernet.ethernet)
        except Exception:
            self.logger.debug("unparsable packet-in from %s", dpid_to_str(dp.id))
            return
        if eth is None:
            return
        if eth.ethertype == ETH_TYPE_LLDP:
            self._lldp_in(dp, in_port, pkt)
            return
        now = time.monotonic()
        digest = hashlib.blake2b(msg.data, digest_size=16).digest()
        if digest in self._recent_frames:
            return
        self._recent_frames[digest] = now
        arp_pkt = pkt.get_protocol(arp.arp)
        ip_pkt = pkt.get_protocol(ipv4.ipv4)
        src_ip = arp_pkt.src_ip if arp_pkt else ip_pkt.src if ip_pkt else None
        asked = (arp_pkt.dst_ip if arp_pkt and arp_pkt.opcode == arp.ARP_REQUEST
                 and arp_pkt.src_ip != arp_pkt.dst_ip else None)
        verdict = handle_frame(self.topo, dp.id, in_port, now, eth.src, eth.dst,
                               None if src_ip == "0.0.0.0" else src_ip, asked)
        if verdict.learned:
            self.logger.info("host %s (%s) at %s:%d", eth.src, src_ip or "-",
                             dpid_to_str(dp.id), in_port)
            self.event("host_learned", mac=eth.src, dpid=dpid_to_str(dp.id), port_no=in_port)
            self._schedule_reconcile()
        if verdict.arp_reply_mac:
            reply = southbound.arp_reply(eth, arp_pkt, verdict.arp_reply_mac)
            dp.send_msg(southbound.packet_out(dp, [in_port], reply))
        for out_dpid, ports in verdict.outputs.items():
            out_dp = self.datapaths.get(out_dpid)
            if out_dp is not None:
                out_dp.send_msg(southbound.packet_out(out_dp, ports, msg.data))

    def _lldp_in(self, dp, in_port, pkt):
        origin = southbound.parse_lldp(pkt)
        if origin is None or origin[0] not in self.topo.graph:
            return
        src, src_port = origin
        try:
            new = self.topo.link_seen(src, src_port, dp.id, in_port, time.monotonic())
        except TopologyError:
            return
        if new:
            self.logger.info("link %s:%d -> %s:%d", dpid_to_str(src), src_port,
                             dpid_to_str(dp.id), in_port)
            self.event("link_up", src=dpid_to_str(src), src_port=src_port,
                       dst=dpid_to_str(dp.id), dst_port=in_port)
            # Revertive: once a link is back, traffic toward destinations it can serve
            # is placed afresh instead of sticking to the detour it took meanwhile.
            self._restored.add((src, src_port))
            self._schedule_reconcile()
            # Prove the reverse direction now rather than at the next probe round.
            if not any(lk.src == dp.id for lk in self.topo.links_at(dp.id, in_port)):
                self._send_lldp(dp, [in_port])


def _install_order(item) -> int:
    """Failover groups first, then the SELECT groups whose buckets point at them, then
    flow entries that point at either; deletions run in the reverse order."""
    if isinstance(item, GroupEntry):
        return 0 if item.kind == FAST_FAILOVER else 1
    return 2


class _StatsView:
    """Lets a FlowRemoved message be read like a flow-stats entry."""

    def __init__(self, msg):
        self.table_id, self.priority, self.match = msg.table_id, msg.priority, msg.match
        self.idle_timeout = msg.idle_timeout
        self.instructions = []
        self.flags = msg.datapath.ofproto.OFPFF_SEND_FLOW_REM
