"""The leader election (core/cluster.py) against a fake store with etcd's semantics
(leases that expire on the store's clock, revisions that only grow, create-if-absent)
and a fake clock: election, lease loss, re-election, generation growth, fencing."""

import pytest

from sdn_app.core.cluster import (
    ELECTION_KEY,
    FOLLOWER,
    LEADER,
    MEMBERS_PREFIX,
    Election,
    StoreUnavailable,
)


class FakeStore:
    """etcd as far as the election uses it; ``up = False`` is a lost quorum (nothing
    answers, and leases do not expire meanwhile, as in etcd); ``cut`` holds nodes that
    cannot reach it while the others can."""

    def __init__(self, clock, min_ttl=2):
        self.clock, self.min_ttl = clock, min_ttl
        self.revision = 0
        self.keys = {}  # key -> (value, create revision, lease)
        self.leases = {}  # id -> expiry
        self.up, self.cut, self.caller = True, set(), None
        self._paused_at = None

    def _check(self):
        if not self.up or self.caller in self.cut:
            raise StoreUnavailable("no quorum" if not self.up else "unreachable")
        self._expire()

    def _expire(self):
        now = self.clock()
        for lease in [lid for lid, until in self.leases.items() if until <= now]:
            del self.leases[lease]
            for key in [k for k, v in self.keys.items() if v[2] == lease]:
                del self.keys[key]
                self.revision += 1

    def lose_quorum(self):
        self.up, self._paused_at = False, self.clock()

    def regain_quorum(self):  # etcd's new leader restarts every lease's TTL
        for lease in self.leases:
            self.leases[lease] = max(self.leases[lease], self.clock() + self.min_ttl)
        self.up = True

    def grant(self, ttl):
        self._check()
        ttl = max(ttl, self.min_ttl)
        self.revision += 0  # a lease is not a revision
        lease = len(self.leases) + 1000 + self.revision * 7 + int(self.clock() * 1000)
        self.leases[lease] = self.clock() + ttl
        return lease, ttl

    def keepalive(self, lease):
        self._check()
        if lease not in self.leases:
            return 0
        ttl = self.min_ttl
        self.leases[lease] = self.clock() + ttl
        return ttl

    def campaign(self, key, value, lease):
        self._check()
        if key not in self.keys:
            self.revision += 1
            self.keys[key] = (value, self.revision, lease)
        held, created, _ = self.keys[key]
        return held, created

    def put(self, key, value, lease=None):
        self._check()
        self.revision += 1
        created = self.keys[key][1] if key in self.keys else self.revision
        self.keys[key] = (value, created, lease)

    def get_prefix(self, prefix):
        self._check()
        return {k: v[0] for k, v in self.keys.items() if k.startswith(prefix)}

    def revoke(self, lease):
        self._check()
        self.leases[lease] = self.clock()
        self._expire()


class Cluster:
    def __init__(self, n=3, lease_s=2):
        self.now = 0.0
        self.store = FakeStore(lambda: self.now)
        self.nodes = [Election("c%d" % i, lease_s) for i in range(n)]
        self.changes = {node.node_id: [] for node in self.nodes}

    def run(self, seconds, alive=None):
        end = self.now + seconds
        while self.now < end:
            for node in self.nodes:
                if alive is not None and node.node_id not in alive:
                    continue
                self.store.caller = node.node_id
                change = node.step(self.store, self.now, {"heartbeat": self.now})
                if change:
                    self.changes[node.node_id].append(change)
            self.now = round(self.now + self.nodes[0].tick_s, 6)

    def leaders(self):
        return [n.node_id for n in self.nodes if n.leading(self.now)]


def test_one_leader_is_elected_and_every_node_knows_it():
    cluster = Cluster()
    cluster.run(1.0)
    assert cluster.leaders() == ["c0"]
    assert {n.leader for n in cluster.nodes} == {"c0"}
    assert {n.generation for n in cluster.nodes} == {cluster.nodes[0].generation}
    assert [n.role for n in cluster.nodes] == [LEADER, FOLLOWER, FOLLOWER]
    assert set(cluster.nodes[1].members) == {"c0", "c1", "c2"}


def test_a_dead_leaders_lease_expires_and_another_takes_over_with_a_larger_generation():
    cluster = Cluster()
    cluster.run(1.0)
    first = cluster.nodes[0].generation
    cluster.run(3.0, alive={"c1", "c2"})  # c0 dies: it renews nothing
    assert cluster.leaders() == ["c1"]
    assert cluster.nodes[1].generation > first
    assert cluster.nodes[2].leader == "c1" and cluster.nodes[2].generation > first
    assert cluster.changes["c1"][-1].role == LEADER
    assert "c0" not in cluster.nodes[1].members, "its member record went with its lease"


