"""Bringing switches to a plan: only what differs, make-before-break, within a switch and
across switches.

* Within a switch, groups a new entry points at exist before it, entries exist before
  what they supersede is deleted, and a group goes only once no entry points at it
  (pipeline.install_order).
* Across switches, a new plan goes out in waves (``update_waves``): each switch only
  after the switches it starts sending to have confirmed their change (a barrier), so
  no packet meets a neighbour still sending it back.
* Entries and groups the plan no longer needs are deleted ``retire_grace`` later, so
  packets still on them (an old detour, say) find them in place.
* After a controller restart, what a switch holds is taken over as it is and nothing is
  deleted until a hold time passes (the links and hosts must first be re-proven); nor
  is anything sent to it while discovery is still under way (``discovering``), since a
  plan from half the links would strip the failover groups off entries that are right
  (measured: 16 entries of a leaf-spine turned from groups to plain outputs and back
  within 5 ms of a restart).

The switches are reached through a small interface (``Switch``: its SwitchTables and a
``send``); waiting for barriers, timers and the clock are passed in.  The Ryu layer
gives real datapaths, eventlet and the monotonic clock; the unit tests give fakes.
"""

from __future__ import annotations

import collections
import logging
from typing import Protocol

import networkx as nx

from .pipeline import install_order
from .topology import Topology

LOG = logging.getLogger(__name__)

# Entries and groups a new plan no longer needs stay this long before they are deleted:
# packets already on their way under the old plan (on a detour, say) still find them.
# Measured: deleted at once, moving traffic off a fast-reroute detour lost 1-5 probes in
# 2 runs of 3; with the grace 1 in 2 of 10 (the rest was the order across switches,
# which update_waves fixes).
RETIRE_GRACE = 0.5
# Seconds before a switch being taken over is looked at again while another switch's
# report of its entries is still coming (the reply normally takes milliseconds).
READBACK_RECHECK = 0.05
# Messages in flight to all switches at once before waiting for their barriers, and the
# fewest a switch is given per window (Reconciler._send_windowed).
SEND_WINDOW = 2000
MIN_WINDOW_SHARE = 16


def diff(installed: dict, desired: dict) -> tuple[list, list]:
    """Entries to add or replace, and entries to delete, to turn installed into desired.
    Both are {key: FlowEntry | GroupEntry} for one switch."""
    to_add = [f for k, f in desired.items() if installed.get(k) != f]
    to_delete = [f for k, f in installed.items() if k not in desired]
    return to_add, to_delete


def update_waves(topo: Topology, old_hops: dict, new_hops: dict) -> list[list[int]]:
    """The order in which switches take a new plan: in waves, each switch after the
    next hops its changed entries start sending to.  A switch taking its new next hop
    first would hand packets to a neighbour still on the old plan, which may send them
    straight back (OpenFlow drops output to the in_port) or around a loop.  Where two
    destinations want opposite orders, those switches share a wave."""
    after = nx.DiGraph()
    after.add_nodes_from(topo.graph.nodes)
    for key, hops in new_hops.items():
        if old_hops.get(key) == hops:
            continue
        u = key[0]
        for port, _weight in hops:
            for _, v, k in topo.graph.out_edges(u, keys=True):
                if k == port and v != u:
                    after.add_edge(v, u)
    condensed = nx.condensation(after)
    members = condensed.graph["mapping"]
    waves = [sorted(n for n, c in members.items() if c in generation)
             for generation in nx.topological_generations(condensed)]
    return [wave for wave in waves if wave]


class SwitchTables:
    """What we know one switch holds of ours, and what may not be deleted yet."""

    def __init__(self):
        # {key: FlowEntry | GroupEntry}; None while the switch's own table is being read
        # back after it connected (nothing is sent to it until then).
        self.installed: dict | None = None
        self.hold_until: float | None = None  # no deletions before this (take-over)
        self.retiring: dict = {}  # key -> when the plan stopped needing it
        # The next sync compares the whole table, not only the keys a plan update
        # touched: after a take-over, a removal by the switch, an expired hold or a
        # failed send, the image may differ from the plan anywhere.
        self.compare_all = True

    def take_over(self, entries: dict, hold_until: float) -> None:
        """Adopt what the switch reported holding; if it held anything, delete nothing
        before ``hold_until``."""
        self.installed = dict(entries)
        self.compare_all = True
        if entries:
            self.hold_until = hold_until

    def start_empty(self) -> None:
        """The switch's entries were cleared (it never reported them): start afresh."""
        self.installed = {}
        self.hold_until = None
        self.compare_all = True

    def removed(self, key) -> None:
        """The switch removed an entry itself (idle timeout)."""
        if self.installed is not None:
            self.installed.pop(key, None)
            self.compare_all = True

    def hold_expired(self, now: float) -> bool:
        """True once, when the take-over hold has passed: time to remove what the new
        plan did not re-prove."""
        if self.hold_until is not None and now >= self.hold_until:
            self.hold_until = None
            self.compare_all = True
            return True
        return False


