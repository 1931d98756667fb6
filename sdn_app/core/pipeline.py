"""The pipeline: the one place that says what our flow tables hold and what each action
means.  The plan builder (plan.py) writes entries in these terms, the OpenFlow codec
(ryuapp/codec.py) encodes and decodes them, and the path tracer (trace.py) and the
simulated dataplane of the unit tests run them through ``run_actions``; nobody else
re-derives what an entry is for from its shape.

Two tables, and more for what needs them (splitting by hash, services, admission):

* a frame bound for the controller first passes two OpenFlow meters, which the Ryu
  layer creates when a switch connects (and as ports come), each dropping what exceeds
  a rate: its ingress port's (``port_meter_id``: tables 0, 1 and the services' tables
  hand such frames to the *punt* table, 7, whose entry per port (``punt_entry``)
  meters them by port and goes on to table 8), then the switch's packet-in meter
  (``PACKET_IN_METER``, table 8, which sends them up).  So a flooding port gets its
  port's rate, and the other ports of its switch keep the rest of the switch's; and
  no switch takes more than its share of the controller.  Admission's frames (table
  6) pass only the switch's meter (the controller tells them by the table they come
  from).  The one exception is LLDP from ports already proven to lead to another
  switch (``link_port_entries``), so a flood on a switch cannot starve its links'
  proofs of life.
* table 0 (ingress): LLDP and ARP go to the controller; a known host's frames
  (in_port + eth_src: its *learning entry*) and frames from inter-switch ports go on to
  table 1; frames on a tagged fast-reroute detour follow the detour; anything else
  misses to the controller, which is how new and moved hosts are noticed.
* table 1 (forwarding), label-switched as a fabric is: a frame for a host enters at a
  switch with hosts, whose *ingress entry* for that host (one per known host, exact
  ``eth_dst``) rewrites the destination MAC into the host's *label address*
  (``label_mac``: the label of the host's switch and the host's index there) and sends
  it toward that switch, ``-> output`` or ``-> group`` where the policy splits traffic
  over several next hops.  Every other switch forwards on the label alone: one *label
  entry* per destination switch (``eth_dst`` masked to the label), so a transit
  switch holds entries per switch, not per host.  The host's own switch holds an
  *egress entry* per local host that restores the real MAC and delivers.  Ingress
  entries' counters are the demand matrix: the traffic entering the network here for
  each host.  Misses go to the controller.  Label addresses are locally administered
  MACs under ``LABEL_PREFIX`` (0e:5d): hosts never see one, and a host that sends
  from one is not learned.

* tables 3-5 (services, core/services.py), on switches with hosts: table 1 sends a
  frame for a service's VIP and port through the *connections* table (3: per-connection
  entries the switch learned, each loading its backend's id into reg3), then the
  *service* table (4): a connection with no backend yet hashes into one of the
  service's slots (reg4) and the *slots* table (5) gives it a backend, learns its
  connection entry and comes back; one with a backend is rewritten to it and looked up
  in table 1 again.  A backend's replies are rewritten back to the VIP in table 1, and
  frames for a VIP that are not for a service (health-check answers) go to the
  controller.  These tables are entered by OVS's ``resubmit``, which returns.

* table 2 (split), only where a switch splits a destination's traffic over several
  next hops with a hash of each flow's 5-tuple instead of a SELECT group (OpenFlow 1.3
  Open vSwitch, whose SELECT groups ignore UDP ports): the table-1 entry writes the
  split's id into reg1 and a hash slot into reg0, and one entry per (reg1, reg0)
  sends the flow on; slots are given to next hops by weight.  Like groups, a split is
  shared by every destination that splits the same way (plan.py).

* table 6 (admission), only with admission control on (option admission_udp_ports):
  a known host's frames pass it between tables 0 and 1.  A stream of an admitted class
  (UDP to one of those ports) is admitted or refused one by one at its first frame,
  by the controller (core/admission.py), which then adds the stream's own entry here:
  on to forwarding, or drop.  Those entries carry their own cookie (not the plan's),
  as the connections the switches learn do: reconciling leaves them alone.  (Table 6
  hands frames back to table 1 with OVS's resubmit: a goto only goes forward.)

Actions are tuples, the name first:

=================  ===================================================================
("output", port)   send out of a switch port (never back out of the ingress port)
("controller",)    send to the controller (packet-in, whole frame)
("group", id)      run a group: SELECT splits flows by bucket weight, FAST_FAILOVER
                   takes its first bucket whose watched port is live
("push_vlan", vid) tag the frame with VLAN ``vid`` (a detour; never on a tagged frame)
("pop_vlan",)      remove the tag (end of a detour)
("clear_in_port",) forget the ingress port, so a backup may leave by it
("goto", table)    continue in a later table (instruction; flow entries only)
("meter", id)      pass meter ``id`` first: what exceeds its rate is dropped (an
                   instruction in OpenFlow 1.3, an action in 1.5; flow entries only;
                   the simulation, which has no rates, lets every frame pass)
("set_reg", n, v)  write v into register n
("hash_split", n)  hash the flow's addresses and ports (symmetric, UDP included) into
                   reg0 = one of n equally likely slots (OVS's multipath action)
("hash_slots", n, f)  the same into reg4 for one connection (a service's slot): f is
                   "l3l4" (addresses and ports) or "src" (the IPv4 source alone); the
                   simulation picks the slot from a hash of those fields, as a switch
("set_field", f, v)  rewrite header field f (eth_src, ipv4_dst, tcp_dst, ...) to v
("resubmit", t)    look the frame up in table t now, run that entry, then go on
("learn_connection", table, ip_proto, backend_id, idle_timeout, cookie)
                   add an entry to ``table`` matching this frame's addresses and ports
                   that loads ``backend_id`` into reg3 (OVS's learn action); a TCP one
                   also ends CONNECTION_FIN_TIMEOUT s after a FIN or RST
=================  ===================================================================

Adding an action is one line in ``ACTIONS`` and its case in ``run_actions``, plus its
encoder in the codec.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

TABLE_INGRESS = 0
TABLE_FORWARD = 1
TABLE_SPLIT = 2
TABLE_CONNECTIONS = 3
TABLE_SERVICE = 4
TABLE_SLOTS = 5
TABLE_ADMISSION = 6
TABLE_PUNT = 7  # to the controller: metered by ingress port (punt_entry), then on to 8
TABLE_TO_CONTROLLER = 8  # metered per switch (PACKET_IN_METER), then to the controller
CONNECTION_FIN_TIMEOUT = 1  # s; the least OVS allows: a closed connection still counts this long
MAX_SPLIT_SLOTS = 16  # hash slots per split: weights are rounded to sixteenths at most

ETH_TYPE_ARP = 0x0806
ETH_TYPE_IPV4 = 0x0800
L4_NAMES = {6: "tcp", 17: "udp"}  # ip_proto -> the OXM prefix of its port fields
# The header fields a set_field step may rewrite (a service's addresses and ports).
REWRITABLE_FIELDS = frozenset({"eth_src", "eth_dst", "ipv4_src", "ipv4_dst", "tcp_src",
                               "tcp_dst", "udp_src", "udp_dst"})
ETH_TYPE_LLDP = 0x88CC

PRIORITY_MISS = 0
PRIORITY_STREAM_CLASS = 50  # table 6: a new stream of an admitted class, to the controller
PRIORITY_FORWARD = 100
PRIORITY_INGRESS = 110  # table 1: ingress entries (a host's MAC, where frames enter)
PRIORITY_SERVICE_REPLY = 115  # table 1: a backend's replies, rewritten to the VIP
PRIORITY_VIP = 118  # table 1: anything else for a VIP (health-check answers)
PRIORITY_SERVICE = 120  # table 1: frames for a service's VIP and port
PRIORITY_DETOUR = 500  # table 0: frames on a tagged detour (protection.py)
PRIORITY_CONTROL = 1000  # LLDP and ARP: above every forwarding entry
PRIORITY_LINK_LLDP = 1001  # LLDP from a proven inter-switch port: not metered

# Label addresses: 0e:5d:LL:LL:II:II, L the destination switch's label, I the host's
# index there (16 bits each; plan.switch_labels and plan.host_indexes give them).
LABEL_PREFIX = "0e:5d"
VIP_MAC_PREFIX = "02:5d"  # a service's VIP answers ARP as 02:5d + its four octets
LABEL_MASK = "ff:ff:ff:ff:00:00"
LABEL_SPAN = 1 << 16  # labels, and host indexes per switch
VLAN_PRESENT = 0x1000  # OFPVID_PRESENT: the OXM value of a frame that carries a VLAN tag

# Action name -> where it goes in an OpenFlow flow entry: "apply" (an apply-actions
# instruction, in order; the only kind a group bucket may hold) or "instruction".
ACTIONS = {
    "output": "apply",
    "controller": "apply",
    "group": "apply",
    "push_vlan": "apply",
    "pop_vlan": "apply",
    "clear_in_port": "apply",
    "set_reg": "apply",
    "hash_split": "apply",
    "hash_slots": "apply",
    "set_field": "apply",
    "resubmit": "apply",
    "learn_connection": "apply",
    "goto": "instruction",
    "meter": "instruction",
}
# The order flow entries list instructions in (apply-actions first, then goto), so an
# entry read back from a switch compares equal to the planned one.
INSTRUCTION_ORDER = {"meter": -1, "goto": 1}

PACKET_IN_METER = 1  # the meter every packet-in passes (MeterEntry)
PORT_METER_BASE = 1 << 16  # port p's packet-in meter is PORT_METER_BASE + p
OFPM_MAX = 0xFFFF_0000  # the last meter id OpenFlow leaves to a controller
# Straight to the controller past the switch's meter: only where the packet-in must
# still show the table it left (admission's) and at the end of the punt path.
TO_CONTROLLER = (("meter", PACKET_IN_METER), ("controller",))
PUNT = (("goto", TABLE_PUNT),)  # to the controller past the ingress port's meter, then it

SELECT, FAST_FAILOVER = "select", "ff"


@dataclass(frozen=True)
class FlowEntry:
    """One flow entry, in OpenFlow-version-neutral terms.

    ``match`` is a sorted tuple of (OXM field name, value) pairs; ``actions`` a tuple of
    action steps (see ACTIONS), apply-actions first, in INSTRUCTION_ORDER.
    """

    table: int
    priority: int
    match: tuple
    actions: tuple
    idle_timeout: int = 0
    notify_removal: bool = False
    hard_timeout: int = 0

    @property
    def key(self) -> tuple:
        """What identifies an entry in a switch's table (OpenFlow strict matching)."""
        return (self.table, self.priority, self.match)


