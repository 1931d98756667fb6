"""Services: virtual IPs load-balanced to backend hosts inside the switches.

A service is a virtual IP and port (``vip``, ``port``, ``protocol``) and a pool of
backends (``ip``, ``port``, ``weight``, ``role``).  The controller answers ARP for the
VIP; at the client's ingress switch each new connection is given a backend and
rewritten to it (MAC, IP, port), and the backend's replies are rewritten back at the
backend's switch, so the client only ever sees the VIP.  Between the two the traffic
rides the fabric like any other (weighted multipath, fast reroute).

The switch decides, not the controller (no packet-in per connection): a connection's
first packet hashes into one of ``SLOTS`` slots (the scheduler decides what it hashes:
the 5-tuple for ``wrr``, the client's address alone for ``source_hash``) and the slot
names a backend.  The same packet *learns* a per-connection entry (OVS's ``learn``)
that pins the connection to its backend, so an established connection stays where it
is when the pool changes: only the slots change, and only for new connections.  Slots
are filled Maglev-style (``slot_table``): each backend walks its own permutation of the
slots, taking them in turn in proportion to its weight, so shares follow the weights
within a slot and a backend leaving moves only about its own share of clients.

Health is the controller's: it probes every backend (``HealthSpec``: a TCP connect, a
UDP request, an ICMP echo) every ``interval_ms``, marks it down after ``fall`` misses in
a row and up after ``rise`` answers (``Health``), and a backend that is down, or that an
operator set ``draining``, gets no slots; a draining one keeps its established
connections.  Backups get slots only while no primary is up.

This module is pure: parsing and checking service definitions, the state machine, the
slot tables and the flow entries (pipeline terms) the plan adds for services.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from .fields import boolean, choice, fail, integer, ipv4, keys
from .pipeline import (
    ETH_TYPE_IPV4,
    PRIORITY_FORWARD,
    PRIORITY_MISS,
    PRIORITY_SERVICE,
    PRIORITY_SERVICE_REPLY,
    PRIORITY_VIP,
    PUNT,
    SYN_ONLY,
    TABLE_CONNECTIONS,
    TABLE_FORWARD,
    TABLE_SERVICE,
    TABLE_SLOTS,
    VIP_MAC_PREFIX,
    entry,
)
from .scaling import Scaler, ScalingSpec, parse_scaling

PROTOCOLS = {"tcp": 6, "udp": 17}
SCHEDULERS = ("wrr", "least_conn", "source_hash", "nearest")
ROLES = ("primary", "backup")
HEALTH_KINDS = ("tcp", "udp", "icmp")
SLOTS = 61  # a prime, as Maglev's permutations need; shares are in 1/61 steps
MAX_WEIGHT = 1000
# What a service's hash covers, per scheduler (pipeline action "hash_slots");
# least_conn does not hash: the controller places each new connection.
HASH_FIELDS = {"wrr": "l3l4", "source_hash": "src", "nearest": "l3l4"}
SLOW_START_STEPS = 10  # a slow-starting backend's weight grows in tenths
REPORT_FRESH_INTERVALS = 3  # a load agent's figure counts for so many check intervals
# Adaptive weights: what is enough load to adapt to, and the least a factor may be.
ADAPTIVE_MIN_CONNECTIONS = 10
ADAPTIVE_MIN_BPS = 100_000.0
ADAPTIVE_FLOOR = 0.1
UP, DOWN, DRAINING = "up", "down", "draining"


class Conflict(Exception):
    """A service or backend that clashes with what exists (HTTP 409)."""


class NotFound(LookupError):
    """No such service or backend (HTTP 404)."""


@dataclass(frozen=True)
class HealthSpec:
    kind: str = "tcp"
    interval_ms: int = 200
    timeout_ms: int = 200
    rise: int = 2
    fall: int = 3
    agent_port: int = 0  # a backend's load agent (UDP) asked every interval; 0: none


@dataclass(frozen=True)
class BackendSpec:
    ip: str
    port: int
    weight: int = 1
    role: str = "primary"
    max_connections: int = 0  # 0: no cap; at the cap a backend counts as saturated


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    vip: str
    port: int
    protocol: str
    scheduler: str = "wrr"
    backends: tuple = ()  # of BackendSpec
    health: HealthSpec = field(default_factory=HealthSpec)
    slow_start_ms: int = 0  # a backend that comes up ramps to its weight over this
    drain_timeout_ms: int = 300_000  # a draining backend leaves after this at the latest
    adaptive: bool = False  # weights scaled down for backends loaded above their share
    scaling: ScalingSpec = field(default_factory=ScalingSpec)  # the pool's own size

    @property
    def ip_proto(self) -> int:
        return PROTOCOLS[self.protocol]

    def to_dict(self) -> dict:
        return {"name": self.name, "vip": self.vip, "port": self.port,
                "protocol": self.protocol, "scheduler": self.scheduler,
                "backends": [backend_dict(b) for b in self.backends],
                "health": dict(vars(self.health)), "slow_start_ms": self.slow_start_ms,
                "drain_timeout_ms": self.drain_timeout_ms, "adaptive": self.adaptive,
                "scaling": self.scaling.to_dict()}


def backend_dict(backend: BackendSpec) -> dict:
    return {"ip": backend.ip, "port": backend.port, "weight": backend.weight,
            "role": backend.role, "max_connections": backend.max_connections}


# -- parsing: every error names the field (core/fields.py) ---------------------------------

def parse_health(obj, where: str = "health", default_kind: str = "tcp") -> HealthSpec:
    """A HealthSpec; its kind defaults to the service's protocol."""
    obj = keys(obj, where, set(), {"kind", "interval_ms", "timeout_ms", "rise", "fall",
                                   "agent_port"})
    spec = HealthSpec(
        kind=choice(obj.get("kind", default_kind), where + ".kind", HEALTH_KINDS),
        interval_ms=integer(obj.get("interval_ms", 200), where + ".interval_ms", 20, 60000),
        timeout_ms=integer(obj.get("timeout_ms", 200), where + ".timeout_ms", 10, 60000),
        rise=integer(obj.get("rise", 2), where + ".rise", 1, 100),
        fall=integer(obj.get("fall", 3), where + ".fall", 1, 100),
        agent_port=integer(obj.get("agent_port", 0), where + ".agent_port", 0, 65535))
    return spec


