"""The reconciler (core/reconcile.py) driven by fake switches and a fake clock: what it
sends, in which order, when it waits for barriers, when it deletes, and what it does
after a controller restart.  The last test runs the messages it sends through the
simulated dataplane at every barrier, so make-before-break is checked on the engine
itself, not only on the order update_waves computes."""

import pytest
from shipped_topologies import model_of
from test_protection import cables, check_all_pairs, staged_plans

from sdn_app.core.pipeline import FAST_FAILOVER, SELECT, FlowEntry, GroupEntry
from sdn_app.core.plan import build_plan
from sdn_app.core.protection import plan_protection
from sdn_app.core.reconcile import (
    MIN_WINDOW_SHARE,
    RETIRE_GRACE,
    SERVICES,
    Coalescer,
    Reconciler,
    SwitchTables,
)
from sdn_app.core.te import compute_next_hops


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class FakeSwitch:
    """Applies what it is sent to its own table image, and logs every message."""

    def __init__(self, dpid, log, held=None):
        self.dpid = dpid
        self.log = log
        self.tables = SwitchTables()
        self.held = dict(held or {})  # what the switch really holds

    def send(self, item, delete=False):
        self.log.append((self.dpid, "delete" if delete else "add", item))
        if delete:
            self.held.pop(item.key, None)
        else:
            self.held[item.key] = item


class Harness:
    def __init__(self, dpids, clock=None):
        self.log = []
        self.clock = clock or Clock()
        self.resends = []
        self.switches = {d: FakeSwitch(d, self.log) for d in dpids}
        self.reconciler = Reconciler(wait_applied=self.barrier,
                                     resend_later=self.resends.append, clock=self.clock)
        self.snapshots = []  # what every switch held at each barrier
        self.on_barrier = None

    def barrier(self, switches):
        self.log.append(("barrier", tuple(sorted(s.dpid for s in switches))))
        if self.on_barrier:
            self.on_barrier()

    def start_empty(self):
        for switch in self.switches.values():
            switch.tables.start_empty()

    def messages(self, dpid=None):
        return [m for m in self.log if m[0] != "barrier" and dpid in (None, m[0])]

    def held(self):
        return {d: dict(s.held) for d, s in self.switches.items()}


def diamond_plan(policy="ecmp", drop_host=None):
    topo, macs = model_of("diamond")
    if drop_host:
        topo.remove_host(macs[drop_host])
    hops = compute_next_hops(topo, policy)
    return build_plan(topo, next_hops=hops, protection=plan_protection(topo.graph, hops))


def test_first_send_installs_everything_and_a_second_sends_nothing():
    plan = diamond_plan()
    rig = Harness(plan)
    rig.start_empty()
    totals = rig.reconciler.send_plan(rig.switches, plan=plan)
    assert rig.held() == plan
    assert totals["flow_mods"] + totals["group_mods"] == sum(len(e) for e in plan.values())
    rig.log.clear()
    again = rig.reconciler.send_plan(rig.switches, plan=diamond_plan())
    assert rig.log == [] and again == {"flow_mods": 0, "group_mods": 0, "waves": 0}


def test_groups_go_in_before_what_points_at_them_and_out_after():
    plan = diamond_plan()
    rig = Harness(plan)
    rig.start_empty()
    rig.reconciler.send_plan(rig.switches, plan=plan)

    def rank(item):
        if isinstance(item, GroupEntry):
            return 0 if item.kind == FAST_FAILOVER else 1
        return 2
    kinds = {g.kind for e in plan.values() for g in e.values() if isinstance(g, GroupEntry)}
    assert kinds == {FAST_FAILOVER, SELECT}
    for dpid in plan:
        ranks = [rank(item) for _, _, item in rig.messages(dpid)]
        assert ranks == sorted(ranks)
    # Everything goes away: entries first, then SELECT groups, then failover groups.
    rig.log.clear()
    rig.reconciler.send_plan(rig.switches, plan={d: {} for d in plan})
    rig.clock.now += RETIRE_GRACE
    rig.reconciler.send_plan(rig.switches)
    for dpid in plan:
        deleted = [rank(item) for _, what, item in rig.messages(dpid) if what == "delete"]
        assert deleted and deleted == sorted(deleted, reverse=True)
    assert all(not held for held in rig.held().values())