@dataclass(frozen=True)
class Bucket:
    """A group bucket: apply-actions (see ACTIONS), a weight (SELECT) or the port whose
    liveness it watches (FAST_FAILOVER)."""

    actions: tuple
    weight: int = 1
    watch_port: int | None = None


@dataclass(frozen=True)
class GroupEntry:
    group_id: int
    kind: str  # SELECT or FAST_FAILOVER
    buckets: tuple  # of Bucket

    @property
    def key(self) -> tuple:
        return ("group", self.group_id)


@dataclass(frozen=True)
class MeterEntry:
    """An OpenFlow meter that drops packets over ``rate`` per second (bursts of up to
    ``burst`` packets pass).  Not part of a plan: the packet-in meter depends on no
    topology, so the Ryu layer sets it when a switch connects, before any entry that
    uses it."""

    meter_id: int
    rate: int
    burst: int

    @property
    def key(self) -> tuple:
        return ("meter", self.meter_id)


def describe_item(item) -> str:
    """One entry or group as a line for a log or an event."""
    if isinstance(item, GroupEntry):
        return "group %d (%s, buckets %s)" % (item.group_id, item.kind,
                                               [b.actions for b in item.buckets])
    return "entry table=%d priority=%d match=%s actions=%s" % (
        item.table, item.priority, dict(item.match), item.actions)