def parse_backend(obj, where: str = "backend", default_port: int | None = None) -> BackendSpec:
    obj = keys(obj, where, {"ip"}, {"port", "weight", "role", "max_connections"})
    port = obj.get("port", default_port)
    return BackendSpec(ip=ipv4(obj["ip"], where + ".ip"),
                       port=integer(port, where + ".port", 1, 65535),
                       weight=integer(obj.get("weight", 1), where + ".weight", 0, MAX_WEIGHT),
                       role=choice(obj.get("role", "primary"), where + ".role", ROLES),
                       max_connections=integer(obj.get("max_connections", 0),
                                            where + ".max_connections", 0, 10_000_000))


def parse_service(obj, where: str = "service") -> ServiceSpec:
    """A ServiceSpec from its JSON form; ValueError naming the field that is wrong."""
    obj = keys(obj, where, {"name", "vip", "port", "protocol", "backends"},
                {"scheduler", "health", "slow_start_ms", "drain_timeout_ms", "adaptive",
                 "scaling"})
    name = obj["name"]
    if not isinstance(name, str) or not name or len(name) > 64 or not all(
            c.isalnum() or c in "-_." for c in name):
        fail(where + ".name", "must be 1-64 letters, digits, '-', '_' or '.', got %r"
              % (name,))
    port = integer(obj["port"], where + ".port", 1, 65535)
    if not isinstance(obj["backends"], list):
        fail(where + ".backends", "must be a list")
    backends = tuple(parse_backend(b, "%s.backends[%d]" % (where, i), port)
                     for i, b in enumerate(obj["backends"]))
    ips = [b.ip for b in backends]
    for i, ip in enumerate(ips):
        if ip in ips[:i]:
            fail("%s.backends[%d].ip" % (where, i), "%s is listed twice" % ip)
    protocol = choice(obj["protocol"], where + ".protocol", tuple(PROTOCOLS))
    spec = ServiceSpec(
        name=name, vip=ipv4(obj["vip"], where + ".vip"), port=port, protocol=protocol,
        scheduler=choice(obj.get("scheduler", "wrr"), where + ".scheduler", SCHEDULERS),
        backends=backends,
        health=parse_health(obj.get("health", {}), where + ".health", protocol),
        slow_start_ms=integer(obj.get("slow_start_ms", 0), where + ".slow_start_ms", 0,
                           3_600_000),
        drain_timeout_ms=integer(obj.get("drain_timeout_ms", 300_000),
                              where + ".drain_timeout_ms", 0, 86_400_000),
        adaptive=boolean(obj.get("adaptive", False), where + ".adaptive"),
        scaling=parse_scaling(obj.get("scaling", {}), where + ".scaling", parse_backend,
                              port))
    if spec.vip in ips:
        fail(where + ".vip", "is also a backend's address")
    check_standby(spec.scaling, spec.vip, ips, where + ".scaling")
    if spec.health.kind in PROTOCOLS and spec.health.kind != spec.protocol:
        fail(where + ".health.kind", "a %s check of a %s service: use %s or icmp"
              % (spec.health.kind, spec.protocol, spec.protocol))
    return spec


def check_standby(scaling: ScalingSpec, vip: str, backend_ips, where: str) -> None:
    """A standby host may not be the VIP or already a backend of the service."""
    for i, standby in enumerate(scaling.standby):
        if standby.ip == vip or standby.ip in backend_ips:
            fail("%s.standby[%d].ip" % (where, i),
                 "%s is already the VIP or a backend" % standby.ip)


