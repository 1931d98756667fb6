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
]


@dataclass(frozen=True)
class Settings:
    lldp_interval: float = 1.0
    link_timeout: float = 3.5
    settle_time: float = 1.0
    host_idle_timeout: int = 300
    cookie: int = DEFAULT_COOKIE


def load(conf) -> Settings:
    """Read and check the settings; raises ValueError with a readable reason."""
    try:
        conf.register_opts(OPTIONS, group=GROUP)
    except cfg.DuplicateOptError:
        pass
    group = getattr(conf, GROUP)
    try:
        settings = Settings(**{opt.dest: getattr(group, opt.dest) for opt in OPTIONS})
    except (cfg.Error, ValueError) as exc:
        raise ValueError("invalid [%s] configuration: %s" % (GROUP, exc)) from None
    if settings.link_timeout <= settings.lldp_interval:
        raise ValueError("invalid [%s] configuration: link_timeout (%s) must exceed "
                         "lldp_interval (%s)" % (GROUP, settings.link_timeout,
                                                 settings.lldp_interval))
    return settings
