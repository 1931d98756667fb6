"""The paths a plan sends traffic along, read off the plan itself (``GET /v1/paths``):
what the switches will do, not what the policy meant them to do."""

from __future__ import annotations

from .pipeline import (
    TABLE_SPLIT,
    egress_entry,
    groups_of,
    ingress_entry,
    label_entry,
    label_of,
    run_actions,
    split_entry,
)
from .plan import Plan
from .topology import Host, Topology, TopologyError, dpid_to_str


def trace(plan: Plan, topo: Topology, src: Host, dst: Host) -> list[dict]:
    """Every path the plan sends src's traffic to dst along, with the share of flows it
    carries, most-used first: [{"share": 0.75, "hops": [{dpid, in_port, out_port}]}].
    FAST_FAILOVER groups take their first bucket whose watched port is live now."""
    done = []

    def forwarding(entries: dict, eth_dst: str):
        """The table-1 entry a frame for ``eth_dst`` meets (see pipeline.py)."""
        label = label_of(eth_dst)
        if label is None:
            return entries.get(ingress_entry(eth_dst, ()).key)
        return (entries.get(egress_entry(eth_dst, "", 0).key)
                or entries.get(label_entry(label, ()).key))

    def walk(dpid, in_port, eth_dst, hops, share):
        flow = forwarding(plan.get(dpid, {}), eth_dst)
        if flow is None or len(hops) > len(plan):
            return
        ports = topo.switch(dpid).ports

        def live(port_no):
            return port_no in ports and ports[port_no].live
        groups = groups_of(plan[dpid])
        start = {"in_port": in_port, "eth_dst": eth_dst}
        effects = run_actions(flow.actions, start, groups, live, share)
        outputs = list(effects.outputs)
        for fields, part in effects.continuations(start, share):
            if effects.goto != TABLE_SPLIT:
                continue
            slot = plan[dpid].get(split_entry(fields["reg1"], fields["reg0"], ()).key)
            if slot is not None:
                outputs += run_actions(slot.actions, fields, groups, live, part).outputs
        for out_port, sent, part in outputs:
            here = hops + [{"dpid": dpid_to_str(dpid), "in_port": in_port,
                            "out_port": out_port}]
            if (dpid, out_port) == (dst.dpid, dst.port):
                done.append({"share": round(part, 4), "hops": here})
                continue
            for link in topo.links_at(dpid, out_port):
                if link.src == dpid:
                    walk(link.dst, link.dst_port, sent["eth_dst"], here, part)

    walk(src.dpid, src.port, dst.mac, [], 1.0)
    if not done:
        raise TopologyError("no path from %s to %s" % (src.mac, dst.mac))
    return sorted(done, key=lambda p: -p["share"])


def path_report(plan: Plan, topo: Topology, src_key: str, dst_key: str) -> dict:
    """The paths in use between two hosts named by MAC or IPv4 (``GET /v1/paths``):
    ``hops`` is the most-used one, ``paths`` all of them with their shares."""
    src, dst = topo.find_host(src_key), topo.find_host(dst_key)
    paths = trace(plan, topo, src, dst)
    return {"src": src.mac, "dst": dst.mac, "hops": paths[0]["hops"], "paths": paths}