def parse_services_file(obj) -> list[ServiceSpec]:
    """The ``services_file`` JSON: {"services": [...]} or a bare list."""
    items = obj.get("services") if isinstance(obj, dict) and set(obj) == {"services"} else obj
    if not isinstance(items, list):
        raise ValueError('services_file: must be {"services": [...]} or a list')
    specs = [parse_service(item, "services[%d]" % i) for i, item in enumerate(items)]
    seen = {}
    for i, spec in enumerate(specs):
        for key, what in ((spec.name, "name"), ((spec.vip, spec.port, spec.protocol), "vip")):
            if key in seen:
                fail("services[%d].%s" % (i, what), "duplicates services[%d]" % seen[key])
            seen[key] = i
    return specs


# -- health ----------------------------------------------------------------------------

class Health:
    """The heartbeat state machine of one backend: ``fall`` misses in a row take an up
    backend down, ``rise`` answers in a row bring a down one up.  It starts down: a
    backend gets traffic only once it has answered."""

    def __init__(self, spec: HealthSpec):
        self.spec = spec
        self.up = False
        self.streak = 0  # consecutive results against the current state
        self.checks = 0
        self.last_change: float | None = None

    def result(self, answered: bool, now: float) -> bool:
        """Record one probe's outcome; True when the state changed."""
        self.checks += 1
        if answered == self.up:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= (self.spec.rise if answered else self.spec.fall):
            self.up, self.streak, self.last_change = answered, 0, now
            return True
        return False


# -- slots ---------------------------------------------------------------------------------

def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def slot_table(weights: dict, previous: list | None = None, slots: int = SLOTS) -> list:
    """[owner per slot] for {owner: weight > 0} (owners are strings, e.g. backend IPs):
    each owner's share of slots is its share of the weight, to within one slot.

    With ``previous`` (the table in force) every slot keeps its owner unless that owner
    left or holds more than its share now, so a pool change moves only the slots it must
    (a backend leaving: its own).  Without it the table is built afresh Maglev-style
    (each owner has its own permutation of the slots, from hashes of its name; owners
    take their next free preferred slot in turn, as often as their weight allows):
    deterministic for a given pool, so a restarted controller builds the same table."""
    owners = sorted((o, w) for o, w in weights.items() if w > 0)
    if not owners:
        return []
    quota = _quotas(dict(owners), slots)
    table = list(previous) if previous and len(previous) == slots else _maglev(owners, slots)
    held = dict.fromkeys(quota, 0)
    for slot, owner in enumerate(table):
        if owner in held and held[owner] < quota[owner]:
            held[owner] += 1
        else:
            table[slot] = None
    for slot, owner in enumerate(table):
        if owner is None:
            owner = max(quota, key=lambda o: (quota[o] - held[o], o))
            table[slot] = owner
            held[owner] += 1
    return table


def _quotas(weights: dict, slots: int) -> dict:
    """Slots per owner in proportion to weight, largest remainders rounding up."""
    total = sum(weights.values())
    exact = {o: slots * w / total for o, w in weights.items()}
    quota = {o: int(x) for o, x in exact.items()}
    for owner in sorted(exact, key=lambda o: (quota[o] - exact[o], o))[:slots - sum(
            quota.values())]:
        quota[owner] += 1
    return quota


def _maglev(owners: list, slots: int) -> list:
    top = max(w for _, w in owners)
    prefs = {o: (_hash("offset:" + o) % slots, _hash("skip:" + o) % (slots - 1) + 1)
             for o, _ in owners}
    nexts = dict.fromkeys(prefs, 0)
    credit = dict.fromkeys(prefs, 0.0)
    table: list = [None] * slots
    filled = 0
    while filled < slots:
        for owner, weight in owners:
            credit[owner] += weight / top
            while credit[owner] >= 1 and filled < slots:
                credit[owner] -= 1
                offset, skip = prefs[owner]
                while True:
                    slot = (offset + nexts[owner] * skip) % slots
                    nexts[owner] += 1
                    if table[slot] is None:
                        break
                table[slot] = owner
                filled += 1
    return table


# -- the pool at run time -------------------------------------------------------------------