def entry(table: int, priority: int, actions: tuple, idle_timeout: int = 0,
          notify_removal: bool = False, hard_timeout: int = 0, **match) -> FlowEntry:
    return FlowEntry(table, priority, tuple(sorted(match.items())), actions,
                     idle_timeout, notify_removal, hard_timeout)


# -- the entries, by what they are for --------------------------------------------------

def control_entries(admission_ports=()) -> list[FlowEntry]:
    """What every switch holds whatever the topology: LLDP and ARP to the controller,
    and both tables' misses, by the punt path (a port with no entry of its own in the
    punt table passes the switch's meter alone); with admission control
    (``admission_ports``: UDP destination ports), the admission table
    (admission_entries)."""
    return [entry(TABLE_INGRESS, PRIORITY_CONTROL, PUNT, eth_type=ETH_TYPE_LLDP),
            entry(TABLE_INGRESS, PRIORITY_CONTROL, PUNT, eth_type=ETH_TYPE_ARP),
            entry(TABLE_INGRESS, PRIORITY_MISS, PUNT),
            entry(TABLE_FORWARD, PRIORITY_MISS, PUNT),
            entry(TABLE_PUNT, PRIORITY_MISS, (("goto", TABLE_TO_CONTROLLER),)),
            entry(TABLE_TO_CONTROLLER, PRIORITY_MISS, TO_CONTROLLER),
            *admission_entries(admission_ports)]


