import re
from pathlib import Path

import pytest
from oslo_config import cfg

from sdn_app.core.settings import format_capacities, parse_capacity_text
from sdn_app.ryuapp import options


def load(tmp_path, text):
    conf = cfg.ConfigOpts()
    path = tmp_path / "c.conf"
    path.write_text(text)
    conf(args=["--config-file", str(path)])
    return options.load(conf)


def test_defaults(tmp_path):
    assert load(tmp_path, "") == options.Settings()


def test_values_are_read(tmp_path):
    got = load(tmp_path, "[sdn_app]\nlldp_interval = 0.5\nhost_idle_timeout = 0\n")
    assert (got.lldp_interval, got.host_idle_timeout) == (0.5, 0)


@pytest.mark.parametrize("text,word", [
    ("[sdn_app]\nlldp_interval = fast\n", "lldp_interval"),
    ("[sdn_app]\nlldp_interval = 0\n", "lldp_interval"),
    ("[sdn_app]\nhost_idle_timeout = -1\n", "host_idle_timeout"),
    ("[sdn_app]\nlldp_interval = 5\nlink_timeout = 4\n", "link_timeout"),
])
def test_bad_values_name_the_option(tmp_path, text, word):
    with pytest.raises(ValueError, match=word):
        load(tmp_path, text)


def test_link_capacities(tmp_path):
    got = load(tmp_path, "[sdn_app]\nlink_capacity_mbps = 10101/2:10,0000000000010102/1:2.5\n")
    assert got.link_capacity_mbps == ((0x10101, 2, 10.0), (0x10102, 1, 2.5))


@pytest.mark.parametrize("value", ["10101:10", "zz/1:10", "10101/1:fast", "10101/1:0",
                                   "10101/1:-5"])
def test_bad_link_capacities_name_the_option(tmp_path, value):
    with pytest.raises(ValueError, match="link_capacity_mbps"):
        load(tmp_path, "[sdn_app]\nlink_capacity_mbps = %s\n" % value)


def test_bad_policy_names_the_option(tmp_path):
    with pytest.raises(ValueError, match="policy"):
        load(tmp_path, "[sdn_app]\npolicy = fastest\n")


def test_the_capacity_text_the_lab_writes_is_what_the_controller_reads(tmp_path):
    capacities = ((0x30101, 3, 10.0), (0x10101, 2, 2.5))
    text = format_capacities(capacities)
    assert parse_capacity_text(text) == tuple(sorted(capacities))
    got = load(tmp_path, "[sdn_app]\nlink_capacity_mbps = %s\n" % text)
    assert got.link_capacity_mbps == tuple(sorted(capacities))
    with pytest.raises(ValueError, match="link_capacity_mbps"):
        parse_capacity_text("10101/1")


def test_every_setting_is_an_option_with_the_settings_default():
    conf = cfg.ConfigOpts()
    conf(args=[])
    options.load(conf)
    for name, value in vars(options.Settings()).items():
        if name != "link_capacity_mbps":
            assert getattr(conf.sdn_app, name) == value, name


def test_the_readme_lists_every_setting_with_its_default():
    """The README's option table is documentation of core/settings.py, held to it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("| option | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", table, re.MULTILINE))
    documented = {name: rows[name].split()[0] for name in rows}
    defaults = {}
    for name, value in vars(options.Settings()).items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif name == "cookie":
            value = "0x%x" % value
        elif value in ((), ""):
            value = "(none)"
        defaults[name] = str(value)
    assert documented == defaults