def test_each_wave_waits_for_the_barriers_of_the_switches_it_changed():
    plan = diamond_plan()
    a, b, c, d = sorted(plan)
    rig = Harness(plan)
    rig.start_empty()
    rig.reconciler.send_plan(rig.switches, waves=[[d], [b, c]], plan=plan)
    barriers = [m for m in rig.log if m[0] == "barrier"]
    assert barriers == [("barrier", (d,)), ("barrier", (b, c)), ("barrier", (a,))]
    first_barrier = rig.log.index(("barrier", (d,)))
    assert {m[0] for m in rig.log[:first_barrier]} == {d}
    # A wave that changes nothing waits for nobody.
    rig.log.clear()
    rig.reconciler.send_plan(rig.switches, waves=[[d], [b, c]])
    assert rig.log == []


def test_the_pause_between_waves_comes_between_them_only():
    plan = diamond_plan()
    a, b, c, d = sorted(plan)
    rig = Harness(plan)
    rig.start_empty()
    rig.reconciler.send_plan(rig.switches, waves=[[d], [b, c]], plan=plan,
                             between_waves=lambda: rig.log.append(("pause",)))
    marks = [m for m in rig.log if m[0] in ("barrier", "pause")]
    assert marks == [("barrier", (d,)), ("pause",), ("barrier", (b, c)), ("pause",),
                     ("barrier", (a,))]
    assert rig.log.index(("pause",)) < min(i for i, m in enumerate(rig.log) if m[0] == b)


def test_what_the_plan_drops_is_deleted_only_after_the_grace():
    old, new = diamond_plan(), diamond_plan(drop_host="h2")
    rig = Harness(old)
    rig.start_empty()
    rig.reconciler.send_plan(rig.switches, plan=old)
    dropped = {(d, k) for d in old for k in old[d] if k not in new[d]}
    assert dropped
    rig.log.clear()
    rig.reconciler.send_plan(rig.switches, plan=new)
    assert not [m for m in rig.messages() if m[1] == "delete"]
    assert rig.resends == [RETIRE_GRACE]
    rig.clock.now += RETIRE_GRACE / 2  # too early: still kept, and asked again
    rig.reconciler.send_plan(rig.switches)
    assert not [m for m in rig.messages() if m[1] == "delete"]
    assert rig.resends == [RETIRE_GRACE] * 2
    rig.clock.now += RETIRE_GRACE / 2
    rig.reconciler.send_plan(rig.switches)
    assert {(d, item.key) for d, what, item in rig.messages() if what == "delete"} == dropped
    assert rig.held() == new
    assert rig.resends == [RETIRE_GRACE] * 2  # nothing left to retire


def test_an_entry_needed_again_before_its_grace_ends_is_never_deleted():
    old, new = diamond_plan(), diamond_plan(drop_host="h2")
    rig = Harness(old)
    rig.start_empty()
    rig.reconciler.send_plan(rig.switches, plan=old)
    rig.reconciler.send_plan(rig.switches, plan=new)
    rig.clock.now += RETIRE_GRACE / 2
    rig.reconciler.send_plan(rig.switches, plan=old)
    rig.clock.now += RETIRE_GRACE
    rig.reconciler.send_plan(rig.switches)
    assert not [m for m in rig.messages() if m[1] == "delete"]
    assert rig.held() == old


def test_a_switch_still_being_read_back_is_left_alone():
    plan = diamond_plan()
    rig = Harness(plan)
    first, *others = sorted(plan)
    for dpid in others:
        rig.switches[dpid].tables.start_empty()
    rig.reconciler.send_plan(rig.switches, plan=plan)
    assert first not in {m[0] for m in rig.messages()}
    rig.switches[first].tables.take_over({}, hold_until=rig.clock.now + 3.5)
    rig.reconciler.send_plan(rig.switches)
    assert rig.switches[first].held == plan[first]


