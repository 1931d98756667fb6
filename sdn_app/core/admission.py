"""Admission control for latency-critical streams: overload degrades by design.

Past what the network can carry on time, every stream misses frames unless some are
told no.  With admission on (option ``admission_udp_ports``), each new UDP stream to
one of those ports reaches the controller with its first frame (the admission table,
pipeline.py) and is admitted only if every link it may cross stays within
``admission_utilization`` with it.  The links it may cross are those the next hops in
force lead to from the switch it entered by, toward its destination's switch (all of
a split's branches: a switch hashes the stream onto one of them).  A link's load is its
measured rate, plus the streams admitted in the last RESERVE_S seconds, which the
smoothed measurement does not show yet, each at ``admission_stream_mbps``, plus the new
one.  A refused stream is dropped at the switch it entered by for
``admission_refusal_s``, then looked at again (a crowd that left makes room).

Admitted streams are not preempted: when a cut leaves too little room, fast reroute
and the rebalancer deal with it, and new streams are refused until there is room.

Pure: the Ryu layer (ryuapp/admission.py) reads the frame, passes the topology, the
next hops and the time in, and installs the verdict's entry.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

# Seconds a new stream's assumed rate is added to the links it may cross: the port rates
# are polled every stats_interval (1 s) and smoothed with stats_time_constant (1 s), so
# after 3 s they show about 95% of a stream that started sending.
RESERVE_S = 3.0
# Frames of one stream that reach the controller before its entry is in place get the
# verdict of the first, without reserving again.
REPEAT_S = 1.0
RECENT = 1024  # refusals kept for GET /v1/admission
ADMITTED_IDLE_S = 10  # an admitted stream's entry outlives this long a pause in it


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    busiest: float  # the highest utilisation on the stream's links, counting it
    link: tuple | None  # (dpid, port) of that link
    reason: str


def parse_ports(text: str) -> tuple:
    """UDP ports from the option's text: '9100' or '9100,9200-9203' (ranges inclusive,
    at most 64 ports, each one entry in every switch's admission table)."""
    ports: set = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        low, sep, high = item.partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise ValueError("admission_udp_ports: %r is not a port or a range a-b"
                             % item) from None
        if not 1 <= first <= last <= 65535:
            raise ValueError("admission_udp_ports: %r is not within 1-65535" % item)
        ports.update(range(first, last + 1))
    if len(ports) > 64:
        raise ValueError("admission_udp_ports: %d ports, at most 64" % len(ports))
    return tuple(sorted(ports))


def links_toward(topo, next_hops: dict, ingress: int, egress: int) -> set:
    """The (dpid, port) links a stream entering at ``ingress`` for a host behind
    ``egress`` may cross under ``next_hops`` ({(u, d): ((port, weight), ...)})."""
    neighbour = {(lk.src, lk.src_port): lk.dst for lk in topo.links()}
    found, todo, seen = set(), [ingress], {ingress}
    while todo:
        u = todo.pop()
        for port, weight in next_hops.get((u, egress), ()):
            v = neighbour.get((u, port))
            if weight <= 0 or v is None:
                continue
            found.add((u, port))
            if v != egress and v not in seen:
                seen.add(v)
                todo.append(v)
    return found


class Admission:
    """Decides about new streams and remembers what it reserved for them."""

    def __init__(self, utilization: float, stream_bps: float, reserve_s: float = RESERVE_S):
        self.utilization = utilization
        self.stream_bps = stream_bps
        self.reserve_s = reserve_s
        self._reserved: list = []  # [(until, links)]
        self._verdicts: dict = {}  # stream -> (Verdict, at)
        self.admitted = 0
        self.refused = 0
        self.recent_refusals: collections.deque = collections.deque(maxlen=RECENT)

    def decide(self, topo, next_hops: dict, stream: tuple, ingress: int,
               egress: int | None, now: float) -> Verdict:
        """Admit or refuse ``stream`` (any hashable naming it: its addresses and ports),
        which entered at switch ``ingress`` for a host behind ``egress`` (None: not a
        known host)."""
        self._expire(now)
        repeat = self._verdicts.get(stream)
        if repeat is not None and now - repeat[1] < REPEAT_S:
            return repeat[0]
        verdict = self._judge(topo, next_hops, ingress, egress, now)
        self._verdicts[stream] = (verdict, now)
        if verdict.admitted:
            self.admitted += 1
        else:
            self.refused += 1
            self.recent_refusals.append(dict(stream=list(stream), at=now, ingress=ingress,
                                             busiest=round(verdict.busiest, 3),
                                             link=verdict.link, reason=verdict.reason))
        return verdict

    def describe(self, now: float) -> dict:
        """What GET /v1/admission shows: the limits, the counts, what is reserved and
        the latest refusals (ages in seconds)."""
        return {"enabled": True, "utilization": self.utilization,
                "stream_bps": self.stream_bps, "admitted": self.admitted,
                "refused": self.refused,
                "reserved": [{"dpid": "%016x" % dpid, "port_no": port, "bps": bps}
                             for (dpid, port), bps in sorted(self.reserved_bps(now).items())],
                "recent_refusals": [
                    {**{k: v for k, v in refusal.items() if k not in ("at", "ingress")},
                     "ingress": "%016x" % refusal["ingress"],
                     "age": round(now - refusal["at"], 3)}
                    for refusal in self.recent_refusals]}

    def reserved_bps(self, now: float) -> dict:
        """{(dpid, port): bits/s} reserved for streams admitted lately."""
        self._expire(now)
        out: dict = {}
        for _, links in self._reserved:
            for link in links:
                out[link] = out.get(link, 0.0) + self.stream_bps
        return out

    def _judge(self, topo, next_hops, ingress, egress, now) -> Verdict:
        if egress is None:
            return Verdict(True, 0.0, None, "destination unknown: forwarding decides")
        if egress == ingress:
            return Verdict(True, 0.0, None, "delivered at the switch it entered by")
        links = links_toward(topo, next_hops, ingress, egress)
        if not links:
            return Verdict(True, 0.0, None, "no path yet: forwarding decides")
        measured = {(lk.src, lk.src_port): lk.rate_bps for lk in topo.links()}
        reserved = self.reserved_bps(now)
        busiest, where = 0.0, None
        for link in sorted(links):
            capacity = topo.capacity(*link)
            if not capacity:
                continue
            load = (measured.get(link, 0.0) + reserved.get(link, 0.0) + self.stream_bps) \
                / capacity
            if load > busiest:
                busiest, where = load, link
        if busiest > self.utilization:
            return Verdict(False, busiest, where, "link %x:%d would be at %.0f%% (limit %.0f%%)"
                           % (where[0], where[1], 100 * busiest, 100 * self.utilization))
        self._reserved.append((now + self.reserve_s, frozenset(links)))
        return Verdict(True, busiest, where, "fits")

    def _expire(self, now: float) -> None:
        self._reserved = [(until, links) for until, links in self._reserved if until > now]
        self._verdicts = {stream: (v, at) for stream, (v, at) in self._verdicts.items()
                          if now - at < REPEAT_S}
