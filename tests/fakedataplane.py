"""A simulated OpenFlow dataplane for unit tests: flow tables and groups per switch, run
the way OVS would (highest-priority match per table, then the pipeline's own action
interpreter, core/pipeline.run_actions, for address rewrites, VLAN push/pop, goto, outputs,
SELECT and FAST_FAILOVER groups, hash splits; no output back out of the ingress port),
wired by the topology's links.  A SELECT group or a hash split sends the frame down
every bucket or slot, so every path a flow could hash onto is followed and checked; a
FAST_FAILOVER group takes its first
bucket whose watched port is not in ``failed``, as a switch does the moment a port
loses carrier.  Lets forwarding and protection be proven in milliseconds without a
switch."""

from __future__ import annotations

from dataclasses import dataclass, field

from sdn_app.core.pipeline import (
    TABLE_PUNT,
    FlowEntry,
    groups_of,
    is_label_mac,
    mac_bits,
    matches,
    run_actions,
)


@dataclass
class Delivery:
    hops: list = field(default_factory=list)  # [(dpid, in_port, out_port)] over all branches
    to_controller: list = field(default_factory=list)  # [(dpid, table)]
    delivered: list = field(default_factory=list)  # [(dpid, port)] per branch leaving the fabric
    paths: list = field(default_factory=list)  # one [(dpid, in_port, out_port)] per branch
    dropped: list = field(default_factory=list)  # [(dpid, port)] sent to a failed port
    frames: list = field(default_factory=list)  # (dpid, port, header fields) per delivery
    meters: list = field(default_factory=list)  # [(dpid, meter id)] passed, in order


class FakeDataplane:
    def __init__(self, topo, plan, failed=()):
        """``failed``: (dpid, port) pairs that lost carrier (give both ends of a link)."""
        self.topo = topo
        self.failed = set(failed)
        # (dpid, table, eth_dst or None) -> entries, highest priority first: an entry
        # that matches an eth_dst can only apply to frames for that address (or, for a
        # masked eth_dst such as a label entry's, for addresses under that mask).
        self.tables = {}
        self.masks = {}  # (dpid, table) -> the eth_dst masks its entries use
        for dpid, entries in plan.items():
            for flow in entries.values():
                if isinstance(flow, FlowEntry):
                    self.learn(dpid, flow)
        self.groups = {d: groups_of(e) for d, e in plan.items()}

    def _index(self, dpid, flow):
        eth_dst = dict(flow.match).get("eth_dst")
        if isinstance(eth_dst, tuple):
            self.masks.setdefault((dpid, flow.table), set()).add(eth_dst[1])
        return (dpid, flow.table, eth_dst)

    def lookup(self, dpid, table, fields):
        winners = []
        eth_dst = fields["eth_dst"]
        candidates = (self.tables.get((dpid, table, eth_dst), [])
                      + self.tables.get((dpid, table, None), []))
        for mask in self.masks.get((dpid, table), ()):
            value = "%012x" % (mac_bits(eth_dst) & mac_bits(mask))
            value = ":".join(value[i:i + 2] for i in range(0, 12, 2))
            candidates += self.tables.get((dpid, table, (value, mask)), [])
        for flow in sorted(candidates, key=lambda f: -f.priority):
            if winners and flow.priority < winners[0].priority:
                break
            if matches(flow, fields):
                winners.append(flow)
        assert len(winners) <= 1, "overlapping entries at one priority: %r" % winners
        return winners[0] if winners else None  # no table-miss entry: drop

    def learn(self, dpid, flow):
        """Add an entry a learn action made (or replace the one with its key)."""
        entries = self.tables.setdefault(self._index(dpid, flow), [])
        entries[:] = [f for f in entries if f.key != flow.key] + [flow]

    def inject(self, dpid, in_port, eth_src, eth_dst, eth_type=0x0800, max_hops=64,
               **headers):
        """Send a frame into a switch port and follow it everywhere it can go.
        ``headers``: further header fields (ipv4_src, tcp_dst, ...), rewritable."""
        result = Delivery()
        start = {"eth_src": eth_src, "eth_dst": eth_dst, "eth_type": eth_type, **headers}
        pending = [(dpid, in_port, [], 0, start)]
        while pending:
            dpid, in_port, path, vlan, header = pending.pop()
            if len(path) > max_hops:
                raise AssertionError("forwarding loop: %r" % path[-10:])
            # registers start at zero for every frame a switch receives
            fields = {**header, "in_port": in_port, "vlan_vid": vlan,
                      "reg2": 0, "reg3": 0, "reg4": 0}
            # (table, frame, the table it was punted from) still to look up
            outputs, tables = [], [(0, fields, None)]

            def live(port, dpid=dpid):
                return (dpid, port) not in self.failed

            def resubmit(table, frame, dpid=dpid):
                return self.lookup(dpid, table, frame)
            while tables:
                table, fields, punted_from = tables.pop()
                flow = self.lookup(dpid, table, fields)
                if flow is None:
                    continue
                try:
                    effects = run_actions(flow.actions, fields, self.groups.get(dpid, {}),
                                          live, resubmit=resubmit)
                except ValueError as exc:  # a plan the pipeline refuses to run
                    raise AssertionError(str(exc)) from None
                for learned in effects.learned:
                    self.learn(dpid, learned)
                result.meters += [(dpid, meter_id) for meter_id in effects.meters]
                if effects.to_controller:  # reported from where it left the pipeline
                    result.to_controller.append((dpid, flow.table if punted_from is None
                                                 else punted_from))
                outputs += [(port, sent) for port, sent, _share in effects.outputs]
                if effects.goto == TABLE_PUNT and punted_from is None:
                    punted_from = flow.table
                # A hash split goes on once per slot: every path a flow may take.
                tables += [(effects.goto, frame, punted_from)
                           for frame, _ in effects.continuations(fields)]
            for port, sent_fields in outputs:
                hop = (dpid, in_port, port)
                result.hops.append(hop)
                if port == sent_fields["in_port"]:
                    # OpenFlow: output to the ingress port is dropped (OFPP_IN_PORT, or an
                    # in_port cleared first, is the only way back out).
                    result.dropped.append((dpid, port))
                    continue
                if (dpid, port) in self.failed:
                    result.dropped.append((dpid, port))
                    continue
                links = [lk for lk in self.topo.links_at(dpid, port) if lk.src == dpid]
                header = {k: v for k, v in sent_fields.items() if k not in (
                    "in_port", "vlan_vid") and not k.startswith("reg")}
                if links:
                    pending.append((links[0].dst, links[0].dst_port, path + [hop],
                                    sent_fields["vlan_vid"], header))
                else:
                    assert sent_fields["vlan_vid"] == 0, "a tag leaked to a host"
                    assert not is_label_mac(header["eth_dst"]), "a label leaked to a host"
                    result.delivered.append((dpid, port))
                    result.paths.append(path + [hop])
                    result.frames.append((dpid, port, header))
        return result