def punt_entries(ports) -> list[FlowEntry]:
    """The punt table's entries of a switch with ``ports`` (port numbers)."""
    return [item for item in map(punt_entry, sorted(ports)) if item is not None]


def port_meter_id(port: int) -> int | None:
    """The id of the meter frames from ``port`` pass on their way to the controller
    (None for port numbers too large to map into meter ids: those pass the switch's
    meter alone)."""
    meter_id = PORT_METER_BASE + port
    return meter_id if meter_id <= OFPM_MAX else None


def port_of_meter(meter_id: int) -> int | None:
    """The port whose packet-in meter ``meter_id`` is (None: not a port's)."""
    return meter_id - PORT_METER_BASE if meter_id > PORT_METER_BASE else None


def punt_entry(port: int) -> FlowEntry | None:
    """The punt table's entry for frames from ``port``: its port's meter, then the
    switch's (one per port a switch has, link or not)."""
    meter_id = port_meter_id(port)
    if meter_id is None:
        return None
    return entry(TABLE_PUNT, PRIORITY_FORWARD,
                 (("meter", meter_id), ("goto", TABLE_TO_CONTROLLER)), in_port=port)


# OpenFlow's goto only goes to a later table, so admission (6) hands frames back to
# forwarding (1) with OVS's resubmit, as the service tables do.
ONWARD_FROM_ADMISSION = (("resubmit", TABLE_FORWARD),)


def admission_entries(admission_ports) -> list[FlowEntry]:
    """Table 6 (admission), which a known host's frames pass before forwarding when
    admission control is on: a UDP frame for one of ``admission_ports`` whose stream
    has no entry of its own yet goes to the controller, which admits the stream (an
    entry on to forwarding) or refuses it (an entry that drops it) at the switch it
    entered by (core/admission.py); everything else goes on to forwarding."""
    if not admission_ports:
        return []
    return [entry(TABLE_ADMISSION, PRIORITY_MISS, ONWARD_FROM_ADMISSION),
            *(entry(TABLE_ADMISSION, PRIORITY_STREAM_CLASS, TO_CONTROLLER,
                    eth_type=ETH_TYPE_IPV4, ip_proto=17, udp_dst=port)
              for port in sorted(admission_ports))]


def stream_entry(fields: dict, admitted: bool, timeout: int) -> FlowEntry:
    """The admission table's entry for one stream (its addresses and UDP ports, from
    the header ``fields`` of its first frame): on to forwarding while it keeps sending
    (``timeout`` s idle), or dropped for ``timeout`` s (a hard timeout: then it is
    looked at again)."""
    match = dict(eth_type=ETH_TYPE_IPV4, ip_proto=17, ipv4_src=fields["ipv4_src"],
                 ipv4_dst=fields["ipv4_dst"], udp_src=fields["udp_src"],
                 udp_dst=fields["udp_dst"])
    if admitted:
        return entry(TABLE_ADMISSION, PRIORITY_FORWARD, ONWARD_FROM_ADMISSION,
                     idle_timeout=timeout, **match)
    return entry(TABLE_ADMISSION, PRIORITY_FORWARD, (), hard_timeout=timeout, **match)


