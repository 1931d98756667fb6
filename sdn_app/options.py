"""The controller's settings, as oslo.config options in the ``[sdn_app]`` group.

Set them Ryu-style in a file passed with ``--config-file``; bad values stop the
controller at start-up with a message naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass

from oslo_config import cfg

GROUP = "sdn_app"
DEFAULT_COOKIE = 0x5DA0_0000_0000_0001

OPTIONS = [
    cfg.FloatOpt("lldp_interval", default=1.0, min=0.05, max=60,
                 help="Seconds between LLDP probes on every switch port."),
    cfg.FloatOpt("link_timeout", default=3.5, min=0.1, max=600,
                 help="Seconds without LLDP after which a link is declared down "
                      "(carrier loss is seen at once through port status)."),
    cfg.FloatOpt("settle_time", default=1.0, min=0, max=60,
                 help="Seconds a port must be up, with no LLDP seen on it, before it "
                      "counts as host-facing (learns hosts, receives broadcasts)."),
    cfg.IntOpt("host_idle_timeout", default=300, min=0, max=65535,
               help="Seconds of silence after which a host is forgotten (0: never)."),
    cfg.IntOpt("cookie", default=DEFAULT_COOKIE, min=1, max=2**64 - 1,
               help="OpenFlow cookie that marks this application's flow entries."),
    cfg.FloatOpt("stats_interval", default=1.0, min=0.1, max=60,
                 help="Seconds between port and flow statistics polls of every switch."),
    cfg.FloatOpt("stats_time_constant", default=1.0, min=0, max=600,
                 help="Time constant (s) of the moving average over measured rates; "
                      "0 reports the last interval's rate unsmoothed."),
    cfg.StrOpt("policy", default="adaptive", choices=["shortest", "ecmp", "adaptive"],
               help="How traffic is spread over paths (changeable at run time over REST)."),
    cfg.IntOpt("path_stretch", default=0, min=0, max=4,
               help="Also use paths up to this many hops longer than the shortest."),
    cfg.FloatOpt("rebalance_interval", default=2.0, min=0.2, max=600,
                 help="Seconds between re-evaluations of adaptive weights."),
    cfg.FloatOpt("rebalance_threshold", default=0.05, min=0, max=1,
                 help="Adaptive weights change only when a share moves by more than this."),
    cfg.FloatOpt("rebalance_hold", default=5.0, min=0, max=3600,
                 help="Minimum seconds between two weight changes of the same group."),
    cfg.BoolOpt("protection", default=True,
                help="Pre-install FAST_FAILOVER backups so switches divert traffic "
                     "themselves when a port goes down (see protection.py)."),
    cfg.DictOpt("link_capacity_mbps", default={},
                help="Capacity of switch ports, overriding the advertised speed: "
                     "'<dpid hex>/<port>:<Mbit/s>,...' (emulated links advertise their "
                     "veth's speed, not a shaped rate)."),
]


@dataclass(frozen=True)
class Settings:
    lldp_interval: float = 1.0
    link_timeout: float = 3.5
    settle_time: float = 1.0
    host_idle_timeout: int = 300
    cookie: int = DEFAULT_COOKIE
    stats_interval: float = 1.0
    stats_time_constant: float = 1.0
    policy: str = "adaptive"
    path_stretch: int = 0
    rebalance_interval: float = 2.0
    rebalance_threshold: float = 0.05
    rebalance_hold: float = 5.0
    protection: bool = True
    link_capacity_mbps: tuple = ()  # ((dpid, port, Mbit/s), ...)


def parse_capacities(text_map: dict) -> tuple:
    """((dpid, port, Mbit/s), ...) from {'<dpid hex>/<port>': '<Mbit/s>'}."""
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


def load(conf) -> Settings:
    """Read and check the settings; raises ValueError with a readable reason."""
    try:
        conf.register_opts(OPTIONS, group=GROUP)
    except cfg.DuplicateOptError:
        pass
    group = getattr(conf, GROUP)
    try:
        values = {opt.dest: getattr(group, opt.dest) for opt in OPTIONS}
        values["link_capacity_mbps"] = parse_capacities(values["link_capacity_mbps"])
        settings = Settings(**values)
    except (cfg.Error, ValueError) as exc:
        raise ValueError("invalid [%s] configuration: %s" % (GROUP, exc)) from None
    if settings.link_timeout <= settings.lldp_interval:
        raise ValueError("invalid [%s] configuration: link_timeout (%s) must exceed "
                         "lldp_interval (%s)" % (GROUP, settings.link_timeout,
                                                 settings.lldp_interval))
    return settings
