"""A simulated OpenFlow dataplane for unit tests: flow tables and groups per switch,
interpreted the way OVS would (highest-priority match per table, metadata, VLAN
push/pop, goto, outputs, SELECT and FAST_FAILOVER groups, no output back out of the
ingress port), wired by the topology's links.  A SELECT group sends the frame down
every bucket, so every path a flow could hash onto is followed and checked; a
FAST_FAILOVER group takes its first bucket whose watched port is not in ``failed``, as
a switch does the moment a port loses carrier.
Lets forwarding and protection be proven in milliseconds without a switch."""

from __future__ import annotations

from dataclasses import dataclass, field

from sdn_app.forwarding import SELECT, VLAN_PRESENT, FlowEntry, GroupEntry


@dataclass
class Delivery:
    hops: list = field(default_factory=list)  # [(dpid, in_port, out_port)] over all branches
    to_controller: list = field(default_factory=list)  # [(dpid, table)]
    delivered: list = field(default_factory=list)  # [(dpid, port)] per branch leaving the fabric
    paths: list = field(default_factory=list)  # one [(dpid, in_port, out_port)] per branch
    dropped: list = field(default_factory=list)  # [(dpid, port)] sent to a failed port


class FakeDataplane:
    def __init__(self, topo, plan, failed=()):
        """``failed``: (dpid, port) pairs that lost carrier (give both ends of a link)."""
        self.topo = topo
        self.failed = set(failed)
        # (dpid, table, eth_dst or None) -> entries, highest priority first: an entry
        # that matches an eth_dst can only apply to frames for that address.
        self.tables = {}
        for dpid, entries in plan.items():
            for flow in entries.values():
                if isinstance(flow, FlowEntry):
                    key = (dpid, flow.table, dict(flow.match).get("eth_dst"))
                    self.tables.setdefault(key, []).append(flow)
        self.groups = {d: {g.group_id: g for g in e.values() if isinstance(g, GroupEntry)}
                       for d, e in plan.items()}

    def lookup(self, dpid, table, fields):
        winners = []
        candidates = (self.tables.get((dpid, table, fields["eth_dst"]), [])
                      + self.tables.get((dpid, table, None), []))
        for flow in sorted(candidates, key=lambda f: -f.priority):
            if winners and flow.priority < winners[0].priority:
                break
            if all(fields.get(k) == v for k, v in flow.match):
                winners.append(flow)
        assert len(winners) <= 1, "overlapping entries at one priority: %r" % winners
        return winners[0] if winners else None  # no table-miss entry: drop

    def apply(self, dpid, actions, fields, result, table=None):
        """Run action steps; returns [(port, fields as sent)] and the next table."""
        outputs, goto = [], None
        for step in actions:
            if step[0] == "goto":
                goto = step[1]
            elif step[0] == "metadata":
                fields["metadata"] = step[1]
            elif step[0] == "push_vlan":
                assert fields["vlan_vid"] == 0, "a tagged frame is never tagged again"
                fields["vlan_vid"] = VLAN_PRESENT | step[1]
            elif step[0] == "pop_vlan":
                fields["vlan_vid"] = 0
            elif step[0] == "clear_in_port":
                fields["in_port"] = 0
            elif step[0] == "controller":
                result.to_controller.append((dpid, table))
            elif step[0] == "output":
                outputs.append((step[1], dict(fields)))
            elif step[0] == "group":
                group = self.groups[dpid][step[1]]
                if group.kind == SELECT:
                    assert all(b.weight > 0 for b in group.buckets), group
                    buckets = group.buckets
                else:
                    buckets = [b for b in group.buckets
                               if (dpid, b.watch_port) not in self.failed][:1]
                for bucket in buckets:
                    outputs += self.apply(dpid, bucket.actions, dict(fields), result)[0]
        return outputs, goto

    def inject(self, dpid, in_port, eth_src, eth_dst, eth_type=0x0800, max_hops=64):
        """Send a frame into a switch port and follow it everywhere it can go."""
        result = Delivery()
        pending = [(dpid, in_port, [], 0)]
        while pending:
            dpid, in_port, path, vlan = pending.pop()
            if len(path) > max_hops:
                raise AssertionError("forwarding loop: %r" % path[-10:])
            fields = {"in_port": in_port, "eth_src": eth_src, "eth_dst": eth_dst,
                      "eth_type": eth_type, "metadata": 0, "vlan_vid": vlan}
            outputs, table = [], 0
            while table is not None:
                flow = self.lookup(dpid, table, fields)
                if flow is None:
                    break
                sent, table = self.apply(dpid, flow.actions, fields, result, flow.table)
                outputs += sent
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
                if links:
                    pending.append((links[0].dst, links[0].dst_port, path + [hop],
                                    sent_fields["vlan_vid"]))
                else:
                    assert sent_fields["vlan_vid"] == 0, "a tag leaked to a host"
                    result.delivered.append((dpid, port))
                    result.paths.append(path + [hop])
        return result
