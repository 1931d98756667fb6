"""The store core/cluster.py's election and the leader's records live in: etcd, through
its v3 JSON gateway with etcd3gw (plain HTTP over requests, which eventlet's patched
sockets make cooperative; etcd's gRPC client does not mix with eventlet).

Several endpoints (``cluster_store = etcd://host:port,host:port``): a request that
fails on one goes to the next, and the one that answered is asked first next time.
Every failure, whatever etcd3gw or requests raised, becomes StoreUnavailable, so the
election never sees a library's exception.
"""

from __future__ import annotations

import base64
import json

import etcd3gw
from etcd3gw.lease import Lease

from ..core.cluster import StoreUnavailable

REQUEST_TIMEOUT_S = 0.5  # a member without quorum holds a request until its own timeout


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    """[(host, port)] from ``etcd://host:port,host:port`` (ValueError naming what is
    wrong)."""
    if not text.startswith("etcd://"):
        raise ValueError("cluster_store must look like etcd://host:port[,host:port...], "
                         "got %r" % text)
    out = []
    for item in filter(None, (part.strip() for part in text[len("etcd://"):].split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("cluster_store: %r is not host:port" % item)
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError("cluster_store names no endpoint")
    return out


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EtcdStore:
    def __init__(self, endpoints: list[tuple[str, int]], timeout: float = REQUEST_TIMEOUT_S):
        self.clients = [etcd3gw.Etcd3Client(host=host, port=port, timeout=timeout,
                                            api_path="/v3/") for host, port in endpoints]
        self._first = 0

    def _call(self, operation):
        """``operation(client)`` on the endpoint that answered last, then the others."""
        errors = []
        for i in range(len(self.clients)):
            index = (self._first + i) % len(self.clients)
            client = self.clients[index]
            try:
                result = operation(client)
            except Exception as exc:  # etcd3gw's and requests' errors alike
                why = (str(exc).splitlines() or [""])[0][:120] or type(exc).__name__
                errors.append("%s:%d: %s" % (client.host, client.port, why))
                continue
            self._first = index
            return result
        raise StoreUnavailable("; ".join(errors))

    def grant(self, ttl: int) -> tuple[int, int]:
        answer = self._call(lambda c: c.post(c.get_url("/lease/grant"),
                                             json={"TTL": ttl, "ID": 0}))
        return int(answer["ID"]), int(answer["TTL"])

    def keepalive(self, lease: int) -> int:
        return self._call(lambda c: Lease(lease, client=c).refresh())

    def campaign(self, key: str, value: str, lease: int) -> tuple[str, int]:
        txn = {"compare": [{"key": _b64(key), "result": "EQUAL", "target": "CREATE",
                            "create_revision": 0}],
               "success": [{"request_put": {"key": _b64(key), "value": _b64(value),
                                            "lease": lease}}],
               "failure": [{"request_range": {"key": _b64(key)}}]}
        answer = self._call(lambda c: c.post(c.get_url("/kv/txn"), data=json.dumps(txn)))
        if answer.get("succeeded"):
            return value, int(answer["header"]["revision"])
        kvs = answer["responses"][0]["response_range"].get("kvs") or []
        if not kvs:  # deleted between the compare and the range: nobody holds it now
            return "", 0
        return base64.b64decode(kvs[0].get("value", "")).decode(), int(kvs[0]["create_revision"])

    def put(self, key: str, value: str, lease: int | None = None) -> None:
        self._call(lambda c: c.put(key, value, lease=Lease(lease, client=c) if lease else None))

    def get(self, key: str) -> str | None:
        values = self._call(lambda c: c.get(key))
        return values[0].decode() if values else None

    def get_prefix(self, prefix: str) -> dict[str, str]:
        found = self._call(lambda c: c.get_prefix(prefix))
        return {meta["key"].decode(): value.decode() for value, meta in found}

    def revoke(self, lease: int) -> None:
        self._call(lambda c: c.post(c.get_url("/kv/lease/revoke"), json={"ID": lease}))
