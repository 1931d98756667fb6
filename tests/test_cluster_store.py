"""cluster_store's text (ryuapp/cluster_store.parse_endpoints) and the store client's
failures, without an etcd: every one a StoreUnavailable naming what was tried."""

import pytest

from sdn_app.core.cluster import StoreUnavailable
from sdn_app.lab.emulation import free_port
from sdn_app.ryuapp.cluster_store import EtcdStore, parse_endpoints


def test_endpoints_are_read_from_an_etcd_url():
    assert parse_endpoints("etcd://127.0.0.1:2379, 10.0.0.2:2381") == [
        ("127.0.0.1", 2379), ("10.0.0.2", 2381)]
    assert parse_endpoints("etcd://[::1]:2379") == [("::1", 2379)]


@pytest.mark.parametrize("text", ["", "127.0.0.1:2379", "redis://h:1", "etcd://",
                                  "etcd://host", "etcd://host:0", "etcd://host:99999",
                                  "etcd://:2379", "etcd://h:12a"])
def test_a_bad_cluster_store_says_what_is_wrong(text):
    with pytest.raises(ValueError, match="cluster_store"):
        parse_endpoints(text)


def test_a_store_nobody_answers_is_unavailable_naming_each_endpoint():
    ports = [free_port(), free_port()]  # nothing listens on them
    store = EtcdStore([("127.0.0.1", p) for p in ports], timeout=0.2)
    with pytest.raises(StoreUnavailable) as caught:
        store.grant(2)
    assert all("127.0.0.1:%d" % p in str(caught.value) for p in ports)
    with pytest.raises(StoreUnavailable):
        store.campaign("/k", "v", 1)
