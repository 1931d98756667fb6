"""The controller's settings: each one's name, default, bounds and meaning, stated once.

The Ryu layer (ryuapp/options.py) turns these fields into oslo.config options in the
``[sdn_app]`` group; the lab writes the same names into the files it starts
ryu-manager with; the unit tests build ``Settings()`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .admission import parse_ports
from .te import POLICIES

DEFAULT_COOKIE = 0x5DA0_0000_0000_0001


def _setting(default, help: str, **bounds):
    """A Settings field: ``bounds`` are min/max (numbers) or choices (strings)."""
    return field(default=default, metadata={"help": help, **bounds})


@dataclass(frozen=True)
class Settings:
    lldp_interval: float = _setting(
        1.0, "Seconds between LLDP probes on every switch port.", min=0.05, max=60)
    link_timeout: float = _setting(
        3.5, "Seconds without LLDP after which a link is declared down (carrier loss is "
             "seen at once through port status).", min=0.1, max=600)
    settle_time: float = _setting(
        0.5, "Seconds a port must be up, with no LLDP seen on it, before it counts as "
             "host-facing (learns hosts, receives broadcasts); longer while our LLDP "
             "probes come back late (4 times the slowest in the last 10 s).",
        min=0, max=60)
    host_idle_timeout: int = _setting(
        300, "Seconds of silence after which a host is forgotten (0: never).",
        min=0, max=65535)
    switch_forget_after: float = _setting(
        600.0, "Seconds a switch may stay disconnected before it is forgotten with its "
               "links and hosts (0: never); DELETE /v1/switches/<dpid> forgets one at once.",
        min=0, max=86400 * 365)
    max_hosts_per_port: int = _setting(
        64, "Most hosts learned on one switch port (0: no cap): a port sending from more "
            "new MACs (a flood of random sources) has them refused, each host costing a "
            "flow entry on every switch.", min=0, max=1_000_000)
    max_hosts_per_switch: int = _setting(
        1024, "Most hosts learned on one switch over all its ports (0: no cap).",
        min=0, max=1_000_000)
    packet_in_rate: int = _setting(
        1000, "Most frames per second one switch sends the controller (an OpenFlow meter "
              "in the switch drops the rest, so a flooding port cannot take the "
              "controller from every other switch); LLDP from proven inter-switch ports "
              "is not counted.", min=1, max=1_000_000)
    packet_in_burst: int = _setting(
        1000, "Frames over packet_in_rate a switch may send at once (the meter's burst).",
        min=1, max=1_000_000)
    packet_in_port_rate: int = _setting(
        200, "Most frames per second one switch port sends the controller (a meter per "
             "port, before the switch's): a flooding port gets this much, and the other "
             "ports of its switch keep the rest of packet_in_rate.", min=1, max=1_000_000)
    packet_in_port_burst: int = _setting(
        200, "Frames over packet_in_port_rate a port may send at once.",
        min=1, max=1_000_000)
    cookie: int = _setting(
        DEFAULT_COOKIE, "OpenFlow cookie that marks this application's flow entries.",
        min=1, max=2**64 - 1)
    stats_interval: float = _setting(
        1.0, "Seconds between port and flow statistics polls of every switch.",
        min=0.1, max=60)
    stats_time_constant: float = _setting(
        1.0, "Time constant (s) of the moving average over measured rates; 0 reports the "
             "last interval's rate unsmoothed.", min=0, max=600)
    policy: str = _setting(
        "adaptive", "How traffic is spread over paths (changeable at run time over REST).",
        choices=POLICIES)
    path_stretch: int = _setting(
        0, "Meant to admit paths up to this many hops longer than the shortest; has no "
           "effect yet (next hops are only neighbours strictly closer to the destination).",
        min=0, max=4)
    rebalance_interval: float = _setting(
        2.0, "Seconds between re-evaluations of adaptive weights.", min=0.2, max=600)
    rebalance_threshold: float = _setting(
        0.05, "Adaptive weights change only when a share moves by more than this.",
        min=0, max=1)
    rebalance_hold: float = _setting(
        5.0, "Minimum seconds between two weight changes of the same group.",
        min=0, max=3600)
    protection: bool = _setting(
        True, "Pre-install FAST_FAILOVER backups so switches divert traffic themselves "
              "when a port goes down (see core/protection.py).")
    wave_drain: float = _setting(
        0.02, "Seconds each wave of an update waits after the switches' barrier replies, "
              "for their cached datapath flows to follow, before the next wave.",
        min=0, max=1)
    hash_split: bool = _setting(
        True, "On Open vSwitch over OpenFlow 1.3, split traffic over next hops by hashing "
              "each flow's addresses and ports in a split table (SELECT groups there "
              "ignore UDP ports); false keeps SELECT groups.")
    services_file: str = _setting(
        "", "JSON file of services (virtual IPs load-balanced to backends, see "
            "core/services.py) loaded at start; a bad file stops the controller.")
    connection_idle_timeout: int = _setting(
        60, "Seconds of silence after which a switch forgets a service connection's "
            "backend (TCP ones also end 1 s after FIN or RST).", min=1, max=3600)
    rest_token: str = _setting(
        "", "Bearer token that REST requests changing something (POST, PUT, DELETE) must "
            "carry ('Authorization: Bearer <token>'); empty: such requests are accepted "
            "from loopback only.")
    rest_token_file: str = _setting(
        "", "File holding rest_token (its first line), so the token stays out of the "
            "command line and config; read at start, a missing file stops the controller.")
    prometheus_port: int = _setting(
        9302, "TCP port the Prometheus metrics are served on (any path, e.g. /metrics); "
              "0: not served. A port that cannot be bound is logged and the controller "
              "runs on without metrics.", min=0, max=65535)
    prometheus_host: str = _setting(
        "127.0.0.1", "Address the metrics listen on: loopback by default (they describe "
                     "the whole network); 0.0.0.0 for a Prometheus on another machine.")
    cluster_store: str = _setting(
        "", "etcd endpoints of a controller cluster, 'etcd://host:port,host:port' (empty: "
            "this controller runs alone). Clustered, one controller leads (an etcd lease) "
            "and is MASTER on every switch; the others are SLAVE and change nothing.")
    cluster_node_id: str = _setting(
        "", "This controller's name in the cluster (empty: '<hostname>:<OpenFlow port>').")
    cluster_lease: int = _setting(
        2, "Seconds of the leader's etcd lease: a dead leader is replaced within about "
           "this long (etcd grants at least ~1.5 x its election timeout).", min=1, max=60)
    cluster_heartbeat_ms: int = _setting(
        100, "How often a follower asks the leader's REST port whether it is there (0: "
             "never, the lease alone decides); two refused connections in a row (its "
             "process is gone) and the follower revokes its lease, for a takeover well "
             "within a second.", min=0, max=10000)
    scaling_command: str = _setting(
        "", "Command that starts or stops a backend for pool scaling, run as "
            "'<command> start|stop <service> <ip> <port>' (exit 0: done); empty: "
            "services do not scale. The lab's: 'python3 -m sdn_app.lab.actuator'.")
    admission_udp_ports: str = _setting(
        "", "UDP destination ports of latency-critical streams (e.g. '9100' or "
            "'9100,5000-5003'): each new stream to one is admitted at its first frame only "
            "if every link it may cross stays within admission_utilization with it, and "
            "is dropped at the switch it entered by otherwise. Empty: no admission "
            "control.")
    admission_utilization: float = _setting(
        0.8, "Highest utilisation, counting the new stream, of any link a stream may "
             "cross for it to be admitted.", min=0.05, max=1.0)
    admission_stream_mbps: float = _setting(
        2.5, "Rate (Mbit/s) a newly admitted stream is assumed to add until the links' "
             "measured rates include it.", min=0.001, max=100000)
    admission_refusal_s: int = _setting(
        5, "Seconds a refused stream stays refused before its next frame is looked at "
           "again.", min=1, max=3600)
    # ((dpid, port, Mbit/s), ...); written '<dpid hex>/<port>:<Mbit/s>,...'
    link_capacity_mbps: tuple = _setting(
        (), "Capacity of switch ports, overriding the advertised speed: "
            "'<dpid hex>/<port>:<Mbit/s>,...' (emulated links advertise their veth's "
            "speed, not a shaped rate).")

    def __post_init__(self):
        if self.link_timeout <= self.lldp_interval:
            raise ValueError("link_timeout (%s) must exceed lldp_interval (%s)"
                             % (self.link_timeout, self.lldp_interval))
        parse_ports(self.admission_udp_ports)  # a bad list stops the controller here

    @property
    def admission_ports(self) -> tuple:
        return parse_ports(self.admission_udp_ports)


SETTINGS_FIELDS = {f.name: f for f in fields(Settings)}


def parse_capacities(text_map: dict) -> tuple:
    """((dpid, port, Mbit/s), ...) from {'<dpid hex>/<port>': '<Mbit/s>'} (the setting as
    oslo's DictOpt splits it)."""
    out = []
    for key, value in text_map.items():
        try:
            dpid_text, port_text = key.split("/")
            dpid, port, mbps = int(dpid_text, 16), int(port_text), float(value)
        except ValueError:
            raise ValueError("link_capacity_mbps: %r is not '<dpid hex>/<port>:<Mbit/s>'"
                             % ("%s:%s" % (key, value))) from None
        if mbps <= 0:
            raise ValueError("link_capacity_mbps: capacity of %s must be positive" % key)
        out.append((dpid, port, mbps))
    return tuple(sorted(out))


def parse_capacity_text(text: str) -> tuple:
    """The same from the setting's text, '<dpid hex>/<port>:<Mbit/s>,...'."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition(":")
        if not sep:
            raise ValueError("link_capacity_mbps: %r is not '<dpid hex>/<port>:<Mbit/s>'"
                             % item)
        pairs[key] = value
    return parse_capacities(pairs)


def format_capacities(capacities) -> str:
    """The setting's text for ((dpid, port, Mbit/s), ...): the inverse of the above."""
    return ",".join("%x/%d:%g" % (dpid, port, mbps) for dpid, port, mbps in capacities)