@dataclass
class BackendState:
    spec: BackendSpec
    backend_id: int  # what the switches load into a register for this backend
    health: Health
    draining: bool = False
    draining_since: float | None = None  # when the controller first saw it draining
    slow_start_from: float | None = None  # when it came up into a pool that was live
    effective_weight: float = 0.0  # as new connections last saw it (0: takes none)
    load_factor: float = 1.0  # adaptive: the part of its weight its measured load allows
    reported_load: float | None = None  # what its load agent last answered ...
    reported_at: float = float("-inf")  # ... and when

    def fresh_report(self, now: float, interval_ms: int) -> float | None:
        """Its agent's last figure, if recent (REPORT_FRESH_INTERVALS intervals)."""
        if now - self.reported_at <= REPORT_FRESH_INTERVALS * interval_ms / 1000.0:
            return self.reported_load
        return None

    @property
    def state(self) -> str:
        return DRAINING if self.draining else UP if self.health.up else DOWN

    def takes_new_connections(self) -> bool:
        return self.health.up and not self.draining and self.spec.weight > 0

    def saturated(self, active: int) -> bool:
        return 0 < self.spec.max_connections <= active

    def ramp(self, now: float | None, slow_start_ms: int) -> float:
        """The part of its weight a slow-starting backend gets: from 1/SLOW_START_STEPS
        just after it came up to all of it after ``slow_start_ms``, in steps (so the
        slots change a few times during the ramp, not on every tick)."""
        if not slow_start_ms or self.slow_start_from is None or now is None:
            return 1.0
        elapsed = (now - self.slow_start_from) * 1000.0 / slow_start_ms
        if elapsed >= 1.0:
            return 1.0
        return (int(elapsed * SLOW_START_STEPS) + 1) / SLOW_START_STEPS