def test_a_restarted_controller_rewrites_nothing_and_deletes_nothing_until_the_hold_ends():
    """Take-over: the switches hold the old controller's plan plus one stale entry; the
    new controller's reconciler adopts it, sends nothing for what it would have sent
    anyway, keeps the stale entry through the hold, then retires it."""
    plan = diamond_plan()
    stale_dpid = min(plan)
    stale = FlowEntry(1, 100, (("eth_dst", "00:00:00:00:00:99"),), (("output", 1),))
    held = {d: dict(e) for d, e in plan.items()}
    held[stale_dpid][stale.key] = stale
    rig = Harness(plan)
    hold_until = rig.clock.now + 3.5
    for dpid, switch in rig.switches.items():
        switch.held = dict(held[dpid])
        switch.tables.take_over(held[dpid], hold_until)
    rig.reconciler.send_plan(rig.switches, plan=diamond_plan())
    assert rig.log == []
    rig.clock.now = hold_until - 0.01
    assert not any(s.tables.hold_expired(rig.clock.now) for s in rig.switches.values())
    rig.reconciler.send_plan(rig.switches)
    assert rig.log == []
    rig.clock.now = hold_until
    assert all(s.tables.hold_expired(rig.clock.now) for s in rig.switches.values())
    assert not any(s.tables.hold_expired(rig.clock.now) for s in rig.switches.values())
    rig.reconciler.send_plan(rig.switches)
    assert rig.log == [] and rig.resends == [RETIRE_GRACE]  # retiring from now on
    rig.clock.now += RETIRE_GRACE
    rig.reconciler.send_plan(rig.switches)
    assert rig.messages() == [(stale_dpid, "delete", stale)]
    assert rig.held() == plan


def test_switches_being_taken_over_wait_for_discovery_before_anything_is_sent():
    """A restarted controller that knows half the links plans entries without their
    backups: sent at once, they would strip protection off switches that held it."""
    plan = diamond_plan()
    rig = Harness(plan)
    left = {"s": 0.4}
    rig.reconciler.discovering = lambda: left["s"]
    hold_until = rig.clock.now + 3.5
    for dpid, switch in rig.switches.items():
        switch.held = dict(plan[dpid])
        switch.tables.take_over(plan[dpid], hold_until)
    partial = diamond_plan(policy="shortest")  # what half a topology might give
    assert partial != plan
    rig.reconciler.send_plan(rig.switches, plan=partial)
    assert rig.log == [] and rig.resends == [pytest.approx(0.41)]
    left["s"] = None  # discovery done: the plan computed now goes out
    rig.reconciler.send_plan(rig.switches, plan=plan)
    assert rig.messages() == []
    rig.reconciler.send_plan(rig.switches, plan=partial)
    assert rig.messages(), "with discovery over, a real change is sent during the hold"


def test_a_switch_taken_over_waits_while_another_still_reports_what_it_holds():
    """Discovery can only be done once every switch has said which links its entries
    use: the first to report must not get a plan computed before the others did."""
    plan = diamond_plan()
    rig = Harness(plan)
    rig.reconciler.discovering = lambda: None  # what the first switch expected is proven
    first, *others = sorted(plan)
    rig.switches[first].held = dict(plan[first])
    rig.switches[first].tables.take_over(plan[first], rig.clock.now + 3.5)
    partial = diamond_plan(policy="shortest")
    rig.reconciler.send_plan(rig.switches, plan=partial)
    assert rig.log == [] and rig.resends == [pytest.approx(0.06)]
    for dpid in others:  # their reports come in
        rig.switches[dpid].held = dict(plan[dpid])
        rig.switches[dpid].tables.take_over(plan[dpid], rig.clock.now + 3.5)
    rig.reconciler.send_plan(rig.switches, plan=plan)
    assert rig.messages() == [], "the whole plan is what they hold: nothing to send"


