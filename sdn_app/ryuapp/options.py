"""The controller's settings (core/settings.py) as oslo.config options in the
``[sdn_app]`` group.

Set them Ryu-style in a file passed with ``--config-file``; bad values stop the
controller at start-up with a message naming the option.
"""

from __future__ import annotations

from dataclasses import MISSING

from oslo_config import cfg

from ..core.settings import SETTINGS_FIELDS, Settings, parse_capacities

GROUP = "sdn_app"
_OPT_TYPES = {float: cfg.FloatOpt, int: cfg.IntOpt, bool: cfg.BoolOpt, str: cfg.StrOpt}


def _option(name, spec):
    meta = dict(spec.metadata)
    help_text = meta.pop("help")
    if name == "link_capacity_mbps":  # a tuple in Settings, 'k:v,...' in the file
        return cfg.DictOpt(name, default={}, help=help_text)
    default = spec.default if spec.default is not MISSING else None
    opt_type = _OPT_TYPES[type(default)]
    if "choices" in meta:
        meta["choices"] = list(meta["choices"])
    return opt_type(name, default=default, help=help_text, **meta)


OPTIONS = [_option(name, spec) for name, spec in SETTINGS_FIELDS.items()]


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
        return Settings(**values)
    except (cfg.Error, ValueError) as exc:
        raise ValueError("invalid [%s] configuration: %s" % (GROUP, exc)) from None