class Service:
    """One service and its backends' run-time state."""

    def __init__(self, spec: ServiceSpec, service_id: int, new_backend_id):
        self.spec = spec
        self.service_id = service_id
        self._new_backend_id = new_backend_id
        self.backends: dict[str, BackendState] = {}
        # backend IP per slot as last given, per place (None, or a client's switch
        # under "nearest", where each switch has its own table)
        self._slot_owners: dict = {}
        self._last_pick: dict[str, int] = {}  # least_conn: ip -> when last picked
        self.placements = 0  # connections placed by least_conn (the controller), ever
        self._adapted_at = float("-inf")  # when adaptive factors last changed
        # a started backend takes connections once ``rise`` checks in a row pass
        self.scaler = Scaler(spec.scaling, ready_after_s=spec.health.rise *
                             spec.health.interval_ms / 1000.0)
        for backend in spec.backends:
            self.add_backend(backend)

    def add_backend(self, backend: BackendSpec) -> BackendState:
        if backend.ip in self.backends:
            raise Conflict("backend %s is already in service %s" % (backend.ip,
                                                                    self.spec.name))
        if backend.ip == self.spec.vip:
            raise Conflict("backend.ip: %s is the service's VIP" % backend.ip)
        state = BackendState(backend, self._new_backend_id(), Health(self.spec.health))
        self.backends[backend.ip] = state
        self._sync_spec()
        return state

    def backend(self, ip: str) -> BackendState:
        if ip not in self.backends:
            raise NotFound("service %s has no backend %s" % (self.spec.name, ip))
        return self.backends[ip]

    def remove_backend(self, ip: str) -> BackendState:
        state = self.backend(ip)
        del self.backends[ip]
        self._last_pick.pop(ip, None)
        self._sync_spec()
        return state

    def set_weight(self, ip: str, weight: int) -> None:
        state = self.backend(ip)
        state.spec = replace(state.spec, weight=weight)
        self._sync_spec()

    def set_draining(self, ip: str, draining: bool) -> None:
        state = self.backend(ip)
        if state.draining != draining:
            state.draining, state.draining_since = draining, None

    def _sync_spec(self) -> None:
        self.spec = replace(self.spec, backends=tuple(b.spec for b in self.backends.values()))

    def health_result(self, ip: str, answered: bool, now: float) -> bool:
        """Record a probe's outcome for one backend; True when its state changed.  A
        backend that comes up while others already serve starts slowly
        (``slow_start_ms``); the first to come up, or a whole pool at start, does not:
        a ramp only means something beside backends at full weight."""
        backend = self.backends[ip]
        if not backend.health.result(answered, now):
            return False
        others_up = any(b.health.up for b in self.backends.values() if b is not backend)
        backend.slow_start_from = now if backend.health.up and others_up else None
        return True

    def eligible(self, now: float | None = None, active: dict | None = None) -> dict:
        """{ip: weight} of the backends new connections may go to: the primaries that
        take them, or while none does, the backups that do; a slow-starting one at its
        ramped weight.  With ``active`` ({backend id: connections}) a backend at its
        ``max_connections`` is left out, unless all are."""
        taking = [b for b in self.backends.values() if b.takes_new_connections()]
        pool = [b for b in taking if b.spec.role == "primary"] or taking
        if active is not None:
            pool = [b for b in pool if not b.saturated(active.get(b.backend_id, 0))] or pool
        weights = {b.spec.ip: b.spec.weight * b.ramp(now, self.spec.slow_start_ms)
                   * (b.load_factor if self.spec.adaptive else 1.0) for b in pool}
        for ip, backend in self.backends.items():
            backend.effective_weight = weights.get(ip, 0.0)
        return weights

    def slots(self, now: float | None = None, active: dict | None = None,
              hops: dict | None = None, place=None) -> list:
        """[backend id per slot] at ``place``, empty when no backend takes new
        connections; changed from the table last given there only where the pool's
        change requires it.  ``hops`` ({backend ip: hops from the client's switch;
        unreachable ones absent}) narrows the pool to the nearest backends ("nearest")."""
        weights = self.eligible(now, active)
        if hops is not None:
            weights = nearest(weights, hops)
        owners = slot_table(weights, self._slot_owners.get(place))
        self._slot_owners[place] = owners
        ids = {ip: b.backend_id for ip, b in self.backends.items()}
        return [ids[ip] for ip in owners]

    def slot_counts(self) -> dict:
        """{backend ip: slots it holds}, summed over every place's table."""
        counts = dict.fromkeys(self.backends, 0)
        for owners in self._slot_owners.values():
            for ip in owners:
                if ip in counts:
                    counts[ip] += 1
        return counts

    def forget_places(self, keep) -> None:
        """Drop the slot tables of places no longer in ``keep`` (switches gone); the
        table every switch shares (place None) stays."""
        for place in set(self._slot_owners) - set(keep) - {None}:
            del self._slot_owners[place]

    def least_conn(self, active: dict, now: float | None = None) -> BackendState | None:
        """The backend for a new connection under least_conn: the fewest active
        connections (``active``: {backend id: n}, this one included) per unit of weight;
        among equals the one picked longest ago, so equals take turns."""
        weights = self.eligible(now, active)
        if not weights:
            return None

        def load(ip):
            return (active.get(self.backends[ip].backend_id, 0) + 1) / weights[ip]
        ip = min(weights, key=lambda ip: (load(ip), self._last_pick.get(ip, -1), ip))
        self.placements += 1
        self._last_pick[ip] = self.placements
        return self.backends[ip]

    def adapt(self, active: dict, rates: dict, now: float, threshold: float,
              hold: float) -> bool:
        """Adaptive weights: scale each backend's weight by how its measured load
        compares with its share of the weight, so a slow backend (its connections last,
        so they pile up) or a hot one (more bytes per connection) gets fewer new
        connections.  Load is the mean of its share of the active connections
        (``active``: {backend id: n}) and of the traffic toward it (``rates``: {ip:
        bits/s}), each counted only once there is enough of it to mean something.  A
        step moves a factor by the square root of target / load (gentle, so the
        feedback does not swing); the factors are scaled so the largest is 1 and none
        goes below ADAPTIVE_FLOOR (a backend keeps being measured).  Damped like the TE
        weights: applied only when some backend's share moves by more than
        ``threshold`` and the last change is ``hold`` s old.  True if applied."""
        if not self.spec.adaptive:
            return False
        pool = [b for b in self.backends.values() if b.takes_new_connections()]
        if len(pool) < 2 or now - self._adapted_at < hold:
            return False
        signals = []
        conns = {b.spec.ip: active.get(b.backend_id, 0) for b in pool}
        if sum(conns.values()) >= ADAPTIVE_MIN_CONNECTIONS:
            signals.append(conns)
        bps = {b.spec.ip: rates.get(b.spec.ip, 0.0) for b in pool}
        if sum(bps.values()) >= ADAPTIVE_MIN_BPS:
            signals.append(bps)
        if not signals:
            return False
        total_weight = sum(b.spec.weight for b in pool)
        factors = {}
        for backend in pool:
            ip = backend.spec.ip
            load = sum(sig[ip] / sum(sig.values()) for sig in signals) / len(signals)
            target = backend.spec.weight / total_weight
            factors[ip] = backend.load_factor * (target / max(load, 1e-6)) ** 0.5
        top = max(factors.values())
        factors = {ip: max(ADAPTIVE_FLOOR, f / top) for ip, f in factors.items()}

        def shares(of):
            weights = {b.spec.ip: b.spec.weight * of(b) for b in pool}
            total = sum(weights.values())
            return {ip: w / total for ip, w in weights.items()}
        old = shares(lambda b: b.load_factor)
        new = shares(lambda b: factors[b.spec.ip])
        if max(abs(new[ip] - old[ip]) for ip in new) <= threshold:
            return False
        for backend in pool:
            backend.load_factor = factors[backend.spec.ip]
        self._adapted_at = now
        return True

    def serving(self) -> list:
        """The backends in the pool and not draining (up, or coming up)."""
        return [b for b in self.backends.values() if not b.draining]

    def scaling_load(self, now: float, active: dict, rate_of, requests_of) -> float | None:
        """The load the pool is sized by: its serving backends' connections or bits/s,
        its new connections per second, or the sum of its backends' own figures
        (``reported``: a backend whose agent has not answered lately counts as the mean
        of those that have; None if none has)."""
        metric = self.spec.scaling.metric
        if metric == "bps":
            return sum(rate_of(b.spec.ip) for b in self.serving())
        if metric == "requests":
            return requests_of(self.spec.name)
        if metric == "reported":
            serving = self.serving()
            reports = [r for b in serving if (r := b.fresh_report(
                now, self.spec.health.interval_ms)) is not None]
            return sum(reports) / len(reports) * len(serving) if reports else None
        return float(sum(active.get(b.backend_id, 0) for b in self.serving()))

    def standby_free(self, starting=()) -> list:
        """Standby backends neither in the pool nor being started."""
        return [b for b in self.spec.scaling.standby
                if b.ip not in self.backends and b.ip not in starting]

    def scale_in_choice(self, count: int, active: dict, started: list = ()) -> list:
        """Which ``count`` serving backends to drain: those ``started`` for load first
        (listed in start order; the latest first), then the least busy."""
        order = {ip: i for i, ip in enumerate(started)}
        ranked = sorted(self.serving(), key=lambda b: (
            b.spec.ip not in order, -order.get(b.spec.ip, 0),
            active.get(b.backend_id, 0), b.spec.ip))
        return [b.spec.ip for b in ranked[:count]]

    def set_scaling(self, scaling: ScalingSpec) -> None:
        self.spec = replace(self.spec, scaling=scaling)
        self.scaler.set_spec(scaling)

    def drained(self, active: dict, counted_at: float, now: float) -> list:
        """[(ip, reason)] of draining backends that may leave the pool: all their
        connections ended (``active`` as counted at ``counted_at``, after the drain
        began) or their ``drain_timeout_ms`` ran out."""
        done = []
        for ip, backend in self.backends.items():
            if not backend.draining:
                continue
            if backend.draining_since is None:
                backend.draining_since = now
            if counted_at > backend.draining_since and not active.get(backend.backend_id):
                done.append((ip, "connections ended"))
            elif now - backend.draining_since >= self.spec.drain_timeout_ms / 1000.0:
                done.append((ip, "drain timeout"))
        return done


