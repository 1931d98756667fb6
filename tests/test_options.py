import pytest
from oslo_config import cfg

from sdn_app import options


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