def link_port_entries(port: int) -> list[FlowEntry]:
    """Frames arriving from another switch go straight to forwarding, and its LLDP to
    the controller past the packet-in meter."""
    return [entry(TABLE_INGRESS, PRIORITY_FORWARD, (("goto", TABLE_FORWARD),), in_port=port),
            entry(TABLE_INGRESS, PRIORITY_LINK_LLDP, (("controller",),), in_port=port,
                  eth_type=ETH_TYPE_LLDP)]


def detour_entry(label: int, tag: int, port: int | None) -> FlowEntry:
    """A frame on detour ``tag`` toward the switch with ``label`` goes out of ``port``;
    at the detour's end (None) it is untagged and forwarded normally."""
    actions = ((("pop_vlan",), ("goto", TABLE_FORWARD)) if port is None
               else (("output", port),))
    return entry(TABLE_INGRESS, PRIORITY_DETOUR, actions, vlan_vid=VLAN_PRESENT | tag,
                 eth_dst=(label_mac(label, 0), LABEL_MASK))


def learning_entry(mac: str, port: int, idle_timeout: int, admission: bool = False) -> FlowEntry:
    """A known host's frames are marked as local and forwarded (through the admission
    table first, with ``admission``).  Its expiry (notified when ``idle_timeout`` is
    set) is what tells the controller a host went silent, and after a controller
    restart these entries tell where the hosts are."""
    onward = TABLE_ADMISSION if admission else TABLE_FORWARD
    return entry(TABLE_INGRESS, PRIORITY_FORWARD, (("goto", onward),),
                 idle_timeout=idle_timeout, notify_removal=idle_timeout > 0,
                 in_port=port, eth_src=mac)


def label_mac(label: int, index: int) -> str:
    """The label address of the host with ``index`` on the switch with ``label``."""
    return "%s:%02x:%02x:%02x:%02x" % (LABEL_PREFIX, label >> 8, label & 0xFF,
                                       index >> 8, index & 0xFF)


def is_label_mac(mac: str) -> bool:
    return mac[:5] == LABEL_PREFIX


def is_fabric_mac(mac: str) -> bool:
    """A label address or a service's VIP address: the controller's own, never a host's.
    A frame from a VIP address is a backend's reply rewritten at its switch and on its
    way through the fabric; learned as a host, it made an inter-switch port an edge one
    (seen on a new leader that had not yet proven that port's link)."""
    return mac[:5] in (LABEL_PREFIX, VIP_MAC_PREFIX)


def label_of(mac: str) -> int | None:
    """The switch label in a label address (or the masked value of a label entry)."""
    if not is_label_mac(mac):
        return None
    return int(mac[6:8] + mac[9:11], 16)


def ingress_entry(mac: str, actions: tuple) -> FlowEntry:
    """Where a frame for host ``mac`` enters the network: ``actions`` rewrite it to the
    host's label address and send it on (or deliver it, at the host's own switch).  Its
    counters are the traffic entering here for ``mac``.  Made directly (one field
    needs no sorting): every switch with hosts holds one per host."""
    return FlowEntry(TABLE_FORWARD, PRIORITY_INGRESS, (("eth_dst", mac),), actions)


def label_entry(label: int, actions: tuple) -> FlowEntry:
    """Frames for any host of the switch with ``label`` go on by ``actions``."""
    return FlowEntry(TABLE_FORWARD, PRIORITY_FORWARD,
                     (("eth_dst", (label_mac(label, 0), LABEL_MASK)),), actions)


def egress_entry(label_address: str, mac: str, port: int) -> FlowEntry:
    """At a host's switch: its label address back to its MAC, out of its port."""
    return FlowEntry(TABLE_FORWARD, PRIORITY_FORWARD, (("eth_dst", label_address),),
                     (("set_field", "eth_dst", mac), ("output", port)))


def split_entry(group_id: int, slot: int, actions: tuple) -> FlowEntry:
    """Table 2: flows of the split ``group_id`` that hashed into ``slot``."""
    return FlowEntry(TABLE_SPLIT, PRIORITY_FORWARD, (("reg0", slot), ("reg1", group_id)),
                     actions)