def nearest(weights: dict, hops: dict) -> dict:
    """The part of ``weights`` ({ip: weight}) at the fewest hops (``hops``: {ip: hops};
    unreachable ones absent); all of it if none is reachable."""
    reach = {ip: w for ip, w in weights.items() if ip in hops and w > 0}
    if not reach:
        return weights
    best = min(hops[ip] for ip in reach)
    return {ip: w for ip, w in reach.items() if hops[ip] == best}


def vip_mac(vip: str) -> str:
    """The MAC the controller answers ARP for a VIP with: locally administered, the
    VIP's four octets in its last four bytes (readable in dump-flows)."""
    return VIP_MAC_PREFIX + ":" + ":".join("%02x" % int(octet) for octet in vip.split("."))


CONNECTION_COOKIE_FLAG = 0x8000_0000


def connection_cookie(cookie: int, backend_id: int) -> int:
    """The cookie of the connection entries switches learn for one backend: our
    cookie's upper half, then a flag and the backend's id.  Never equal to our cookie
    (whose lower half stays below the flag), so the reconciler leaves them alone, and
    an aggregate request by this cookie counts (or a delete removes) one backend's
    connections."""
    return (cookie & ~0xFFFF_FFFF) | CONNECTION_COOKIE_FLAG | backend_id