def test_an_entry_the_switch_removed_itself_is_sent_again():
    plan = diamond_plan()
    rig = Harness(plan)
    rig.start_empty()
    rig.reconciler.send_plan(rig.switches, plan=plan)
    dpid = min(plan)
    key = next(k for k, item in plan[dpid].items() if isinstance(item, FlowEntry))
    rig.switches[dpid].held.pop(key)
    rig.switches[dpid].tables.removed(key)  # its flow-removed message
    rig.log.clear()
    rig.reconciler.send_plan(rig.switches)
    assert rig.messages() == [(dpid, "add", plan[dpid][key])]


@pytest.mark.parametrize("spec", ["diamond", "ring,5", "leafspine,2,3,2"])
def test_every_barrier_leaves_the_network_delivering(spec):
    """For every cable: install the plan before the cut, cut it, and let the reconciler
    move to the plan after it in its waves.  At every barrier the switches hold a mix
    of both plans (and retired entries not yet deleted); all pairs must be delivered."""
    topo, _ = model_of(spec)
    for ends in cables(topo):
        topo_after, old, new, waves = staged_plans(spec, ends)
        rig = Harness(old)
        rig.start_empty()
        rig.reconciler.send_plan(rig.switches, plan=old)
        checked = []

        def check(topo_after=topo_after, ends=ends, checked=checked, rig=rig):
            check_all_pairs(topo_after, rig.held(), ends)
            checked.append(1)
        rig.on_barrier = check
        rig.reconciler.send_plan(rig.switches, waves=waves, plan=new)
        rig.clock.now += RETIRE_GRACE
        rig.reconciler.send_plan(rig.switches)
        assert rig.held() == new
        assert checked, "the cut changed nothing?"


class Spawner:
    def __init__(self):
        self.pending = []

    def __call__(self, fn):
        self.pending.append(fn)

    def run(self):
        while self.pending:
            self.pending.pop(0)()


def test_a_burst_of_requests_is_one_run():
    spawn, runs = Spawner(), []
    coalescer = Coalescer(spawn, runs.append)
    for _ in range(5):
        coalescer.request()
    coalescer.request(recompute=False)
    assert len(spawn.pending) == 1
    spawn.run()
    assert runs == [True]  # a recomputation sends everything; the resend is folded in
    assert not coalescer.running


def test_a_services_change_alone_does_not_recompute_paths():
    spawn, runs = Spawner(), []
    coalescer = Coalescer(spawn, runs.append)
    coalescer.request(SERVICES)
    coalescer.request(recompute=False)
    spawn.run()
    assert runs == [SERVICES], "the services' run sends the plan too"
    coalescer.request(SERVICES)
    coalescer.request()
    spawn.run()
    assert runs == [SERVICES, True], "a recomputation in the same burst covers it"


def test_a_request_during_a_run_gets_one_more_run():
    spawn, runs = Spawner(), []

    def work(recompute):
        runs.append(recompute)
        if len(runs) == 1:
            coalescer.request(recompute=False)
            coalescer.request(recompute=False)
    coalescer = Coalescer(spawn, work)
    coalescer.request()
    spawn.run()
    assert runs == [True, False]


def test_a_failing_run_does_not_stop_the_next(caplog):
    spawn, runs = Spawner(), []

    def work(recompute):
        runs.append(recompute)
        if len(runs) == 1:
            raise RuntimeError("boom")
    coalescer = Coalescer(spawn, work)
    coalescer.request()
    spawn.run()
    assert "reconciling flow tables failed" in caplog.text and not coalescer.running
    coalescer.request()
    spawn.run()
    assert runs == [True, True]


