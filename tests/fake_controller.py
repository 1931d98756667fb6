"""The controller state the view reads (core/view.ControllerState), without a controller:
what the REST and metrics tests serve."""

import collections

from sdn_app.core.events import EventLog
from sdn_app.core.plan import build_plan
from sdn_app.core.te import POLICIES, compute_next_hops
from sdn_app.core.telemetry import Telemetry


class FakeApp:
    """The controller state the view reads (core/view.ControllerState), without a
    controller."""

    def __init__(self, topo):
        self.topo = topo
        self.policy = "shortest"
        self.path_stretch = 0
        self.plan = build_plan(topo)
        self.last_reconcile = {}
        self.last_change = {}
        self.reconciling = False
        self.packet_ins = 7
        self.mods_sent = {"flow_mods": 3, "group_mods": 1}
        self.mods_sent_to = collections.Counter()
        self.telemetry = Telemetry()
        self.totals = {}  # dpid -> {port_no: {counter: value}}
        self.event_log = EventLog(clock=lambda: 0.0)
        for _ in range(5):
            self.event_log.record("port_down")

    def set_policy(self, policy):
        if policy not in POLICIES:
            raise ValueError("policy must be one of ...")
        self.policy = policy
        self.plan = build_plan(self.topo, next_hops=compute_next_hops(self.topo, policy))

    def port_rate(self, dpid, port_no, counter):
        return 0.0

    def port_totals(self, dpid):
        return self.totals.get(dpid, {})

    writable_error = None  # an exception check_writable raises, per test

    def check_writable(self):
        if self.writable_error is not None:
            raise self.writable_error

    def cluster_status(self):
        return {"role": "standalone", "node_id": None, "leader": None, "generation": None,
                "members": []}

    def demand(self):
        return {(0x10001, 0x10101): 2e6, (0x10002, 0x10101): 0.0, (0x10101, 0x10001): 5e6}

    services = None  # a ServiceTable, per test
    admission = None  # an Admission (core/admission.py) where a test turns it on
    connections = {}
    changes = []

    def rate_toward(self, ip):
        return 0.0

    def requests_of(self, name):
        return 12.5

    def now(self):
        return 10.0

    def services_changed(self, kind, **details):
        self.changes.append((kind, details))

    def switch_forgotten(self, dpid, why):
        self.changes.append(("switch_forgotten", {"dpid": dpid}))

    def port_reset(self, dpid, port_no):
        self.changes.append(("port_reset", {"dpid": dpid, "port_no": port_no}))