class ServiceTable:
    """Every service, by name, with the ids the switches know them by."""

    def __init__(self):
        self.services: dict[str, Service] = {}
        self._next_service_id = 1
        self._next_backend_id = 1

    def _backend_id(self) -> int:
        backend_id, self._next_backend_id = self._next_backend_id, self._next_backend_id + 1
        return backend_id

    def check(self, spec: ServiceSpec, host_ips=()) -> None:
        """Conflict if ``spec`` cannot join the table."""
        if spec.name in self.services:
            raise Conflict("service %s already exists" % spec.name)
        if spec.vip in set(host_ips):
            raise Conflict("service.vip: %s is a known host's address" % spec.vip)
        for other in self.services.values():
            if other.spec.vip == spec.vip and (other.spec.port, other.spec.protocol) == (
                    spec.port, spec.protocol):
                raise Conflict("service.vip: %s:%d/%s is service %s's already"
                                 % (spec.vip, spec.port, spec.protocol, other.spec.name))
            for backend in spec.backends:
                self.check_backend(other, backend, spec.protocol)
            if spec.vip in other.backends:
                raise Conflict("service.vip: %s is a backend of service %s"
                                 % (spec.vip, other.spec.name))

    def check_backend(self, other: Service, backend: BackendSpec, protocol: str) -> None:
        """A backend's address and port may serve one service: its replies are told
        apart by them alone."""
        taken = other.backends.get(backend.ip)
        if taken is not None and taken.spec.port == backend.port and \
                other.spec.protocol == protocol:
            raise Conflict("backend %s:%d/%s already serves service %s"
                             % (backend.ip, backend.port, protocol, other.spec.name))
        if backend.ip == other.spec.vip:
            raise Conflict("backend.ip: %s is service %s's VIP" % (backend.ip,
                                                                   other.spec.name))

    def add(self, spec: ServiceSpec, host_ips=()) -> Service:
        self.check(spec, host_ips)
        service = Service(spec, self._next_service_id, self._backend_id)
        self._next_service_id += 1
        self.services[spec.name] = service
        return service

    def get(self, name: str) -> Service:
        if name not in self.services:
            raise NotFound("no service %s" % name)
        return self.services[name]

    def add_backend(self, name: str, backend: BackendSpec) -> BackendState:
        service = self.get(name)
        for other in self.services.values():
            if other is not service:
                self.check_backend(other, backend, service.spec.protocol)
        return service.add_backend(backend)

    def describe(self, service: Service, connections: dict, rate_of, requests_of) -> dict:
        """A service's JSON form with its backends' run-time state (``connections``:
        {backend id: active connections}; ``rate_of(ip)``: bits/s measured toward it;
        ``requests_of(name)``: the service's new connections/s)."""
        out = service.spec.to_dict()
        out["requests_per_s"] = round(requests_of(service.spec.name), 2)
        out["vip_mac"] = vip_mac(service.spec.vip)
        out["backends"] = [dict(backend_dict(b.spec), state=b.state,
                                active_connections=connections.get(b.backend_id, 0),
                                rate_bps=round(rate_of(b.spec.ip), 1),
                                health_checks=b.health.checks,
                                effective_weight=round(b.effective_weight, 2),
                                load_factor=round(b.load_factor, 3),
                                reported_load=b.reported_load)
                           for b in service.backends.values()]
        out["slots"] = service.slot_counts()
        out["controller_placements"] = service.placements
        return out

    def find(self, vip: str, port: int, ip_proto: int) -> Service | None:
        """The service a frame to ``vip``:``port`` is for."""
        for service in self.services.values():
            spec = service.spec
            if (spec.vip, spec.port, spec.ip_proto) == (vip, port, ip_proto):
                return service
        return None

    def per_switch(self) -> bool:
        """Whether switches need entries of their own ("nearest" picks by distance)."""
        return any(s.spec.scheduler == "nearest" for s in self.services.values())

    def slot_inputs(self, now: float, active: dict) -> tuple:
        """What the slots depend on besides the pool: the slow-start steps of ramping
        backends and which capped backends are at their cap (``active``: {backend id:
        connections}).  The slots must be rebuilt when this changes."""
        ramps = tuple((b.backend_id, b.ramp(now, s.spec.slow_start_ms))
                      for s in self.services.values() if s.spec.slow_start_ms
                      for b in s.backends.values() if b.slow_start_from is not None)
        full = tuple(b.backend_id for s in self.services.values()
                     for b in s.backends.values() if b.saturated(active.get(b.backend_id, 0)))
        return ramps, full

    def adapt(self, active: dict, rate_of, now: float, threshold: float,
              hold: float) -> list:
        """Names of the adaptive services whose weights changed (``Service.adapt``;
        ``rate_of(ip)``: bits/s toward a backend)."""
        return [name for name, service in self.services.items() if service.spec.adaptive
                and service.adapt(active, {ip: rate_of(ip) for ip in service.backends},
                                  now, threshold, hold)]

    def drained(self, active: dict, counted_at: float, now: float) -> list:
        """[(service name, ip, reason)] of draining backends that may leave."""
        return [(name, ip, why) for name, service in self.services.items()
                for ip, why in service.drained(active, counted_at, now)]

    def remove(self, name: str) -> Service:
        return self.services.pop(self.get(name).spec.name)

    def vips(self) -> dict[str, str]:
        """{VIP: its MAC}."""
        return {s.spec.vip: vip_mac(s.spec.vip) for s in self.services.values()}

    def entries(self, mac_of, connection_idle_timeout: int, cookie: int,
                now: float | None = None, active: dict | None = None, hops_from=None,
                place=None) -> list:
        """The flow entries a switch with hosts holds for the services (pipeline
        terms).  ``mac_of(ip)``: a known host's MAC, or None; a backend not yet located
        gets no rewrite (it cannot have been health-checked, so it has no slots).
        ``active``: {backend id: connections}, for backends' caps; ``hops_from(ip)``:
        hops from this switch to a backend's (None if unreachable), and ``place`` the
        switch, for "nearest"."""
        if not self.services:
            return []
        out = [entry(table, PRIORITY_MISS, ())
               for table in (TABLE_CONNECTIONS, TABLE_SERVICE, TABLE_SLOTS)]
        vips_done = set()
        for service in sorted(self.services.values(), key=lambda s: s.service_id):
            spec, sid = service.spec, service.service_id
            l4, mac = spec.protocol, vip_mac(spec.vip)
            out.append(entry(
                TABLE_FORWARD, PRIORITY_SERVICE,
                (("set_reg", 2, sid), ("resubmit", TABLE_CONNECTIONS),
                 ("resubmit", TABLE_SERVICE)),
                eth_type=ETH_TYPE_IPV4, ip_proto=spec.ip_proto, ipv4_dst=spec.vip,
                **{l4 + "_dst": spec.port}))
            if spec.vip not in vips_done:
                vips_done.add(spec.vip)
                out.append(entry(TABLE_FORWARD, PRIORITY_VIP, PUNT,
                                 eth_type=ETH_TYPE_IPV4, ipv4_dst=spec.vip))
            # OpenFlow lets an entry rewrite or copy IP and port fields only if its
            # match names the protocols (prerequisites): hence eth_type and ip_proto.
            ip = {"eth_type": ETH_TYPE_IPV4, "ip_proto": spec.ip_proto}
            if spec.scheduler == "least_conn":  # the controller places each connection
                new_connection = PUNT
            else:
                new_connection = (("hash_slots", SLOTS, HASH_FIELDS[spec.scheduler]),
                                  ("resubmit", TABLE_SLOTS))
            out.append(entry(TABLE_SERVICE, PRIORITY_FORWARD, new_connection,
                             reg2=sid, reg3=0, **ip))
            if spec.protocol == "tcp":
                # A SYN apart, with the same steps: its counter counts new connections
                # (the "requests" metric), and under least_conn, where Open vSwitch
                # caches the SYN's path (to the controller) in its datapath, the next
                # segments, told apart by the flag, are looked up afresh and find the
                # connection's entry.
                out.append(entry(TABLE_SERVICE, PRIORITY_FORWARD + 1, new_connection,
                                 **new_connection_match(service)))
            if spec.scheduler != "least_conn":
                hops = None
                if spec.scheduler == "nearest" and hops_from is not None:
                    hops = {b: h for b in service.backends
                            if (h := hops_from(b)) is not None}
                slots = service.slots(now, active, hops,
                                      place if hops is not None else None)
                for slot, backend_id in enumerate(slots):
                    out.append(entry(TABLE_SLOTS, PRIORITY_FORWARD, placement(
                        spec, backend_id, connection_idle_timeout, cookie),
                        reg2=sid, reg4=slot, **ip))
            for backend in sorted(service.backends.values(), key=lambda b: b.backend_id):
                backend_mac = mac_of(backend.spec.ip)
                if backend_mac is None:
                    continue
                rewrite = [("set_field", "eth_dst", backend_mac),
                           ("set_field", "ipv4_dst", backend.spec.ip)]
                if backend.spec.port != spec.port:
                    rewrite.append(("set_field", l4 + "_dst", backend.spec.port))
                out.append(entry(TABLE_SERVICE, PRIORITY_FORWARD,
                                 (*rewrite, ("resubmit", TABLE_FORWARD)),
                                 reg3=backend.backend_id, **ip))
                back = [("set_field", "eth_src", mac), ("set_field", "ipv4_src", spec.vip)]
                if backend.spec.port != spec.port:
                    back.append(("set_field", l4 + "_src", spec.port))
                out.append(entry(TABLE_FORWARD, PRIORITY_SERVICE_REPLY,
                                 (*back, ("resubmit", TABLE_FORWARD)),
                                 eth_type=ETH_TYPE_IPV4, ip_proto=spec.ip_proto,
                                 ipv4_src=backend.spec.ip,
                                 **{l4 + "_src": backend.spec.port}))
        return out


def new_connection_match(service: Service) -> dict:
    """The match of the entry that a service's new connections (TCP: their SYN; UDP:
    a flow's packets until its connection entry is learned) pass in TABLE_SERVICE: an
    aggregate request with it reads their count (requests/s, the "requests" metric)."""
    match = {"eth_type": ETH_TYPE_IPV4, "ip_proto": service.spec.ip_proto,
             "reg2": service.service_id, "reg3": 0}
    if service.spec.protocol == "tcp":
        match["tcp_flags"] = SYN_ONLY
    return match


def placement(spec: ServiceSpec, backend_id: int, connection_idle_timeout: int,
              cookie: int) -> tuple:
    """The steps that give a new connection its backend: learn its connection entry,
    load the backend's id and look the frame up in the service table again (where it
    is rewritten).  A slot's entry runs them, or, under least_conn, the controller's
    packet-out of the connection's first frame."""
    return (("learn_connection", TABLE_CONNECTIONS, spec.ip_proto, backend_id,
             connection_idle_timeout, connection_cookie(cookie, backend_id)),
            ("set_reg", 3, backend_id), ("resubmit", TABLE_SERVICE))