class Switch(Protocol):
    """What the reconciler needs of a switch."""

    tables: SwitchTables

    def send(self, item, delete: bool = False) -> None:
        """Send an add-or-replace (or a delete) of one FlowEntry or GroupEntry."""


class Reconciler:
    """Sends plans; see the module docstring.

    ``wait_applied(switches)`` returns once each switch has applied everything sent to it
    so far (a barrier reply), or after a timeout: a silent switch must not stall the
    rest.  ``resend_later(delay)`` arranges for ``send_plan`` to be called again after
    ``delay`` seconds (to delete what is then due).  ``clock()`` is monotonic seconds.
    ``discovering()`` is the seconds until the topology is known as far as discovery
    can tell (Topology.discovery_left), or None once it is: until then switches being
    taken over are left as they are.
    """

    def __init__(self, wait_applied, resend_later, clock, retire_grace: float = RETIRE_GRACE,
                 send_window: int = SEND_WINDOW, discovering=lambda: None):
        self.wait_applied = wait_applied
        self.resend_later = resend_later
        self.clock = clock
        self.discovering = discovering
        self.retire_grace = retire_grace
        self.send_window = send_window
        self.plan: dict = {}  # the plan in force: {dpid: {key: item}}
        self.sent = {"flow_mods": 0, "group_mods": 0}  # since start, every send_plan
        self.sent_to = collections.Counter()  # (dpid, "flow_mods" | "group_mods") -> ...

    def send_plan(self, switches: dict, waves: list | None = None, plan: dict | None = None,
                  between_waves=None, touched: dict | None = None) -> dict:
        """Bring every switch ({dpid: Switch}) to ``plan`` (default: the plan in force,
        which it then replaces), wave after wave; switches in no wave go last.
        ``between_waves()``, if given, runs after a wave that changed switches and before
        the next one that changes any (a pause for the switches' caches, when traffic
        moves).
        ``touched`` ({dpid: keys}, from routing.Routing.update) names the only keys that
        can differ from the plan sent before: those (and entries retiring) are compared,
        not whole tables; None compares everything.  Returns message counts: flow_mods,
        group_mods, waves (those that changed something)."""
        if plan is not None:
            self.plan = plan
        try:
            return self._send_plan(switches, waves, between_waves, touched)
        except BaseException:  # what was sent is unknown: compare everything next time
            for switch in switches.values():
                switch.tables.compare_all = True
            raise

    def _send_plan(self, switches, waves, between_waves, touched) -> dict:
        waves = list(waves or [])
        waves.append(sorted(set(switches) - {d for w in waves for d in w}))
        totals = {"flow_mods": 0, "group_mods": 0, "waves": 0}
        pause_due = False
        now, left = self.clock(), None
        held = [t.hold_until for t in (sw.tables for sw in switches.values())
                if t.hold_until is not None and now < t.hold_until]
        if held:
            left = self.discovering()
            if left is None and any(sw.tables.installed is None for sw in switches.values()):
                # A switch still reporting what it holds has not said which links its
                # entries use: until it has, discovery cannot know it is done (seen in
                # a cluster takeover: one switch's links proven while another's report
                # was still coming, and the first was sent a half-topology plan).
                left = READBACK_RECHECK
            if left is not None:  # look again once discovery is done, or the hold ends
                self.resend_later(min(left, min(held) - now) + 0.01)
        for wave in waves:
            queued = []  # (switch, its messages in install order)
            for dpid in wave:
                switch = switches.get(dpid)
                if switch is None or switch.tables.installed is None:
                    continue
                hold = switch.tables.hold_until
                if left is not None and hold is not None and now < hold:
                    continue  # being taken over while discovery goes on
                keys = None if touched is None else touched.get(dpid, ())
                messages = self.changes(switch, self.plan.get(dpid, {}), keys)
                if messages:
                    queued.append((dpid, switch, messages))
            if not queued:
                continue
            if pause_due and between_waves is not None:
                between_waves()
            self._send_windowed(queued, totals)
            totals["waves"] += 1
            pause_due = True
        now = self.clock()
        if any(now - since < self.retire_grace for switch in switches.values()
               for since in switch.tables.retiring.values()):
            self.resend_later(self.retire_grace)
        return totals

    def _send_windowed(self, queued: list, totals: dict) -> None:
        """Send [(dpid, switch, messages)], at most send_window messages in flight in all,
        shared among the switches still sending, each window closed by barriers: a
        switch answers keep-alives only after what it is still working through
        (measured: Open vSwitch dropped 76 of 80 fattree,8 switches, in one process,
        whose echo replies sat behind ~10,000 flow mods)."""
        done = [0] * len(queued)
        while True:
            pending = [i for i, (_, _, messages) in enumerate(queued)
                       if done[i] < len(messages)]
            if not pending:
                return
            share = max(MIN_WINDOW_SHARE, self.send_window // len(pending))
            for i in pending:
                dpid, switch, messages = queued[i]
                for item, delete in messages[done[i]:done[i] + share]:
                    self._send(dpid, switch, item, delete, totals)
                done[i] += share
            self.wait_applied([queued[i][1] for i in pending])

    def changes(self, switch: Switch, desired: dict, keys=None) -> list:
        """What to send one switch to bring it to ``desired``: [(item, delete)], in
        install order.  ``keys``: compare only these and the retiring entries (see
        send_plan)."""
        tables = switch.tables
        if keys is None or tables.compare_all:
            to_add, to_delete = diff(tables.installed, desired)
            tables.compare_all = False
        else:
            installed = tables.installed
            to_add = [desired[k] for k in keys if k in desired and installed.get(k) != desired[k]]
            to_delete = [installed[k] for k in set(keys) | set(tables.retiring)
                         if k in installed and k not in desired]
        now = self.clock()
        if tables.hold_until is not None and now < tables.hold_until:
            to_delete = []
        else:
            to_delete = self._retire(tables, to_delete, now)
        return ([(item, False) for item in sorted(to_add, key=install_order)]
                + [(item, True) for item in sorted(to_delete, key=install_order, reverse=True)])

    def _send(self, dpid: int, switch: Switch, item, delete: bool, totals: dict) -> None:
        switch.send(item, delete=delete)
        kind = "group_mods" if item.key[0] == "group" else "flow_mods"
        totals[kind] += 1
        self.sent[kind] += 1
        self.sent_to[dpid, kind] += 1
        if delete:
            switch.tables.installed.pop(item.key, None)  # a flow-removed may have beaten us
        else:
            switch.tables.installed[item.key] = item

    def _retire(self, tables: SwitchTables, unneeded: list, now: float) -> list:
        """Of what the plan no longer needs, what has been unneeded for retire_grace."""
        since = {item.key: tables.retiring.get(item.key, now) for item in unneeded}
        tables.retiring = since
        return [item for item in unneeded if now - since[item.key] >= self.retire_grace]


SERVICES = "services"  # Coalescer: only the services' entries changed


class Coalescer:
    """Turns a burst of requests into one run of ``work(recompute)``, right after them.
    One runner at a time: sending can yield (a switch's send queue fills up), and two
    runs interleaving on one switch's table image would corrupt it.  A request made
    while a run is under way gets one more run after it; ``recompute=False`` asks only
    for the plan in force to be sent again, ``recompute=SERVICES`` for the services'
    entries to be rebuilt and sent without recomputing paths (a pool change must not
    move traffic that the traffic engineering would leave where it is); the widest
    request of a burst wins.  ``spawn(fn)`` starts fn concurrently."""

    def __init__(self, spawn, work):
        self.spawn = spawn
        self.work = work
        self.recompute_wanted = False
        self.services_wanted = False
        self.resend_wanted = False
        self.running = False
        self.held = 0  # holds in force (hold): requests wait for their release

    def request(self, recompute=True) -> None:
        if recompute == SERVICES:
            self.services_wanted = True
        elif recompute:
            self.recompute_wanted = True
        else:
            self.resend_wanted = True
        self._start()

    def hold(self) -> None:
        """Keep requests from starting a run until release: a burst known to be under
        way (frames replayed at once, each learning a host) then costs one run, not one
        for its first request and another for the rest."""
        self.held += 1

    def release(self) -> None:
        self.held = max(0, self.held - 1)
        self._start()

    @property
    def busy(self) -> bool:
        """Whether a run is under way, or wanted (held included)."""
        return self.running or self.recompute_wanted or self.services_wanted \
            or self.resend_wanted

    def _start(self) -> None:
        wanted = self.recompute_wanted or self.services_wanted or self.resend_wanted
        if wanted and not self.running and not self.held:
            self.running = True
            self.spawn(self._run)

    def _run(self) -> None:
        try:
            while self.recompute_wanted or self.services_wanted or self.resend_wanted:
                recompute = True if self.recompute_wanted else (
                    SERVICES if self.services_wanted else False)
                self.recompute_wanted = self.services_wanted = self.resend_wanted = False
                try:
                    self.work(recompute)
                except Exception:  # one bad run must not stop the next
                    LOG.exception("reconciling flow tables failed")
        finally:
            self.running = False
