"""A simulated OpenFlow dataplane for unit tests: flow tables per switch, interpreted
the way OVS would (highest-priority match per table, goto, outputs), wired by the
topology's links.  Lets forwarding be proven in milliseconds without a switch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Delivery:
    hops: list  # [(dpid, in_port, out_port)]
    to_controller: list  # [(dpid, table)]
    delivered: list  # [(dpid, port)] where the frame left toward something not a switch


class FakeDataplane:
    def __init__(self, topo, plan):
        self.topo = topo
        self.tables = {dpid: list(entries.values()) for dpid, entries in plan.items()}

    def lookup(self, dpid, table, fields):
        candidates = [f for f in self.tables.get(dpid, []) if f.table == table
                      and all(fields.get(k) == v for k, v in f.match)]
        if not candidates:
            return None  # OpenFlow 1.3 without a table-miss entry: drop
        best = max(f.priority for f in candidates)
        winners = [f for f in candidates if f.priority == best]
        assert len(winners) == 1, "overlapping entries at one priority: %r" % winners
        return winners[0]

    def inject(self, dpid, in_port, eth_src, eth_dst, eth_type=0x0800, max_hops=64):
        """Send a frame into a switch port and follow it everywhere it goes."""
        result = Delivery([], [], [])
        pending = [(dpid, in_port)]
        while pending:
            dpid, in_port = pending.pop()
            if len(result.hops) > max_hops:
                raise AssertionError("forwarding loop: %r" % result.hops[-10:])
            fields = {"in_port": in_port, "eth_src": eth_src, "eth_dst": eth_dst,
                      "eth_type": eth_type}
            table = 0
            while table is not None:
                flow = self.lookup(dpid, table, fields)
                table = None
                if flow is None:
                    break
                for step in flow.actions:
                    if step[0] == "goto":
                        table = step[1]
                    elif step[0] == "controller":
                        result.to_controller.append((dpid, flow.table))
                    elif step[0] == "output":
                        result.hops.append((dpid, in_port, step[1]))
                        links = [lk for lk in self.topo.links_at(dpid, step[1]) if lk.src == dpid]
                        if links:
                            pending.append((links[0].dst, links[0].dst_port))
                        else:
                            result.delivered.append((dpid, step[1]))
        return result
