"""High availability: which of several controllers leads, decided by the store (etcd) and
never by the controllers among themselves.

Every controller connects to every switch.  The leader holds one key, ELECTION_KEY,
whose value is its node id and which is attached to its lease: the key lives as long
as the leader keeps its lease alive, and goes with the lease when the leader dies or
is cut off from the store.  Every node campaigns at each step by creating the key if it
is absent (an atomic compare-and-put); the one whose create succeeds leads.

The key's create revision is the leader's *generation*, the ``generation_id`` of its
OpenFlow role requests: store revisions only grow, so each new leader's generation is
larger than every earlier one's, and a switch refuses a role request from a deposed
leader (OFPRRFC_STALE) once it has seen the new one's.

A leader that cannot reach the store keeps leading only while its lease must still be
alive by its own clock (``lease_valid_until``: from when it last sent a keep-alive that
was answered, plus the TTL the store gave), then stops: by then another node may have
been elected, and the old leader must not be a second one (fencing; the switches
refuse it anyway once the new leader has taken the master role).  When the store has
no quorum nobody can be elected and leases do not expire, so once it returns the same
leader goes on with the same generation: no master change.

Pure: the store is passed in (ryuapp/cluster_store.py talks to etcd; the unit tests
use a fake one), and so is the time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

LEADER, FOLLOWER = "leader", "follower"
PREFIX = "/sdn-app/"
ELECTION_KEY = PREFIX + "leader"
MEMBERS_PREFIX = PREFIX + "members/"
STATE_PREFIX = PREFIX + "state/"  # what the leader records that switches cannot tell


class StoreUnavailable(Exception):
    """The store did not answer, or has no quorum: nothing was decided (HTTP 503 for a
    change that would have to be recorded there)."""


class NotLeader(Exception):
    """A change asked of a follower (HTTP 409): only the leader changes anything."""

    def __init__(self, leader: str | None, rest_url: str | None):
        self.leader, self.rest_url = leader, rest_url
        super().__init__("this controller is a follower; changes go to the leader, %s"
                         % ("%s (%s)" % (leader, rest_url) if rest_url else leader
                            or "not elected yet"))


class Store(Protocol):
    def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (its id, the TTL granted, whole seconds, perhaps above ``ttl``)."""

    def keepalive(self, lease: int) -> int:
        """Renew a lease: its TTL from now, 0 or less if it has expired."""

    def campaign(self, key: str, value: str, lease: int) -> tuple[str, int]:
        """Create ``key`` = ``value`` on ``lease`` unless it exists: (the value it holds
        now, its create revision)."""

    def put(self, key: str, value: str, lease: int | None = None) -> None: ...

    def get_prefix(self, prefix: str) -> dict[str, str]: ...

    def revoke(self, lease: int) -> None: ...


@dataclass
class RoleChange:
    """What a step changed: this node's role, the leader, the generation, and why."""

    role: str
    leader: str | None
    generation: int | None
    reason: str


@dataclass
class Election:
    """One node's view of the election; ``step`` is called every ``tick_s``."""

    node_id: str
    lease_s: int
    role: str = FOLLOWER
    leader: str | None = None
    generation: int | None = None
    lease: int | None = None
    lease_ttl: int = 0
    lease_valid_until: float = float("-inf")
    store_ok: bool = False
    store_error: str = ""
    members: dict = field(default_factory=dict)  # node id -> its last published record
    # Led until the store stopped answering, and nobody is known to lead since: the
    # switches still have this node as master (it changes nothing meanwhile).
    suspended: bool = False
    _next_keepalive: float = float("-inf")
    _next_publish: float = float("-inf")

    @property
    def tick_s(self) -> float:
        """How often to step: often enough to notice a vacancy within a fraction of a
        lease, and to renew the lease three times per TTL."""
        return min(0.2, self.lease_s / 5)

    def leading(self, now: float) -> bool:
        """Whether this node may change the switches now."""
        return self.role == LEADER and now < self.lease_valid_until

    def step(self, store: Store, now: float, record: dict | None = None) -> RoleChange | None:
        """Renew the lease, campaign, publish this node's ``record`` (a JSON-ready dict
        the other members read: REST address, last heartbeat...); the role change, if
        any.  ``now`` is taken before the store is asked, so every time derived from an
        answer errs early."""
        try:
            self._renew(store, now)
            holder, revision = store.campaign(ELECTION_KEY, self.node_id, self.lease)
            if now >= self._next_publish:
                self._next_publish = now + self.lease_s / 3
                if record is not None:
                    store.put(MEMBERS_PREFIX + self.node_id, json.dumps(record), self.lease)
                self.members = {key[len(MEMBERS_PREFIX):]: _loads(value) for key, value in
                                store.get_prefix(MEMBERS_PREFIX).items()}
        except StoreUnavailable as exc:
            self.store_ok, self.store_error = False, str(exc)
            if self.role == LEADER and not self.leading(now):
                change = self._become(FOLLOWER, None, None,
                                      "the store is unreachable and the lease may have expired")
                self.suspended = True
                return change
            return None
        self.store_ok, self.store_error = True, ""
        if holder == self.node_id:
            if self.role != LEADER or self.generation != revision:
                return self._become(LEADER, self.node_id, revision, "elected")
            return None
        if self.role == LEADER:
            return self._become(FOLLOWER, holder, revision, "%s leads" % holder)
        if (self.leader, self.generation) != (holder, revision):
            return self._become(FOLLOWER, holder, revision, "%s leads" % holder)
        return None

    def _renew(self, store: Store, now: float) -> None:
        if self.lease is not None and now >= self._next_keepalive:
            left = store.keepalive(self.lease)
            if left > 0:
                self.lease_valid_until = now + left
                self._next_keepalive = now + self.lease_ttl / 3
            else:
                self.lease, self.lease_valid_until = None, float("-inf")
        if self.lease is None:
            self.lease, self.lease_ttl = store.grant(self.lease_s)
            self.lease_valid_until = now + self.lease_ttl
            self._next_keepalive = now + self.lease_ttl / 3
            self._next_publish = float("-inf")  # the member record went with the old lease

    def _become(self, role: str, leader, generation, reason: str) -> RoleChange:
        self.role, self.leader, self.generation = role, leader, generation
        self.suspended = False
        return RoleChange(role, leader, generation, reason)

    def resign(self, store: Store) -> None:
        """Give up the lease (a clean stop): the key goes at once, not at expiry."""
        if self.lease is not None:
            try:
                store.revoke(self.lease)
            except StoreUnavailable:
                pass
        self.lease, self.role, self.lease_valid_until = None, FOLLOWER, float("-inf")

    def describe(self, now: float, wall_now: float) -> dict:
        """``GET /v1/cluster``."""
        return {"node_id": self.node_id, "role": self.role, "leader": self.leader,
                "generation": self.generation, "store_reachable": self.store_ok,
                "store_error": self.store_error or None,
                "lease_ttl_s": self.lease_ttl,
                "lease_left_s": round(max(0.0, self.lease_valid_until - now), 3)
                if self.lease is not None else 0.0,
                "members": [dict(record, node_id=node,
                                 heartbeat_age_s=round(wall_now - record["heartbeat"], 3)
                                 if isinstance(record.get("heartbeat"), int | float) else None)
                            for node, record in sorted(self.members.items())]}


def _loads(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