def split_actions(group_id: int, slots: int) -> tuple:
    """Table 1's actions for a destination split by hashing (see split_entry)."""
    return (("set_reg", 1, group_id), ("hash_split", slots), ("goto", TABLE_SPLIT))


def split_miss_entry() -> FlowEntry:
    return entry(TABLE_SPLIT, PRIORITY_MISS, PUNT)


TCP_SYN, TCP_ACK = 0x002, 0x010
# A match value that is a (value, mask) pair matches where the masked field equals value.
SYN_ONLY = (TCP_SYN, TCP_SYN | TCP_ACK)  # tcp_flags: a connection's first segment


def matches(flow: FlowEntry, fields: dict) -> bool:
    """Whether a frame with header ``fields`` matches ``flow`` (masked values too)."""
    for name, value in flow.match:
        if isinstance(value, tuple):
            have = fields.get(name, 0)
            if isinstance(have, str):  # a MAC under a mask
                if mac_bits(have) & mac_bits(value[1]) != mac_bits(value[0]):
                    return False
            elif have & value[1] != value[0]:
                return False
        elif fields.get(name) != value:
            return False
    return True


def mac_bits(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def learned_host(flow: FlowEntry) -> tuple[str, int] | None:
    """(MAC, port) if ``flow`` is a learning entry, else None."""
    fields = dict(flow.match)
    if flow.table == TABLE_INGRESS and "eth_src" in fields and "in_port" in fields:
        return fields["eth_src"], fields["in_port"]
    return None


def link_port_of(flow: FlowEntry) -> int | None:
    """The port if ``flow`` is the entry of a port we knew as an inter-switch port
    (link_port_entries), else None: after a restart, the links to re-prove."""
    if flow.table == TABLE_INGRESS and flow.priority == PRIORITY_FORWARD and \
            len(flow.match) == 1 and flow.match[0][0] == "in_port":
        return flow.match[0][1]
    return None


def counted_destination(table: int, priority: int, match: dict) -> str | None:
    """The destination MAC if an entry (table, priority, match fields) is an ingress
    entry, whose counters are demand."""
    if table == TABLE_FORWARD and priority == PRIORITY_INGRESS and len(match) == 1:
        mac = match.get("eth_dst")
        if isinstance(mac, str):
            return mac
    return None


def install_order(item) -> int:
    """Failover groups first, then the SELECT groups whose buckets point at them, then
    flow entries that point at either; deletions run in the reverse order."""
    if isinstance(item, GroupEntry):
        return 0 if item.kind == FAST_FAILOVER else 1
    return 2


# -- what actions do ----------------------------------------------------------------------

@dataclass
class Effects:
    """What running action steps did to one frame."""

    outputs: list = field(default_factory=list)  # [(port, fields as sent, share of flows)]
    to_controller: bool = False
    goto: int | None = None
    # After a hash_split: [(fields, share of flows)], one per slot, each going on to
    # ``goto``; otherwise the frame itself goes on.
    forks: list | None = None
    learned: list = field(default_factory=list)  # FlowEntry per learn_connection run
    meters: list = field(default_factory=list)  # the meter ids passed, in order

    def continuations(self, fields: dict, share: float = 1.0) -> list:
        """[(fields, share)] of the frames that go on to table ``goto``."""
        if self.goto is None:
            return []
        return self.forks if self.forks is not None else [(fields, share)]


def slot_of(fields: dict, slots: int, over: str) -> int:
    """The simulated switch's hash_slots: a stable hash of the fields named by ``over``."""
    names = (("ipv4_src",) if over == "src" else
             ("ipv4_src", "ipv4_dst", "ip_proto", "tcp_src", "tcp_dst", "udp_src", "udp_dst"))
    text = "|".join(str(fields.get(name)) for name in names)
    return zlib.crc32(text.encode()) % slots


def connection_entry(table: int, ip_proto: int, backend_id: int, idle_timeout: int,
                     fields: dict) -> FlowEntry:
    """The entry a learn_connection step adds for the frame with header ``fields``."""
    l4 = L4_NAMES[ip_proto]
    return entry(table, PRIORITY_FORWARD, (("set_reg", 3, backend_id),),
                 idle_timeout=idle_timeout, eth_type=ETH_TYPE_IPV4, ip_proto=ip_proto,
                 ipv4_src=fields["ipv4_src"], ipv4_dst=fields["ipv4_dst"],
                 **{l4 + "_src": fields[l4 + "_src"], l4 + "_dst": fields[l4 + "_dst"]})


def run_actions(steps, fields: dict, groups: dict, live, share: float = 1.0,
                effects: Effects | None = None, resubmit=None) -> Effects:
    """Apply action steps to a frame's header ``fields`` ({in_port, vlan_vid,
    ...}; changed in place as the switch would).  ``groups``: {group id: GroupEntry} of
    the switch; ``live(port)``: whether a watched port is up.  A SELECT group sends the
    frame down every bucket, each with its share of the flows (a switch hashes each flow
    onto one), so callers see every path traffic can take.  ``resubmit(table, fields)``
    returns the entry the frame matches in a table (None on a miss), for "resubmit";
    a hash split before a resubmit follows one slot, ``fields["reg0"]`` if set."""
    effects = effects if effects is not None else Effects()
    for step in steps:
        name = step[0]
        if name == "output":
            effects.outputs.append((step[1], dict(fields), share))
        elif name == "controller":
            effects.to_controller = True
        elif name == "group":
            group = groups[step[1]]
            if group.kind == SELECT:
                total = sum(b.weight for b in group.buckets)
                if any(b.weight <= 0 for b in group.buckets):
                    raise ValueError("SELECT group %d has a bucket of weight 0" % step[1])
                for bucket in group.buckets:
                    run_actions(bucket.actions, dict(fields), groups, live,
                                share * bucket.weight / total, effects)
            else:
                up = [b for b in group.buckets if live(b.watch_port)][:1]
                for bucket in up:
                    run_actions(bucket.actions, dict(fields), groups, live, share, effects)
        elif name == "push_vlan":
            if fields.get("vlan_vid", 0):
                raise ValueError("a tagged frame is never tagged again: %r" % (step,))
            fields["vlan_vid"] = VLAN_PRESENT | step[1]
        elif name == "pop_vlan":
            fields["vlan_vid"] = 0
        elif name == "clear_in_port":
            fields["in_port"] = 0
        elif name == "goto":
            effects.goto = step[1]
        elif name == "meter":
            effects.meters.append(step[1])  # no rates here: every frame passes
        elif name == "set_reg":
            fields["reg%d" % step[1]] = step[2]
        elif name == "hash_slots":
            fields["reg4"] = slot_of(fields, step[1], step[2])
        elif name == "hash_split":
            slots = step[1]
            effects.forks = [(dict(fields, reg0=slot), share / slots) for slot in range(slots)]
        elif name == "set_field":
            fields[step[1]] = step[2]
        elif name == "learn_connection":
            _, table, ip_proto, backend_id, idle_timeout, _cookie = step
            effects.learned.append(connection_entry(table, ip_proto, backend_id,
                                                    idle_timeout, fields))
        elif name == "resubmit":
            if resubmit is None:
                raise ValueError("resubmit needs the switch's tables: %r" % (step,))
            _resubmit(step[1], fields, share, groups, live, resubmit, effects)
        else:
            raise ValueError("unknown action %r" % (step,))
    return effects


def _resubmit(table: int, fields: dict, share: float, groups, live, resubmit,
              effects: Effects) -> None:
    """Run the entry ``fields`` match in ``table`` (and the tables it goes on to with
    goto, inside the resubmit), adding what it does to ``effects``."""
    flow = resubmit(table, fields)
    if flow is None:
        return
    inner = run_actions(flow.actions, fields, groups, live, share, resubmit=resubmit)
    effects.outputs += inner.outputs
    effects.to_controller |= inner.to_controller
    effects.learned += inner.learned
    for frame, part in inner.continuations(fields, share):
        _resubmit(inner.goto, frame, part, groups, live, resubmit, effects)


def groups_of(entries: dict) -> dict:
    """{group id: GroupEntry} from one switch's {key: FlowEntry | GroupEntry}."""
    return {item.group_id: item for item in entries.values() if isinstance(item, GroupEntry)}
