"""The Ryu application: turns OpenFlow events into calls on the core, and the core's plan
into the messages that differ from what the switches hold.

Run it as ``ryu-manager sdn_app.controller`` (or ``sdn_app.ryuapp.app``; options: see
core/settings.py).  Per-switch state lives in a SwitchSession (session.py); sending a
plan, make-before-break, is the core's Reconciler (core/reconcile.py); clients read the
controller through a NetworkView (core/view.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import socket
import time

from ryu import cfg
from ryu.app.wsgi import WSGIApplication
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub
from ryu.lib.packet import arp, ethernet, ipv4, packet
from ryu.ofproto import ofproto_v1_3, ofproto_v1_5

from ..core.cluster import LEADER, NotLeader, StoreUnavailable
from ..core.events import RECONCILED, EventLog
from ..core.frames import PendingArp, handle_frame
from ..core.meters import MeterBank
from ..core.pipeline import (
    ETH_TYPE_LLDP,
    PACKET_IN_METER,
    TABLE_ADMISSION,
    TABLE_CONNECTIONS,
    TABLE_FORWARD,
    TABLE_SERVICE,
    describe_item,
    is_label_mac,
    learned_host,
    link_port_of,
    port_of_meter,
)
from ..core.reconcile import SERVICES, Coalescer, Reconciler, update_waves
from ..core.routing import INCREMENTAL_POLICIES, Routing
from ..core.services import (
    ServiceTable,
    connection_cookie,
    new_connection_match,
    parse_service,
    parse_services_file,
)
from ..core.te import (
    POLICIES,
    Damper,
    allowed_ports,
    compute_next_hops,
    highest_utilization,
    link_loads,
)
from ..core.telemetry import Telemetry
from ..core.topology import Topology, TopologyError, dpid_to_str
from ..core.view import NetworkView
from . import cluster, codec, metrics, options, tls
from .admission import AdmissionRunner
from .rest import Access, read_token, register_fallback, register_rest
from .scaling import PoolScaling
from .services import ServiceRunner
from .session import SwitchSession
from .webpage import register_page

LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname).1s %(message)s"
tls.install()  # OpenFlow over TLS for every switch, not only the first (tls.py)


def _timestamp_log_lines() -> None:
    """Ryu's log handlers print the bare message; ours say when (to the millisecond:
    what an operator lines a log up against) and how bad.  Handlers set up by a
    ``--log-config-file`` keep their own format."""
    for handler in logging.getLogger().handlers:
        if handler.formatter is None:
            handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))


# How long a switch may take to report the flows it holds before we clear ours instead.
READBACK_TIMEOUT = 5.0
# A frame the controller saw this recently is not delivered again: the guard against a
# broadcast coming back through a link that LLDP has not proven yet.
DUPLICATE_WINDOW = 0.5
# How often the health checker looks for probes that are due or timed out.
HEALTH_TICK = 0.01
# How long one wave of an update waits for the switches' barrier replies at most.
BARRIER_TIMEOUT = 0.5
# An LLDP probe that came back later than this is not counted as a delay: it is more
# likely replayed than late, and a replay must not stretch the settle time (at most 4 x
# this, for 10 s: Topology.settle_after) much beyond it.
LLDP_DELAY_CAP_S = 2.5
# Frames from a port about to settle are kept this long at most, this many in all.
DEFER_LIMIT_S = 5.0
DEFERRED_MAX = 1024
REPLAY_GATHER_S = 0.05  # a host learned this close before a replay waits for it
MOD_RETRIES = 3  # a refused add is sent again this many times, after 1, 2, 3 s
MOD_RETRY_S = 1.0
REFUSAL_REPORT_S = 10.0  # a port's refused hosts are reported at most this often
# The kinds packet-ins are counted by (sdn_packet_ins_total), by ethertype; any other
# is "other", a frame that does not parse "unparsable".
PACKET_IN_KINDS = {ETH_TYPE_LLDP: "lldp", 0x0806: "arp", 0x0800: "ipv4", 0x86DD: "ipv6"}


class ElasticController(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION, ofproto_v1_5.OFP_VERSION]
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _timestamp_log_lines()
        try:
            self.settings = options.load(self.CONF)
        except ValueError as exc:
            self.logger.error("%s", exc)
            raise SystemExit(2) from None
        self.topo = Topology(settle_time=self.settings.settle_time,
                             max_hosts_per_port=self.settings.max_hosts_per_port,
                             max_hosts_per_switch=self.settings.max_hosts_per_switch,
                             link_timeout=self.settings.link_timeout)
        for dpid, port, mbps in self.settings.link_capacity_mbps:
            self.topo.capacity_overrides[(dpid, port)] = mbps * 1e6
        self.sessions: dict[int, SwitchSession] = {}  # dpid -> connected switch
        # Switches that split flows by hashing (codec.splits_by_hash); kept across a
        # disconnect, so their plan does not change while they are away.
        self.hash_split_switches: set[int] = set()
        self.policy = self.settings.policy
        self.path_stretch = self.settings.path_stretch
        # Next hops, backups and the plan in force, updated where a change reaches.
        self.routing = Routing(self.path_stretch, self.settings.protection,
                               self.settings.host_idle_timeout, self.settings.admission_ports)
        self.admission = AdmissionRunner(
            self.settings, self.topo, lambda: self.routing.next_hops, self._report_refusal,
            self.logger) if self.settings.admission_ports else None
        self._policy_changed = False
        self.damper = Damper(self.settings.rebalance_threshold, self.settings.rebalance_hold)
        self._restored = set()  # (dpid, port) of links back since the last recomputation
        self.last_reconcile = {}  # timings and message counts of the last recomputation
        self.last_change = {}  # ... of the last one that changed any switch
        self.event_log = EventLog(time.time)
        self._recent_frames = {}  # frame digest -> time first delivered
        self._deferred = []  # (dpid, port, frame, first seen) from ports about to settle
        self._replay_at = 0.0  # when the deferred frames are looked at again
        self._held_for_replay = False  # reconciles held until that replay (_frame_in)
        self._pending_arp = PendingArp()  # requests for addresses nobody has yet
        self.telemetry = Telemetry()  # our own counts, for the metrics
        self.reconciler = Reconciler(
            wait_applied=self._wait_applied, clock=time.monotonic,
            resend_later=lambda delay: hub.spawn_after(delay, self.coalescer.request, False),
            discovering=lambda: self.topo.discovery_left(time.monotonic()))
        self.coalescer = Coalescer(hub.spawn, self._reconcile)
        self.services = ServiceTable()
        self._load_services()
        self.service_runner = ServiceRunner(
            self.services, self.topo, self._send_frame, self._flood_frame,
            lambda: self.coalescer.request(SERVICES), self.event, self.logger)
        self._service_keys: dict[int, set] = {}  # dpid -> service entry keys it holds
        # dpid -> the aggregate counts being asked for: {"asked_at": t, "xids": {xid:
        # ("connections", backend id) or ("requests", service name)} still out,
        # "counts": {backend id: entries}, "requests": {service: packets} answered}
        self._connection_polls: dict[int, dict] = {}
        self._poll_warned: dict[int, float] = {}  # dpid -> last warned of a lost round
        self._refusals: dict = {}  # (kind, dpid, port) -> (last reported, refused since)
        # Signs our LLDP probes: a new secret per run, so probes a host captured cannot
        # be forged, altered or replayed to a later run (codec.parse_lldp).
        self._lldp_key = secrets.token_bytes(32)
        self._up_backends: set = set()  # backend ids up at the last recomputation
        # service name -> its least_conn placements per second (see requests_of)
        self._placement_meters = MeterBank(self.settings.stats_time_constant,
                                           self.settings.stats_interval)
        self._slots_depend_on = None  # slow-start steps and saturated backends, as built
        try:
            token = read_token(self.settings.rest_token, self.settings.rest_token_file)
        except (OSError, ValueError) as exc:
            self.logger.error("rest_token_file: %s", exc)
            raise SystemExit(2) from None
        self.wsgi = kwargs["wsgi"]
        self.cluster = None
        self._elected_at = None  # when this node was last elected, until every switch ...
        self._roles_confirmed = None  # ... confirmed it as master, this many s later
        self._led_generation = None  # the generation this node last led under
        if self.settings.cluster_store:
            try:
                self.cluster = cluster.ClusterMember(
                    self.settings, self._node_id(), self._rest_url(), self._role_changed,
                    self.logger)
            except ValueError as exc:
                self.logger.error("%s", exc)
                raise SystemExit(2) from None
            self.threads.append(hub.spawn(self.cluster.run))
            if self.settings.cluster_heartbeat_ms:
                self.threads.append(hub.spawn(self.cluster.watch_leader,
                                              self.settings.cluster_heartbeat_ms / 1000))
        view = NetworkView(self)
        register_rest(self.wsgi, view, Access(token))
        register_page(self.wsgi)
        if self.settings.prometheus_port:
            served = metrics.serve(view, self.settings.prometheus_host,
                                   self.settings.prometheus_port, hub.spawn)
            if served is not None:
                self.threads.append(served)
        self.pool_scaling = PoolScaling(
            self.services, self.settings.scaling_command, self.services_changed,
            self.event, self.logger, hub.spawn, hub.sleep)
        self.threads.append(hub.spawn(self._health_checks))
        self.threads.append(hub.spawn(self._scale_pools))
        self.threads.append(hub.spawn(self._housekeeping))
        self.threads.append(hub.spawn(self._poll_stats))
        self.threads.append(hub.spawn(self._rebalance))

    def start(self):
        """Once every app has registered its REST routes: the JSON answer for any
        other path or method."""
        register_fallback(self.wsgi)
        return super().start()

    @property
    def plan(self) -> dict:
        return self.reconciler.plan

    # -- services -------------------------------------------------------------------------

    def _load_services(self) -> None:
        path = self.settings.services_file
        if not path:
            return
        try:
            with open(path, encoding="utf-8") as handle:
                specs = parse_services_file(json.load(handle))
            for spec in specs:
                self.services.add(spec)
        except (OSError, ValueError, KeyError) as exc:
            self.logger.error("services_file %s: %s", path, exc)
            raise SystemExit(2) from None
        self.logger.info("%d services from %s", len(specs), path)

    def _send_frame(self, dpid: int, port: int, frame: bytes) -> None:
        session = self.sessions.get(dpid)
        if session is not None:
            session.send_msg(codec.packet_out(session.dp, [port], frame))

    def _flood_frame(self, frame: bytes) -> None:
        ports: dict = {}
        for dpid, port in self.topo.edge_ports(time.monotonic()):
            ports.setdefault(dpid, []).append(port)
        for dpid, port_list in ports.items():
            session = self.sessions.get(dpid)
            if session is not None:
                session.send_msg(codec.packet_out(session.dp, port_list, frame))

    def _ask_connection_counts(self, session) -> None:
        """Aggregate requests: how many connection entries each backend has, and how
        many new connections each service's new-connection entry has seen."""
        now = time.monotonic()
        unanswered = self._connection_polls.get(session.dpid)
        if unanswered is not None and now - self._poll_warned.get(session.dpid, -1e9) > 30:
            # its counts (and the drains waiting on them) stay as of the last whole round
            self._poll_warned[session.dpid] = now
            self.logger.warning(
                "%s left %d of its connection counts unanswered for %.1f s (warned at "
                "most every 30 s)", dpid_to_str(session.dpid), len(unanswered["xids"]),
                now - unanswered["asked_at"])
        poll = {"asked_at": now, "xids": {}, "counts": {}, "requests": {}}
        for service in self.services.services.values():
            asks = [] if service.spec.scheduler == "least_conn" else [  # requests_of
                (("requests", service.spec.name), TABLE_SERVICE,
                 new_connection_match(service), self.settings.cookie)]
            asks += [(("connections", backend.backend_id), TABLE_CONNECTIONS, None,
                      connection_cookie(self.settings.cookie, backend.backend_id))
                     for backend in service.backends.values()]
            for what, table, match, cookie in asks:
                request = codec.aggregate_request(session.dp, cookie, table, match)
                session.dp.set_xid(request)
                poll["xids"][request.xid] = what
                session.send_msg(request)
        self._connection_polls[session.dpid] = poll  # an unanswered round is dropped

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, MAIN_DISPATCHER)
    def _aggregate_stats(self, ev):
        session = self._session(ev.msg.datapath)
        poll = self._connection_polls.get(session.dpid) if session else None
        if poll is None or ev.msg.xid not in poll["xids"]:
            return
        try:
            entries, packets = codec.aggregate_counts(ev.msg)
        except (AttributeError, TypeError, ValueError):
            self.logger.warning("unreadable aggregate counts from %s",
                                dpid_to_str(session.dpid))
            return
        kind, key = poll["xids"].pop(ev.msg.xid)
        if kind == "requests":
            poll["requests"][key] = packets
        else:
            poll["counts"][key] = entries
        if not poll["xids"]:
            del self._connection_polls[session.dpid]
            for name, count in poll["requests"].items():
                session.request_meters.update(name, {"requests": count}, poll["asked_at"])
            self.service_runner.count_connections(session.dpid, poll["counts"],
                                                  poll["asked_at"], self.sessions)
            now = time.monotonic()
            self._drain(now)
            self._adapt(now)

    def requests_of(self, name: str) -> float:
        """New connections per second to a service, in the last interval counted: the
        switches' new-connection entries, summed; under least_conn the controller's
        own placements (it is sent every new connection), because Open vSwitch's
        userspace datapath counts only about a quarter of the packets an entry sends to
        the controller in that entry's n_packets (measured: 62 of 240 SYNs)."""
        service = self.services.services.get(name)
        if service is not None and service.spec.scheduler == "least_conn":
            meter = self._placement_meters.meters.get(name)
            return meter.latest_rate("requests") if meter else 0.0
        return sum(session.request_meters.meters[name].latest_rate("requests")
                   for session in self.sessions.values()
                   if name in session.request_meters.meters)

    def _flush_connections(self) -> None:
        """Delete the learned connection entries of backends that went down or left
        since the last recomputation (whose slots that recomputation just moved): a
        client retrying with the same addresses and ports (a refused SYN leaves no
        TIME_WAIT; a UDP flow keeps its 5-tuple) then gets a live backend instead of
        staying pinned to a dead one until the entry times out."""
        up = {b.backend_id for s in self.services.services.values()
              for b in s.backends.values() if b.health.up}
        gone, self._up_backends = self._up_backends - up, up
        for dpid in self._service_keys if gone else ():
            session = self.sessions.get(dpid)
            if session is not None:
                for backend_id in gone:
                    session.send_msg(codec.delete_flows(
                        session.dp, connection_cookie(self.settings.cookie, backend_id),
                        TABLE_CONNECTIONS))

    def _drain(self, now: float) -> None:
        """Take out the draining backends whose connections have ended (or whose
        drain timed out)."""
        for name, ip, why in self.services.drained(
                self.connections, self.service_runner.counted_at, now):
            self.services.get(name).remove_backend(ip)
            self.services_changed("backend_removed", service=name, ip=ip, reason=why)

    def _adapt(self, now: float) -> None:
        """Adaptive services follow their backends' measured load (damped)."""
        for name in self.services.adapt(self.connections, self.rate_toward, now,
                                        self.settings.rebalance_threshold,
                                        self.settings.rebalance_hold):
            factors = {ip: round(b.load_factor, 3)
                       for ip, b in self.services.get(name).backends.items()}
            self.services_changed("backend_weights", service=name, load_factors=factors)

    def _slots_may_change(self, now: float) -> None:
        """Rebuild the services' entries when a slow start steps on or a capped
        backend reaches or leaves its cap."""
        depends = self.services.slot_inputs(now, self.connections)
        if self._slots_depend_on is not None and depends != self._slots_depend_on:
            self.coalescer.request(SERVICES)
        self._slots_depend_on = depends

    def now(self) -> float:
        return time.monotonic()

    def _scale_pools(self):
        """Once per statistics poll: the scaled services' pools follow their load."""
        while True:
            hub.sleep(self.settings.stats_interval)
            try:
                now = time.monotonic()
                for name, service in self.services.services.items():
                    if service.spec.scheduler == "least_conn":
                        self._placement_meters.update(
                            name, {"requests": service.placements}, now)
                self.pool_scaling.tick(now, self.connections, self.rate_toward,
                                       self.requests_of)
            except Exception:
                self.logger.exception("pool scaling failed")

    def _health_checks(self):
        while True:
            hub.sleep(HEALTH_TICK)
            try:
                now = time.monotonic()
                self.service_runner.tick(now)
                if self.services.services:
                    self._slots_may_change(now)
            except Exception:
                self.logger.exception("health checks failed")

    def services_changed(self, kind: str, **details) -> None:
        self.logger.info("%s %s", kind, " ".join("%s=%s" % kv for kv in details.items()))
        self.event(kind, **details)
        self._record_state()
        if kind in ("service_removed", "backend_removed"):
            self.service_runner.forget(details["service"], details.get("ip"))
        if kind == "backend_removed":
            self.pool_scaling.stopped(details["service"], details["ip"])
        if kind == "service_removed":
            self.pool_scaling.service_removed(details["service"])
            for meters in [self._placement_meters] + [
                    session.request_meters for session in self.sessions.values()]:
                meters.forget(lambda name: name == details["service"])
        self.coalescer.request(SERVICES)

    @property
    def connections(self) -> dict:
        return self.service_runner.connections

    def rate_toward(self, ip: str) -> float:
        host = self.topo.host_by_ip(ip)
        if host is None:
            return 0.0
        return sum(8 * session.demand_meters.meters[host.mac].rate("bytes")
                   for session in self.sessions.values()
                   if host.mac in session.demand_meters.meters)

    def _with_services(self, touched):
        """Put the service entries on every switch with hosts (in the plan in force),
        taking back those no longer wanted; the keys that changed join ``touched``."""
        if not self.services.services and not self._service_keys:
            return touched  # nothing to add or take back: no work on the hot path
        now, active = time.monotonic(), self.connections

        def mac_of(ip):
            host = self.topo.host_by_ip(ip)
            return host.mac if host else None

        def entries_at(dpid):
            hops_from = self.topo.hops_to_hosts(dpid) if dpid is not None else None
            return {flow.key: flow for flow in self.services.entries(
                mac_of, self.settings.connection_idle_timeout, self.settings.cookie,
                now, active, hops_from, dpid)}

        plan = self.routing.plan
        wanted = {h.dpid for h in self.topo.hosts.values() if h.dpid in plan}
        per_switch = self.services.per_switch()
        common = None if per_switch else entries_at(None)
        for service in self.services.services.values():
            service.forget_places(wanted)
        for dpid in set(self._service_keys) | wanted:
            table = plan.get(dpid)
            had = self._service_keys.pop(dpid, set())
            if table is None:
                continue
            now_wanted = {} if dpid not in wanted else (
                entries_at(dpid) if per_switch else common)
            changed = set()
            for key in had - set(now_wanted):
                if table.pop(key, None) is not None:
                    changed.add(key)
            for key, flow in now_wanted.items():
                if table.get(key) != flow:
                    table[key] = flow
                    changed.add(key)
            if now_wanted:
                self._service_keys[dpid] = set(now_wanted)
            if changed and touched is not None:
                touched[dpid] = set(touched.get(dpid, ())) | changed
        self._slots_depend_on = self.services.slot_inputs(now, active)
        return touched

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
            if self.cluster is not None:
                cluster.guard_datapath(dp, self.leading, self.cluster.holding_on)
                self._send_role(dp)
            self.sessions[dp.id] = SwitchSession(dp, self.settings, time.monotonic())
            self.telemetry.connections[dp.id] += 1
        elif self._session(dp) is not None:
            self.telemetry.disconnections[dp.id] += 1
            self.logger.warning("switch %s disconnected; its flows stay in place",
                                dpid_to_str(dp.id))
            self.event("switch_disconnected", dpid=dpid_to_str(dp.id))
            del self.sessions[dp.id]  # its counters restart with the next connection
            self._connection_polls.pop(dp.id, None)  # its answers will not come now
            self.topo.switch_disconnected(dp.id, time.monotonic())

    # -- high availability (ryuapp/cluster.py, core/cluster.py) ---------------------------

    @property
    def reconciling(self) -> bool:
        """A recomputation or a send to the switches under way or due (GET /v1/policy):
        while it is, what the switches hold may still lag the model."""
        return self.coalescer.busy

    def leading(self) -> bool:
        """Whether this controller may change the switches: always when it runs alone."""
        return self.cluster is None or self.cluster.leading()

    def _node_id(self) -> str:
        if self.settings.cluster_node_id:
            return self.settings.cluster_node_id
        return "%s:%d" % (socket.gethostname(), cfg.CONF.ofp_tcp_listen_port)

    def _rest_url(self) -> str:
        host = cfg.CONF.wsapi_host
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        return "http://%s:%d" % (host, cfg.CONF.wsapi_port)

    def _send_role(self, dp) -> None:
        """Tell a switch our role: MASTER while leading, else SLAVE, with the leader's
        generation (a switch refuses a smaller one: OFPRRFC_STALE).  Nothing while the
        generation is unknown (the store never answered): the guard holds until then."""
        generation = self.cluster.election.generation
        if generation is not None:
            dp.send_msg(cluster.role_request(dp, self.cluster.is_leader, generation))

    def _role_changed(self, change) -> None:
        """The election moved: tell every switch, and a new leader takes over from what
        the switches hold (read back, as after a restart) and what the last leader
        recorded."""
        self.logger.warning("cluster: %s (leader %s, generation %s): %s", change.role,
                            change.leader, change.generation, change.reason)
        self.event("role_changed", role=change.role, leader=change.leader,
                   generation=change.generation, reason=change.reason)
        self._elected_at = time.monotonic() if change.role == LEADER else None
        if change.role != LEADER and change.leader is None:
            # Lost the store, not to another leader: stop changing anything (the guard)
            # but stay MASTER on the switches, so nothing changes hands there unless
            # another is elected, whose MASTER request then demotes us at the switch.
            return
        for session in list(self.sessions.values()):
            self._send_role(session.dp)
        if change.role != LEADER:
            return
        if change.generation == self._led_generation:
            # Leading again after losing the store, and nobody led meanwhile (the same
            # generation): the switches hold what we last sent them.
            self.coalescer.request()
            return
        self._led_generation = change.generation
        self._adopt_recorded_state(self.cluster.recorded())
        now = time.monotonic()
        for session in list(self.sessions.values()):
            session.take_over_again(self.settings, now)
            self._send_lldp(session)
        self.coalescer.request()

    def _adopt_recorded_state(self, recorded: dict) -> None:
        """What the last leader recorded that the switches cannot tell: the policy, the
        services and their backends' health, and where the event sequence stood."""
        seq = recorded.get("event_seq")
        if isinstance(seq, int) and seq > self.event_log.seq:
            self.event_log.seq = seq
        policy = recorded.get("policy")
        if policy in POLICIES and policy != self.policy:
            self.logger.info("cluster: policy %s, as the last leader had it", policy)
            self.policy, self._policy_changed = policy, True
        specs = recorded.get("services")
        if isinstance(specs, list):
            try:
                parsed = [parse_service(spec) for spec in specs]
            except (ValueError, KeyError, TypeError) as exc:
                self.logger.error("cluster: the recorded services are unreadable (%s); "
                                  "keeping ours", exc)
                return
            if [s.to_dict() for s in parsed] != [s.spec.to_dict() for s in
                                                  self.services.services.values()]:
                for name in list(self.services.services):
                    self.services.remove(name)
                for spec in parsed:
                    self.services.add(spec)
                self.logger.info("cluster: %d services, as the last leader had them",
                                 len(parsed))
        states = recorded.get("backends")
        if isinstance(states, dict):  # health as the last leader's checks found it
            for name, service in self.services.services.items():
                for ip, backend in service.backends.items():
                    state = (states.get(name) or {}).get(ip)
                    if isinstance(state, dict):
                        backend.health.up, backend.health.streak = bool(state.get("up")), 0
                        service.set_draining(ip, bool(state.get("draining")))

    def check_writable(self) -> None:
        """A change may be made here: NotLeader on a follower, StoreUnavailable on a
        leader that could not record it."""
        if self.cluster is None:
            return
        if not self.leading():
            election = self.cluster.election
            member = election.members.get(election.leader or "", {})
            raise NotLeader(election.leader, member.get("rest"))
        if not self.cluster.election.store_ok:
            raise StoreUnavailable("the cluster store does not answer, so the change "
                                   "could not be recorded: %s" % self.cluster.election.store_error)

    def cluster_status(self) -> dict:
        if self.cluster is None:
            return {"role": "standalone", "node_id": None, "leader": None,
                    "generation": None, "members": []}
        out = self.cluster.election.describe(time.monotonic(), time.time())
        out["switch_roles"] = {dpid_to_str(d): s.role for d, s in sorted(self.sessions.items())}
        out["roles_confirmed_after_s"] = (round(self._roles_confirmed, 4)
                                          if self._roles_confirmed is not None else None)
        out["modifying_messages_refused"] = sum(
            getattr(s.dp.send_msg, "refused", 0) for s in self.sessions.values())
        return out

    def _record_state(self) -> None:
        """What a new leader needs and cannot read from the switches (followers send no
        health checks: they would be packet-outs)."""
        if self.cluster is not None and self.leading():
            self.cluster.record("policy", self.policy)
            self.cluster.record("services", [s.spec.to_dict() for s in
                                             self.services.services.values()])
            self.cluster.record("backends", {
                name: {ip: {"up": b.health.up, "draining": b.draining}
                       for ip, b in service.backends.items()}
                for name, service in self.services.services.items()})

    def port_reset(self, dpid: int, port_no: int) -> None:
        """A port's classification was reset over REST: say so and recompute."""
        self.logger.info("port %s:%d reset: discovery starts afresh there",
                         dpid_to_str(dpid), port_no)
        self.event("port_reset", dpid=dpid_to_str(dpid), port_no=port_no)
        self.coalescer.request()
        session = self.sessions.get(dpid)
        if session is not None:
            self._send_lldp(session, [port_no])

    @property
    def mods_sent(self) -> dict:
        return self.reconciler.sent

    @property
    def mods_sent_to(self) -> dict:
        return self.reconciler.sent_to

    @property
    def packet_ins(self) -> int:
        return self.telemetry.packet_ins_total()

    def switch_forgotten(self, dpid: int, why: str) -> None:
        """A switch left the model (a long absence, or REST): say so and recompute."""
        self.logger.info("switch %s forgotten (%s)", dpid_to_str(dpid), why)
        self.event("switch_forgotten", dpid=dpid_to_str(dpid), reason=why)
        self.coalescer.request()

    def _session(self, dp) -> SwitchSession | None:
        """The session of this very connection (not a newer one of the same switch)."""
        session = self.sessions.get(dp.id)
        return session if session is not None and session.dp is dp else None

    @set_ev_cls(ofp_event.EventOFPDescStatsReply, MAIN_DISPATCHER)
    def _desc(self, ev):
        session = self._session(ev.msg.datapath)
        if session is None:
            return
        splits = self.settings.hash_split and codec.splits_by_hash(session.dp, ev.msg.body)
        if splits != (session.dpid in self.hash_split_switches):
            self.logger.info("switch %s splits flows by %s", dpid_to_str(session.dpid),
                             "hashing in its split table" if splits else "SELECT groups")
            if splits:
                self.hash_split_switches.add(session.dpid)
            else:
                self.hash_split_switches.discard(session.dpid)
            self.coalescer.request()

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev):
        session = self._session(ev.msg.datapath)
        ports = session.add_ports(ev.msg) if session else None
        if ports is None:
            return
        session.meter_ports(self.settings, [port.port_no for port in ports])
        self.topo.switch_connected(session.dpid, ports, time.monotonic())
        self.coalescer.request()
        self._send_lldp(session)

    @set_ev_cls([ofp_event.EventOFPFlowStatsReply, ofp_event.EventOFPFlowDescStatsReply],
                MAIN_DISPATCHER)
    def _flow_stats(self, ev):
        session = self._session(ev.msg.datapath)
        if session is None:
            return
        now = time.monotonic()
        if not session.is_readback(ev.msg):
            session.add_flow_counters(ev.msg, now)
            return
        entries = session.add_readback(ev.msg)
        if entries is None:
            return
        self.logger.info("switch %s holds %d of our flow entries; taking them over",
                         dpid_to_str(session.dpid), len(entries))
        # The restarted controller must re-prove the links and hosts these serve
        # before it deletes any of them.
        session.tables.take_over(entries, now + self.settings.link_timeout)
        linked = [port for port in map(link_port_of, entries.values()) if port is not None]
        self.topo.expect_links(session.dpid, linked, now + self.settings.link_timeout)
        for flow in entries.values():
            host = learned_host(flow)
            if host is not None:
                self.topo.restore_host(host[0], session.dpid, host[1], now)
        self.coalescer.request()

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        dp, msg = ev.msg.datapath, ev.msg
        port = codec.parse_port(dp, msg.desc)
        session = self._session(dp)
        if port is None or session is None or dp.id not in self.topo.graph:
            return
        now = time.monotonic()
        if msg.reason == dp.ofproto.OFPPR_DELETE:
            changed = self.topo.port_deleted(dp.id, port.port_no)
        else:
            session.meter_ports(self.settings, [port.port_no])  # a new port's
            changed = self.topo.port_changed(dp.id, port, now)
        state = ("deleted" if msg.reason == dp.ofproto.OFPPR_DELETE
                 else "up" if port.live else "down")
        self.logger.info("port %s:%d %s", dpid_to_str(dp.id), port.port_no, state)
        self.event("port_" + state, dpid=dpid_to_str(dp.id), port_no=port.port_no,
                   changed_forwarding=changed)
        if port.live and msg.reason != dp.ofproto.OFPPR_DELETE:
            self._send_lldp(session, [port.port_no])
        if changed:
            self.coalescer.request()

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev):
        dp, msg = ev.msg.datapath, ev.msg
        if msg.cookie != self.settings.cookie:
            return
        flow = codec.flow_entry_from_stats(dp, _StatsView(msg))
        session = self._session(dp)
        if session is not None:
            session.tables.removed(flow.key)
        learned = learned_host(flow)
        host = self.topo.hosts.get(learned[0]) if learned else None
        if host and host.dpid == dp.id:
            self.logger.info("host %s idle; forgetting it", host.mac)
            self.event("host_expired", mac=host.mac)
            self.topo.remove_host(host.mac)
        self.coalescer.request()

    @set_ev_cls(ofp_event.EventOFPRoleReply, MAIN_DISPATCHER)
    def _role_reply(self, ev):
        """A switch confirmed our role: when the last one does after an election, the
        takeover of the switches is complete (``roles_confirmed_after_s``)."""
        session = self._session(ev.msg.datapath)
        if session is None or self.cluster is None:
            return
        ofp = ev.msg.datapath.ofproto
        session.role = {ofp.OFPCR_ROLE_MASTER: "master", ofp.OFPCR_ROLE_SLAVE: "slave",
                        ofp.OFPCR_ROLE_EQUAL: "equal"}.get(ev.msg.role, str(ev.msg.role))
        if (self._elected_at is not None and self.cluster.is_leader
                and all(s.role == "master" for s in self.sessions.values())):
            self._roles_confirmed = time.monotonic() - self._elected_at
            self._elected_at = None
            self.logger.info("cluster: master on all %d switches %.3f s after the election",
                             len(self.sessions), self._roles_confirmed)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _error(self, ev):
        msg = ev.msg
        if codec.is_meter_exists(msg.datapath, msg):
            return  # the ADD half of codec.meter_mods, on a switch that kept its meter
        self.telemetry.errors[msg.datapath.id, codec.error_type_name(msg.datapath,
                                                                      msg.type)] += 1
        session = self._session(msg.datapath)
        sent = session.refused(msg.xid) if session is not None else None
        if sent is None:
            self.logger.error("switch %s reported error type=%d code=%d",
                              dpid_to_str(msg.datapath.id), msg.type, msg.code)
            return
        # One of our mods was refused: the switch does not hold what the plan says, so
        # say which, and send it again (a few times: a refusal that repeats is a bug in
        # the plan or the switch, and retrying it for ever would only flood the log).
        item, delete = sent
        tries = session.refusals[item.key]
        again = not delete and tries <= MOD_RETRIES
        self.logger.error("switch %s refused %s%s (error type=%d code=%d)%s",
                          dpid_to_str(msg.datapath.id), "the delete of " if delete else "",
                          describe_item(item), msg.type, msg.code,
                          "; sending it again" if again else "")
        self.event("mod_refused", dpid=dpid_to_str(msg.datapath.id), item=describe_item(item),
                   delete=delete, error_type=msg.type, error_code=msg.code, refusals=tries)
        if again:
            hub.spawn_after(MOD_RETRY_S * tries, self.coalescer.request, False)

    def event(self, kind: str, **details) -> dict:
        """Record something that happened (GET /v1/events); topology changes become the
        cause of the recomputation that follows them."""
        record = self.event_log.record(kind, **details)
        if self.cluster is not None and self.leading():
            # a client reading /v1/events?since= goes on across a takeover
            self.cluster.record("event_seq", record["seq"])
            if kind in ("backend_up", "backend_down"):
                self._record_state()
        return record

    # -- reconciling flow tables ----------------------------------------------------------

    def _reconcile(self, recompute: bool) -> None:
        """The coalescer's work: recompute the plan and send it, or only send the plan in
        force again (to delete what it retired once that is due)."""
        if not self.leading():
            return  # a follower changes nothing; it recomputes all when it leads
        if not recompute:
            self.reconciler.send_plan(self.sessions)
            return
        if recompute == SERVICES:
            self._reconcile_services()
            return
        started = time.monotonic()
        restored, self._restored = self._restored, set()
        in_force = dict(self.routing.next_hops)
        given = None
        if self.policy not in INCREMENTAL_POLICIES:  # adaptive: the LP, then the Damper
            allowed = allowed_ports(self.topo, self.path_stretch)
            revert = {d for (u, d), ports in allowed.items()
                      if any((u, port) in restored for port in ports)}
            # a new policy takes effect whole, not damped
            damp_from = {} if self._policy_changed else in_force
            current = {key: hops for key, hops in damp_from.items() if key[1] not in revert}
            demand = self.demand()
            given = compute_next_hops(self.topo, self.policy, demand,
                                      self.path_stretch, current, self.demand(latest=True))
            given = self.damper.apply(
                given, damp_from, time.monotonic(), allowed, revert=revert,
                busiest=lambda hops: highest_utilization(
                    self.topo, link_loads(self.topo, hops, demand)))
            if self.damper.passed_whole:
                self.logger.info("rebalance passed whole: damping part of it would "
                                 "have overloaded a link")
        self._policy_changed = False
        touched = self.routing.update(self.topo, self.policy, given,
                                      frozenset(self.hash_split_switches))
        touched = self._with_services(touched)
        computed = time.monotonic()
        proposed, plan = self.routing.next_hops, self.routing.plan
        waves = update_waves(self.topo, in_force, proposed)
        # Traffic that already had a path moves: pause between waves for the switches'
        # cached datapath flows.  A barrier reply says a switch's OpenFlow tables
        # changed, but Open vSwitch revalidates the flows cached in its datapath a little
        # later: a packet sent 2 ms after the first switch confirmed its move off a
        # detour still went the old way and was dropped by the next switch, which had
        # already turned to send straight back (scripts/bench_detour_move.py).  New
        # destinations have nothing in flight and go out at once.
        moving = any(key in in_force and in_force[key] != hops for key, hops in proposed.items())
        pause = (lambda: hub.sleep(self.settings.wave_drain)) if moving else None
        totals = self.reconciler.send_plan(self.sessions, waves, plan, between_waves=pause,
                                           touched=touched)
        self._flush_connections()
        self.last_reconcile = dict(totals, compute_seconds=round(computed - started, 4),
                                   total_seconds=round(time.monotonic() - started, 4))
        causes = self.event_log.take_causes()
        self.telemetry.recomputed(self.last_reconcile["total_seconds"],
                                  [kind for _, kind in causes])
        causes = [seq for seq, _ in causes]
        if totals["group_mods"] or totals["flow_mods"]:
            self.last_change = self.last_reconcile
            self.event(RECONCILED, policy=self.policy, causes=causes, **self.last_reconcile)
            self.logger.info("reconciled (%s): %d flow mods, %d group mods in %.1f ms",
                             self.policy, totals["flow_mods"], totals["group_mods"],
                             1000 * (time.monotonic() - started))

    def _reconcile_services(self) -> None:
        """Only the services changed: their entries rebuilt and sent, paths as they are."""
        started = time.monotonic()
        touched = self._with_services({})
        totals = self.reconciler.send_plan(self.sessions, None, self.routing.plan,
                                           touched=touched)
        self._flush_connections()
        if totals["flow_mods"] or totals["group_mods"]:
            self.logger.info("services reconciled: %d flow mods in %.1f ms",
                             totals["flow_mods"], 1000 * (time.monotonic() - started))

    def _wait_applied(self, sessions) -> None:
        """Until each switch has answered a barrier (it has applied everything sent to
        it before), BARRIER_TIMEOUT at most: a silent switch must not stall the rest."""
        waiting = [(session, *session.request_barrier()) for session in sessions]
        deadline = time.monotonic() + BARRIER_TIMEOUT
        for session, xid, replied in waiting:
            replied.wait(max(0.0, deadline - time.monotonic()))
            session.forget_barrier(xid)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        session = self._session(ev.msg.datapath)
        if session is not None:
            session.barrier_replied(ev.msg.xid)

    # -- policy and statistics ----------------------------------------------------------

    def set_policy(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError("policy must be one of %s, got %r" % (", ".join(POLICIES), policy))
        if policy != self.policy:
            self.logger.info("policy %s -> %s", self.policy, policy)
            self.event("policy", old=self.policy, new=policy)
            self.policy = policy
            self._policy_changed = True
            self._record_state()
            self.coalescer.request()

    def demand(self, latest: bool = False) -> dict:
        """{(ingress switch, destination switch): bits/s} measured by the counting
        entries (core/pipeline.py), smoothed or (``latest``) over the last interval."""
        where = {mac: host.dpid for mac, host in self.topo.hosts.items()}
        result = {}
        for dpid, session in self.sessions.items():
            for mac, meter in session.demand_meters.meters.items():
                dst = where.get(mac)
                if dst is not None and dst != dpid:
                    key = (dpid, dst)
                    rate = meter.latest_rate("bytes") if latest else meter.rate("bytes")
                    result[key] = result.get(key, 0.0) + 8 * rate
        return result

    def port_rate(self, dpid: int, port_no: int, counter: str) -> float:
        session = self.sessions.get(dpid)
        return session.port_meters.rate(port_no, counter) if session else 0.0

    def port_totals(self, dpid: int) -> dict:
        session = self.sessions.get(dpid)
        if session is None:
            return {}
        return {port_no: dict(meter.last) for port_no, meter in
                session.port_meters.meters.items() if meter.last is not None}

    def _poll_stats(self):
        while True:
            hub.sleep(self.settings.stats_interval)
            for dpid, session in list(self.sessions.items()):
                if session.tables.installed is None:
                    continue
                try:
                    session.poll_ports(time.monotonic())
                    session.send_msg(codec.meter_stats_request(session.dp))
                    session.send_msg(codec.flow_stats_request(
                        session.dp, self.settings.cookie, TABLE_FORWARD))
                    if self.services.services and dpid in self._service_keys:
                        self._ask_connection_counts(session)
                except Exception:
                    self.logger.exception("polling %s failed", dpid_to_str(dpid))

    def _rebalance(self):
        while True:
            hub.sleep(self.settings.rebalance_interval)
            if self.policy == "adaptive":
                self.coalescer.request()

    @set_ev_cls(ofp_event.EventOFPMeterStatsReply, MAIN_DISPATCHER)
    def _meter_stats(self, ev):
        """Frames the packet-in meters (the switch's, and each port's) dropped since the
        last poll: reported (an event and a log line per switch or port at most every
        REFUSAL_REPORT_S, counting the polls with drops in between), since a flood is
        worth knowing about."""
        session, now = self._session(ev.msg.datapath), time.monotonic()
        if session is None:
            return
        for stat in ev.msg.body:
            meter_id, dropped, age = codec.meter_drops(stat)
            port_no = port_of_meter(meter_id)
            if meter_id != PACKET_IN_METER and port_no is None:
                continue
            grew = session.new_packet_in_drops(meter_id, dropped, age, now)
            if grew > 0:
                self.telemetry.packet_ins_dropped[session.dpid, port_no] += grew
                why = ("over packet_in_rate (%d/s)" % self.settings.packet_in_rate
                       if port_no is None else "over packet_in_port_rate (%d/s)"
                       % self.settings.packet_in_port_rate)
                self._report_refusal("packet_ins_dropped", session.dpid, port_no, why,
                                     now, dropped=grew, dropped_total=dropped)

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev):
        dp, now = ev.msg.datapath, time.monotonic()
        session = self._session(dp)
        if session is None or dp.id not in self.topo.graph:
            return
        for stat in ev.msg.body:
            if stat.port_no <= dp.ofproto.OFPP_MAX:
                meter = session.port_meters.update(stat.port_no, codec.port_counters(stat),
                                                   now)
                if "rx_packets" in meter.grew:
                    self.topo.port_received(dp.id, stat.port_no, now)
        for link in self.topo.links():
            if link.src == dp.id:
                link.rate_bps = 8 * session.port_meters.rate(link.src_port, "tx_bytes")
        sent_at = session.answered(ev.msg)
        if sent_at is not None:
            self.topo.switch_answered(dp.id, sent_at)

    # -- discovery ----------------------------------------------------------------------

    def _housekeeping(self):
        while True:
            hub.sleep(self.settings.lldp_interval)
            try:
                now = time.monotonic()
                for dpid, session in list(self.sessions.items()):
                    if (session.readback is not None
                            and now - session.readback_since > READBACK_TIMEOUT):
                        self.logger.warning("switch %s did not report its flows; clearing "
                                            "ours and reinstalling", dpid_to_str(dpid))
                        session.abandon_readback()
                        self.coalescer.request()
                    if session.tables.hold_expired(now):
                        self.coalescer.request()  # now remove what was not re-proven
                    self._send_lldp(session)
                expired = self.topo.expire_links(now, self.settings.link_timeout)
                for link in expired:
                    self.logger.warning("link %s:%d -> %s:%d silent; down",
                                        dpid_to_str(link.src), link.src_port,
                                        dpid_to_str(link.dst), link.dst_port)
                    self.event("link_silent", src=dpid_to_str(link.src),
                               src_port=link.src_port, dst=dpid_to_str(link.dst),
                               dst_port=link.dst_port)
                if expired:
                    self.coalescer.request()
                if self.settings.switch_forget_after:
                    for dpid in self.topo.forget_disconnected(
                            now, self.settings.switch_forget_after):
                        self.switch_forgotten(dpid, "disconnected for %gs" %
                                               self.settings.switch_forget_after)
                cutoff = now - DUPLICATE_WINDOW
                self._recent_frames = {k: t for k, t in self._recent_frames.items()
                                       if t > cutoff}
            except Exception:
                self.logger.exception("housekeeping failed")

    def _send_lldp(self, session, port_numbers=None):
        if session.dpid not in self.topo.graph:
            return
        switch = self.topo.switch(session.dpid)
        for port_no in port_numbers or list(switch.ports):
            port = switch.ports.get(port_no)
            if port is not None and port.live:
                frame = codec.lldp_frame(session.dpid, port_no, port.hw_addr,
                                         time.monotonic(), self._lldp_key)
                session.send_msg(codec.packet_out(session.dp, [port_no], frame))

    # -- packets from the switches ------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        try:
            in_port = msg.match["in_port"]
            pkt = packet.Packet(msg.data)
            eth = pkt.get_protocol(ethernet.ethernet)
        except Exception:
            eth = None
        self.telemetry.packet_ins[dp.id, PACKET_IN_KINDS.get(
            eth.ethertype, "other") if eth else "unparsable"] += 1
        session = self._session(dp)
        if session is None or dp.id not in self.topo.graph:
            return
        if eth is None:
            self.logger.debug("unparsable packet-in from %s", dpid_to_str(dp.id))
            return
        if eth.ethertype == ETH_TYPE_LLDP:
            self._lldp_in(session, in_port, pkt)
            return
        if self.admission is not None and msg.table_id == TABLE_ADMISSION:
            if self.leading():
                try:
                    self.admission.frame_in(session, in_port, pkt, msg.data,
                                            time.monotonic())
                except Exception:
                    self.logger.exception("admission of a frame from %s:%d failed",
                                          dpid_to_str(dp.id), in_port)
            return
        data = msg.data
        if is_label_mac(eth.dst):
            # In flight toward a host whose egress entry is gone (it moved, or left):
            # delivered, if at all, under the host's own address.
            eth.dst = self.routing.host_of(eth.dst)
            if eth.dst is None:
                return
            data = codec.with_destination(data, eth.dst)
        now = time.monotonic()
        digest = hashlib.blake2b(msg.data, digest_size=16).digest()
        if digest in self._recent_frames:
            return
        self._recent_frames[digest] = now
        self._frame_in(session, in_port, pkt, eth, data, now)

    def _frame_in(self, session, in_port: int, pkt, eth, data: bytes, now: float,
                  deferred_since: float | None = None) -> None:
        """A frame the tables sent up (or one deferred, first seen at
        ``deferred_since``): learn, answer, deliver (core/frames.py)."""
        dp = session.dp
        arp_pkt = pkt.get_protocol(arp.arp)
        ip_pkt = pkt.get_protocol(ipv4.ipv4)
        src_ip = arp_pkt.src_ip if arp_pkt else ip_pkt.src if ip_pkt else None
        asked = (arp_pkt.dst_ip if arp_pkt and arp_pkt.opcode == arp.ARP_REQUEST
                 and arp_pkt.src_ip != arp_pkt.dst_ip else None)
        vip_macs = set(self.services.vips().values())
        vip_asked = self.service_runner.arp_answer(asked) if asked else None
        verdict = handle_frame(self.topo, dp.id, in_port, now, eth.src, eth.dst,
                               None if src_ip == "0.0.0.0" else src_ip,
                               None if vip_asked else asked, arp=arp_pkt is not None)
        if vip_asked or eth.dst in vip_macs:
            # ARP for a VIP, or a frame for one (a health check's answer): ours alone
            verdict.outputs = {}
            verdict.arp_reply_mac = vip_asked
            if ip_pkt is not None:
                self._for_a_vip(session, in_port, pkt, data, now)
        elif verdict.retry_after is not None:
            self._defer(session.dpid, in_port, data, now, deferred_since or now,
                        verdict.retry_after)
            return
        if verdict.refused:
            self._report_refusal("host_refused", dp.id, in_port, verdict.refused, now,
                                mac=eth.src)
        if verdict.learned:
            self.logger.info("host %s (%s) at %s:%d", eth.src, src_ip or "-",
                             dpid_to_str(dp.id), in_port)
            self.event("host_learned", mac=eth.src, dpid=dpid_to_str(dp.id), port_no=in_port)
            if self._deferred and not self._held_for_replay \
                    and self._replay_at - now <= REPLAY_GATHER_S:
                # the hosts of frames waiting for their ports to settle are about to be
                # learned too: one reconcile for them all (fattree,4 start-up: a host
                # learned 2 ms before the replay cost a 0.4 s run of its own first)
                self._held_for_replay = True
                self.coalescer.hold()
            self.coalescer.request()
        if verdict.arp_reply_mac:
            reply = codec.arp_reply(eth, arp_pkt, verdict.arp_reply_mac)
            session.send_msg(codec.packet_out(dp, [in_port], reply))
        elif asked and not vip_asked and self.topo.host_by_ip(asked) is None:
            self._pending_arp.add(asked, (dp.id, in_port, eth, arp_pkt), now)
        if src_ip and eth.src in self.topo.hosts:
            for asker, port_no, asker_eth, request in self._pending_arp.take(src_ip, now):
                out = self.sessions.get(asker)
                if out is not None and asker_eth.src != eth.src:
                    out.send_msg(codec.packet_out(
                        out.dp, [port_no], codec.arp_reply(asker_eth, request, eth.src)))
        for out_dpid, ports in verdict.outputs.items():
            out = self.sessions.get(out_dpid)
            if out is not None:
                out.send_msg(codec.packet_out(out.dp, ports, data))

    def _defer(self, dpid: int, port_no: int, data: bytes, now: float, since: float,
               wait: float) -> None:
        """Keep a frame from a port about to settle and look at it again when it has
        (a bounded number, each for at most DEFER_LIMIT_S)."""
        if now - since > DEFER_LIMIT_S or len(self._deferred) >= DEFERRED_MAX:
            return
        self._deferred.append((dpid, port_no, data, since))
        if len(self._deferred) == 1:
            self._replay_at = now + wait + 0.005
            hub.spawn_after(wait + 0.005, self._replay_deferred)

    def _replay_deferred(self) -> None:
        frames, self._deferred = self._deferred, []
        now = time.monotonic()
        # a hold taken for this replay (_frame_in) ends with it; one taken during it, for
        # frames deferred again, waits for the next
        held_for_this, self._held_for_replay = self._held_for_replay, False
        self.coalescer.hold()  # the hosts these frames teach: one reconcile after them all
        try:
            for dpid, port_no, data, since in frames:
                session = self.sessions.get(dpid)
                if session is None or dpid not in self.topo.graph:
                    continue
                try:
                    pkt = packet.Packet(data)
                    self._frame_in(session, port_no, pkt,
                                   pkt.get_protocol(ethernet.ethernet), data, now, since)
                except Exception:
                    self.logger.exception("a deferred frame from %s:%d failed",
                                          dpid_to_str(dpid), port_no)
        finally:
            if held_for_this:
                self.coalescer.release()
            self.coalescer.release()

    def _report_refusal(self, kind: str, dpid: int, port_no: int | None, why: str,
                        now: float, **fields) -> None:
        """A log line and an event of ``kind`` (host_refused, link_refused,
        packet_ins_dropped) per port (or switch: port_no None) at most every
        REFUSAL_REPORT_S, counting the refusals since, so a flood of source MACs or
        forged probes cannot flood the log too."""
        key = (kind, dpid, port_no)
        last, count = self._refusals.get(key, (float("-inf"), 0))
        if now - last < REFUSAL_REPORT_S:
            self._refusals[key] = (last, count + 1)
            return
        self._refusals[key] = (now, 0)
        where = dpid_to_str(dpid) + ("" if port_no is None else ":%d" % port_no)
        self.logger.warning("%s at %s: %s %s (%d more there since the last report)",
                            kind, where, why,
                            " ".join("%s=%s" % kv for kv in fields.items()), count)
        at = {"dpid": dpid_to_str(dpid)} if port_no is None else \
            {"dpid": dpid_to_str(dpid), "port_no": port_no}
        self.event(kind, **at, reason=why, refused_since_last=count, **fields)

    def _for_a_vip(self, session, in_port: int, pkt, data: bytes, now: float) -> None:
        """A health check's answer, or (least_conn) a connection's first frame."""
        try:
            if self.service_runner.answer(pkt, now):
                return
            steps = self.service_runner.place(session.dpid, pkt, now,
                                              self.settings.connection_idle_timeout,
                                              self.settings.cookie)
        except Exception as exc:  # a malformed frame must not stop the packet-in path
            self.logger.warning("unreadable frame for a VIP from %s: %s",
                                dpid_to_str(session.dpid), exc)
            return
        if steps is not None:
            session.send_msg(codec.packet_out_steps(session.dp, in_port, steps, data))

    def _lldp_in(self, session, in_port, pkt):
        origin = codec.parse_lldp(pkt, self._lldp_key)
        if origin is None:
            return
        src, src_port, sent_at, proven = origin
        dst, now = session.dpid, time.monotonic()
        if not proven or not 0 <= now - sent_at <= LLDP_DELAY_CAP_S:
            # Forged, altered, from another run, or replayed late: a host relaying our
            # probes must not make a link appear.
            why = ("not signed by this controller" if not proven else
                   "sent %.1f s ago (at most %.1f s accepted)" % (now - sent_at,
                                                                  LLDP_DELAY_CAP_S))
            self._report_refusal("link_refused", dst, in_port, why, now,
                                 claimed_src=dpid_to_str(src), claimed_src_port=src_port)
            return
        if src not in self.topo.graph:
            return
        try:
            new = self.topo.link_seen(src, src_port, dst, in_port, now)
        except TopologyError:
            return
        if self.topo.refused_link:
            self._report_refusal("link_refused", dst, in_port, self.topo.refused_link, now,
                                 claimed_src=dpid_to_str(src), claimed_src_port=src_port)
            return
        self.topo.lldp_delay_seen(now - sent_at, now)
        if new:
            self.logger.info("link %s:%d -> %s:%d", dpid_to_str(src), src_port,
                             dpid_to_str(dst), in_port)
            self.event("link_up", src=dpid_to_str(src), src_port=src_port,
                       dst=dpid_to_str(dst), dst_port=in_port)
            # Revertive: once a link is back, traffic toward destinations it can serve
            # is placed afresh instead of sticking to the detour it took meanwhile.
            self._restored.add((src, src_port))
            self.coalescer.request()
            # Prove the reverse direction now rather than at the next probe round.
            if not any(lk.src == dst for lk in self.topo.links_at(dst, in_port)):
                self._send_lldp(session, [in_port])


class _StatsView:
    """Lets a FlowRemoved message be read like a flow-stats entry."""

    def __init__(self, msg):
        self.table_id, self.priority, self.match = msg.table_id, msg.priority, msg.match
        self.idle_timeout, self.hard_timeout = msg.idle_timeout, msg.hard_timeout
        self.instructions = []
        self.flags = msg.datapath.ofproto.OFPFF_SEND_FLOW_REM