def test_the_barrier_check_catches_a_wrong_order():
    """The check above can fail: the same move with its waves reversed hands packets to
    a switch still sending them back."""
    ends = ((0x10102, 2), (0x10104, 2))
    topo_after, old, new, waves = staged_plans("diamond", ends)
    rig = Harness(old)
    rig.start_empty()
    rig.reconciler.send_plan(rig.switches, plan=old)
    rig.on_barrier = lambda: check_all_pairs(topo_after, rig.held(), ends)
    with pytest.raises(AssertionError):
        rig.reconciler.send_plan(rig.switches, waves=list(reversed(waves)), plan=new)


def test_touched_keys_limit_what_is_compared_until_a_switch_needs_a_full_look():
    """With the keys a Routing update touched, only those are compared: an entry changed
    behind the reconciler's back (not touched) is left alone, until something makes the
    image uncertain (here the switch reporting a removal), and then the whole table is."""
    a = FlowEntry(1, 100, (("eth_dst", "02:00:00:00:00:aa"),), (("output", 1),))
    b = FlowEntry(1, 100, (("eth_dst", "02:00:00:00:00:bb"),), (("output", 2),))
    h = Harness([1])
    h.start_empty()
    h.reconciler.send_plan(h.switches, plan={1: {a.key: a}})
    h.log.clear()
    plan = h.reconciler.plan
    plan[1][b.key] = b  # a Routing mutates the plan in force in place
    h.reconciler.send_plan(h.switches, plan=plan, touched={1: set()})
    assert h.messages() == []  # b was not touched: not compared, not sent
    h.reconciler.send_plan(h.switches, plan=plan, touched={1: {b.key}})
    assert [(op, item) for _, op, item in h.messages()] == [("add", b)]
    h.log.clear()
    del plan[1][b.key]
    h.switches[1].tables.removed(a.key)  # the switch dropped a by itself
    h.reconciler.send_plan(h.switches, plan=plan, touched={1: set()})
    ops = [(op, item) for _, op, item in h.messages()]
    assert ("add", a) in ops  # a full comparison put a back
    h.clock.now += RETIRE_GRACE
    h.log.clear()
    h.reconciler.send_plan(h.switches, plan=plan, touched={1: set()})
    assert [(op, item) for _, op, item in h.messages()] == [("delete", b)]  # retiring entries are
    # still looked at without being touched


def test_a_big_update_goes_out_in_windows_closed_by_barriers():
    """No more than send_window messages (and MIN_WINDOW_SHARE per switch) go out
    before the switches confirm them; each switch still gets its own in install order,
    and everything arrives."""
    plan = diamond_plan()
    rig = Harness(plan)
    rig.reconciler.send_window = 20
    rig.start_empty()
    rig.reconciler.send_plan(rig.switches, plan=plan)
    assert rig.held() == plan
    unconfirmed = 0
    for entry in rig.log:
        if entry[0] == "barrier":
            unconfirmed = 0
        else:
            unconfirmed += 1
            assert unconfirmed <= max(20, MIN_WINDOW_SHARE * len(plan))
    whole = Harness(plan)
    whole.start_empty()
    whole.reconciler.send_plan(whole.switches, plan=plan)
    barriers = [sum(1 for m in r.log if m[0] == "barrier") for r in (rig, whole)]
    assert barriers[0] > barriers[1], "more windows than the one a whole send takes"
    for dpid in plan:
        assert rig.messages(dpid) == whole.messages(dpid), "same messages, same order"


def test_requests_while_held_wait_for_the_release_and_make_one_run():
    spawn, runs = Spawner(), []
    coalescer = Coalescer(spawn, runs.append)
    coalescer.hold()
    coalescer.hold()  # holds nest: the replay's own and one taken before it
    assert not coalescer.busy
    coalescer.request()
    coalescer.request(recompute=False)
    assert not spawn.pending and coalescer.busy  # due, though held
    coalescer.release()
    assert not spawn.pending
    coalescer.release()
    assert len(spawn.pending) == 1 and coalescer.busy
    spawn.run()
    assert runs == [True] and not coalescer.busy
    coalescer.hold()
    coalescer.release()  # nothing asked for: nothing runs
    assert not spawn.pending and runs == [True]