def test_the_takeover_comes_within_the_lease_and_a_tick():
    cluster = Cluster(lease_s=2)
    cluster.run(1.0)
    died_at = cluster.now
    while cluster.leaders() in ([], ["c0"]) or cluster.nodes[1].role != LEADER:
        cluster.run(cluster.nodes[0].tick_s, alive={"c1", "c2"})
        assert cluster.now - died_at < 10
    assert cluster.now - died_at <= 2 + 2 * cluster.nodes[0].tick_s


def test_a_leader_cut_off_from_the_store_stops_before_another_can_be_elected():
    """Fencing: the old leader's own clock runs its lease out no later than the store
    does, so there is never a moment with two nodes that may change the switches."""
    cluster = Cluster()
    cluster.run(1.0)
    cluster.store.cut = {"c0"}
    for _ in range(40):
        cluster.run(cluster.nodes[0].tick_s)
        assert len(cluster.leaders()) <= 1, cluster.leaders()
    assert cluster.leaders() == ["c1"]
    assert cluster.nodes[0].role == FOLLOWER and not cluster.nodes[0].store_ok
    assert "unreachable" in cluster.changes["c0"][-1].reason
    cluster.store.cut = set()  # back: it follows the new leader, it does not fight it
    cluster.run(1.0)
    assert cluster.leaders() == ["c1"] and cluster.nodes[0].leader == "c1"


def test_without_quorum_nobody_changes_leader_and_the_same_one_resumes():
    cluster = Cluster()
    cluster.run(1.0)
    generation = cluster.nodes[0].generation
    cluster.store.lose_quorum()
    cluster.run(5.0)
    assert cluster.leaders() == [], "nobody may change the switches without the store"
    assert [n.suspended for n in cluster.nodes] == [True, False, False]
    assert [n.leader for n in cluster.nodes[1:]] == ["c0", "c0"], "nor is anyone elected"
    cluster.store.regain_quorum()
    cluster.run(1.0)
    assert cluster.leaders() == ["c0"] and cluster.nodes[0].generation == generation
    assert not cluster.nodes[0].suspended


def test_a_clean_resignation_hands_over_without_waiting_for_the_lease():
    cluster = Cluster(lease_s=10)
    cluster.run(1.0)
    cluster.store.caller = "c0"
    cluster.nodes[0].resign(cluster.store)
    cluster.run(0.5, alive={"c1", "c2"})
    assert cluster.leaders() == ["c1"]


def test_generations_only_grow_over_many_takeovers():
    cluster = Cluster()
    generations = []
    alive = {"c0", "c1", "c2"}
    for _ in range(4):  # each round the leader dies
        cluster.run(3.0, alive=alive)
        leader = cluster.leaders()
        assert len(leader) == 1
        generations.append(next(n.generation for n in cluster.nodes if n.node_id == leader[0]))
        alive = {"c0", "c1", "c2"} - {leader[0]}
    assert generations == sorted(generations) and len(set(generations)) == len(generations)


def test_a_store_that_stops_answering_never_raises_out_of_step():
    cluster = Cluster()
    cluster.store.up = False
    cluster.run(1.0)
    assert cluster.leaders() == [] and all(not n.store_ok for n in cluster.nodes)
    assert "no quorum" in cluster.nodes[0].describe(cluster.now, 0.0)["store_error"]
    cluster.store.up = True
    cluster.run(1.0)
    assert len(cluster.leaders()) == 1


def test_describe_names_role_leader_generation_and_members():
    cluster = Cluster()
    cluster.run(1.0)
    view = cluster.nodes[2].describe(cluster.now, cluster.now)
    assert (view["node_id"], view["role"], view["leader"]) == ("c2", FOLLOWER, "c0")
    assert [m["node_id"] for m in view["members"]] == ["c0", "c1", "c2"]
    assert all(m["heartbeat_age_s"] is not None and m["heartbeat_age_s"] <= 1.0
               for m in view["members"])
    assert ELECTION_KEY in cluster.store.keys
    assert any(k.startswith(MEMBERS_PREFIX) for k in cluster.store.keys)


@pytest.mark.parametrize("lease_s", [2, 5])
def test_the_lease_is_renewed_well_before_it_expires(lease_s):
    cluster = Cluster(n=1, lease_s=lease_s)
    cluster.run(4 * lease_s)
    assert cluster.leaders() == ["c0"] and len(cluster.changes["c0"]) == 1
