"""The live topology model: switches, ports, directed links and hosts.

Pure Python + networkx; no Ryu.  Every mutating method returns whether something that
forwarding depends on changed, so the controller recomputes only when needed.  Time is
always passed in (``now``), which keeps the model deterministic under test.
"""

from __future__ import annotations

import bisect
import collections
import math
from dataclasses import dataclass, field

import networkx as nx

# A port settles once up for settle_time, or for this many times the slowest of our LLDP
# probes heard in the last LLDP_DELAY_WINDOW s (Topology.settle_after).
LLDP_DELAY_FACTOR = 4
LLDP_DELAY_WINDOW = 10.0
# Switch connections are remembered this long: a port that has not settled when another
# switch connects starts its wait again (Topology.settles_at).
CONNECTS_KEPT_S = 60.0
EXPECTED_LINK_POLL_S = 0.1  # how often a wait for an expected link looks again


class TopologyError(ValueError):
    """A query named something the model does not hold (maps to HTTP 404)."""


def dpid_to_str(dpid: int) -> str:
    return "%016x" % dpid


def str_to_dpid(text: str) -> int:
    """Parse a datapath id written in hex (optionally 0x-prefixed), as the REST API shows it."""
    body = text.strip().lower()
    if body.startswith("0x"):
        body = body[2:]
    if not body or len(body) > 16 or any(c not in "0123456789abcdef" for c in body):
        raise ValueError("datapath id must be up to 16 hex digits, got %r" % text)
    return int(body, 16)


def normalize_mac(text: str) -> str:
    parts = text.strip().lower().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise ValueError("not a MAC address: %r" % text)
    try:
        return ":".join("%02x" % int(p, 16) for p in parts)
    except ValueError:
        raise ValueError("not a MAC address: %r" % text) from None


def is_unicast(mac: str) -> bool:
    try:
        return not int(normalize_mac(mac).split(":")[0], 16) & 1
    except ValueError:
        return False


@dataclass
class Port:
    port_no: int
    name: str = ""
    hw_addr: str = ""
    live: bool = True
    speed_bps: int = 0  # advertised current speed; 0 when the switch does not say
    up_since: float = 0.0  # when the port last became live; discovery settles from there
    last_rx: float = float("-inf")  # when its receive counter was last seen growing


@dataclass
class Switch:
    dpid: int
    ports: dict[int, Port] = field(default_factory=dict)
    connected: bool = True
    connected_since: float = 0.0
    first_connected: float = 0.0  # its first connection in this run (kept on reconnects)
    disconnected_since: float | None = None  # while its control channel is down
    # When we sent the newest request the switch has answered: it has handled every
    # message we sent it before then, and we have read everything it sent before.
    answered_until: float = -math.inf


@dataclass
class Link:
    """One direction of an inter-switch link, as proven by an LLDP frame."""

    src: int
    src_port: int
    dst: int
    dst_port: int
    last_seen: float = 0.0
    rate_bps: float = 0.0  # measured, smoothed (statistics polling)


@dataclass
class Host:
    mac: str
    dpid: int
    port: int
    ips: list[str] = field(default_factory=list)
    last_seen: float = 0.0


MAX_IPS_PER_HOST = 8
DEFAULT_CAPACITY_BPS = 1e9  # for ports that advertise no speed


class Topology:
    """Switches and directed links live in ``graph`` (a MultiDiGraph keyed by source port,
    so parallel links are kept apart); hosts are kept by MAC beside it."""

    def __init__(self, settle_time: float = 1.0, max_hosts_per_port: int = 0,
                 max_hosts_per_switch: int = 0, link_timeout: float = 3.0):
        self.graph = nx.MultiDiGraph(version=0)  # version: bumped on every change
        self.port_set_version = 0  # bumped when a switch gains or loses a port number
        self.hosts: dict[str, Host] = {}
        # caps on hosts learned (0: none), so one port's flood of source MACs cannot
        # fill every switch's table; the last refusal: (mac, dpid, port, why)
        self.max_hosts_per_port = max_hosts_per_port
        self.max_hosts_per_switch = max_hosts_per_switch
        self.refused: tuple | None = None
        # Ports that carried host traffic: (dpid, port) -> when a host frame first came
        # in there.  As TopoGuard classifies ports, such a port cannot silently become
        # an inter-switch port (a host relaying our probes would draw traffic through
        # itself): link_seen refuses it until the port goes down (a cable unplugged),
        # disappears, or is reset (reset_port).  Why the last refusal of link_seen:
        self.host_ports: dict[tuple[int, int], float] = {}
        self.refused_link: str | None = None
        # Links that failed (port down, LLDP silence), kept to report them as down until
        # LLDP proves them again or their port disappears.  Keyed by (src, src_port).
        self.down_links: dict[tuple[int, int], Link] = {}
        self.settle_time = settle_time
        # (dpid, port) -> until when: ports a switch's own entries show were in links
        # (taken over after a restart), whose links discovery waits for (discovery_left)
        self.expected_links: dict[tuple[int, int], float] = {}
        # A link heard this recently holds its ports: a probe that would give either
        # port a second neighbour is refused (link_seen), not taken as a recabling.
        self.link_timeout = link_timeout
        # (seen at, delay) of our LLDP probes heard lately, as a sliding maximum: each
        # slower than every later one, so the first still in LLDP_DELAY_WINDOW is the
        # slowest there (a port settles only once a probe sent out of it, if a switch
        # were behind it, would have come back a few times over: settle_after).  One
        # probe per link per second comes in; this keeps each O(1).
        self._lldp_delays: collections.deque = collections.deque()
        self._connects: list[float] = []  # when switches connected, oldest first
        # (dpid, port) -> bits/s, from configuration: wins over the advertised speed
        # (an emulated link reports its veth's speed, not its shaped rate).
        self.capacity_overrides: dict[tuple[int, int], float] = {}

    # -- switches and ports ------------------------------------------------------------

    @property
    def switches(self) -> dict[int, Switch]:
        return {dpid: data["switch"] for dpid, data in self.graph.nodes(data=True)}

    def switch(self, dpid: int) -> Switch:
        try:
            return self.graph.nodes[dpid]["switch"]
        except KeyError:
            raise TopologyError("unknown switch %s" % dpid_to_str(dpid)) from None

    def switch_connected(self, dpid: int, ports: list[Port], now: float) -> bool:
        """A switch (re)connected with this port list: the port list replaces the old one."""
        old = self.graph.nodes[dpid]["switch"] if dpid in self.graph else None
        switch = Switch(dpid, connected=True, connected_since=now,
                        first_connected=old.first_connected if old else now)
        cut = bisect.bisect_left(self._connects, now - CONNECTS_KEPT_S)
        self._connects = self._connects[cut:] + [now]
        for port in ports:
            prev = old.ports.get(port.port_no) if old else None
            kept_up = prev is not None and prev.live and port.live and old.connected
            port.up_since = prev.up_since if kept_up else now
            switch.ports[port.port_no] = port
        self.graph.add_node(dpid, switch=switch)
        self._changed(dpid)
        if old is None or old.ports.keys() != switch.ports.keys():
            self.port_set_version += 1
        if old:
            for port_no in old.ports:
                new = switch.ports.get(port_no)
                if new is None or not new.live:
                    self._drop_port_state(dpid, port_no)
        return True

    def switch_disconnected(self, dpid: int, now: float = 0.0) -> bool:
        """The control channel dropped.  The switch keeps forwarding with the flows it has
        (fail-secure), so it stays in the graph with its links and hosts; only liveness
        evidence (a neighbour's port going down) removes its links, and a long absence
        (``forget_disconnected``) the switch itself."""
        if dpid not in self.graph:
            return False
        switch = self.switch(dpid)
        switch.connected, switch.disconnected_since = False, now
        return False

    def forget_disconnected(self, now: float, after: float) -> list[int]:
        """Remove the switches disconnected for ``after`` seconds or more, with their
        links and hosts (a network torn down, or a switch retired, must not linger in
        the model); the dpids removed."""
        gone = [dpid for dpid, sw in self.switches.items() if not sw.connected and
                sw.disconnected_since is not None and now - sw.disconnected_since >= after]
        for dpid in gone:
            self.remove_switch(dpid)
        return gone

    def remove_switch(self, dpid: int) -> bool:
        if dpid not in self.graph:
            return False
        self.graph.remove_node(dpid)
        self._changed(dpid)
        self.port_set_version += 1
        self.down_links = {k: lk for k, lk in self.down_links.items()
                           if dpid not in (lk.src, lk.dst)}
        for mac in [m for m, h in self.hosts.items() if h.dpid == dpid]:
            del self.hosts[mac]
        self.host_ports = {k: t for k, t in self.host_ports.items() if k[0] != dpid}
        return True

    def reset_port(self, dpid: int, port_no: int) -> bool:
        """Forget what a port was found to be: its hosts, its links (reported down until
        LLDP proves them again) and that it carried host traffic, so discovery starts
        afresh there, as after unplugging its cable.  The way to recable a port whose
        carrier never dropped.  TopologyError for an unknown switch or port; whether
        anything was forgotten."""
        if port_no not in self.switch(dpid).ports:
            raise TopologyError("switch %s has no port %d" % (dpid_to_str(dpid), port_no))
        held = bool(self.links_at(dpid, port_no)) or (dpid, port_no) in self.host_ports \
            or any((h.dpid, h.port) == (dpid, port_no) for h in self.hosts.values())
        self._drop_port_state(dpid, port_no)
        return held

    def port_changed(self, dpid: int, port: Port, now: float) -> bool:
        """A port was added or modified (OFPPortStatus).  A port going down takes its
        links and hosts with it at once: that is how link loss is seen within a second."""
        switch = self.switch(dpid)
        prev = switch.ports.get(port.port_no)
        if prev is not None and prev.live and port.live:
            port.up_since = prev.up_since
        else:
            port.up_since = now
        switch.ports[port.port_no] = port
        if prev is None:
            self.port_set_version += 1
        if not port.live:
            self._drop_port_state(dpid, port.port_no)
            return True
        # A port coming up changes nothing until LLDP or a host proves what is behind it.
        return prev is None or not prev.live

    def port_deleted(self, dpid: int, port_no: int) -> bool:
        switch = self.switch(dpid)
        if switch.ports.pop(port_no, None) is None:
            return False
        self.port_set_version += 1
        self._drop_port_state(dpid, port_no)
        self.down_links = {k: lk for k, lk in self.down_links.items()
                           if (dpid, port_no) not in ((lk.src, lk.src_port), (lk.dst, lk.dst_port))}
        return True

    def _drop_port_state(self, dpid: int, port_no: int) -> None:
        for link in self.links_at(dpid, port_no):
            self._link_down(link)
        for mac in [m for m, h in self.hosts.items() if (h.dpid, h.port) == (dpid, port_no)]:
            del self.hosts[mac]
        self.host_ports.pop((dpid, port_no), None)

    def capacity(self, dpid: int, port_no: int) -> float:
        """Transmit capacity of a switch port, bits/s."""
        override = self.capacity_overrides.get((dpid, port_no))
        if override:
            return override
        port = self.switch(dpid).ports.get(port_no) if dpid in self.graph else None
        return float(port.speed_bps) if port and port.speed_bps else DEFAULT_CAPACITY_BPS

    # -- links -------------------------------------------------------------------------

    def links(self) -> list[Link]:
        return [data["link"] for _, _, data in self.graph.edges(data=True)]

    def links_at(self, dpid: int, port_no: int) -> list[Link]:
        """Links leaving or entering this switch port."""
        if dpid not in self.graph:
            return []
        found = [d["link"] for _, _, k, d in self.graph.out_edges(dpid, keys=True, data=True)
                 if k == port_no]
        found += [d["link"] for _, _, d in self.graph.in_edges(dpid, data=True)
                  if d["link"].dst_port == port_no]
        return found

    def is_link_port(self, dpid: int, port_no: int) -> bool:
        return bool(self.links_at(dpid, port_no))

    def link_seen(self, src: int, src_port: int, dst: int, dst_port: int, now: float) -> bool:
        """Record LLDP evidence that src:src_port reaches dst:dst_port.  Returns True when
        the link is new (or its far end moved).  False for a refresh, a dead port, or a
        refusal, whose reason is then left in ``refused_link``."""
        self.refused_link = None
        for dpid, port_no in ((src, src_port), (dst, dst_port)):
            port = self.switch(dpid).ports.get(port_no)
            if port is None or not port.live:
                return False
        if self.graph.has_edge(src, dst, key=src_port):
            link = self.graph.edges[src, dst, src_port]["link"]
            if link.dst_port == dst_port:
                link.last_seen = now
                return False
        self.refused_link = self._link_refusal(src, src_port, dst, dst_port, now)
        if self.refused_link:
            return False
        # The same source port cannot lead to two places: forget any stale far end.
        ends = {src, dst}
        for link in [lk for lk in self.links_at(src, src_port) if lk.src == src]:
            self.graph.remove_edge(link.src, link.dst, key=link.src_port)
            ends.add(link.dst)
        for link in [lk for lk in self.links_at(dst, dst_port) if lk.dst == dst]:
            self.graph.remove_edge(link.src, link.dst, key=link.src_port)
            ends.add(link.src)
        self.graph.add_edge(src, dst, key=src_port,
                            link=Link(src, src_port, dst, dst_port, last_seen=now))
        self._changed(*ends)
        self.down_links.pop((src, src_port), None)
        # Anything learned as a host on either end was really the other switch (it
        # forwarded on its own before it connected: _link_refusal lets that through).
        for mac in [m for m, h in self.hosts.items()
                    if (h.dpid, h.port) in ((src, src_port), (dst, dst_port))]:
            del self.hosts[mac]
        self.host_ports.pop((src, src_port), None)
        self.host_ports.pop((dst, dst_port), None)
        return True

    def _link_refusal(self, src: int, src_port: int, dst: int, dst_port: int,
                      now: float) -> str | None:
        """Why a proven probe from src:src_port at dst:dst_port must make no link, or
        None.  Two things a relay does and cabling does not:

        - either port carried host traffic after the switch at the other end was first
          connected to us.  Hosts seen before that may have come through that switch
          (a switch forwards on its own until it has a controller), so its first probe
          wins over them; hosts seen after it are hosts.  A link that was proven before
          and lost to silence, its ports up, may come back over them (frames from the
          far switch arrived there meanwhile).
        - either port is in a link to somewhere else heard within link_timeout: a cable
          has two ends.  A real recabling drops the carrier (the old link goes at once)
          or silences the old link's probes (it expires)."""
        known = self.down_links.get((src, src_port))  # this very link, back
        if known is not None and (known.dst, known.dst_port) == (dst, dst_port):
            return None
        for (dpid, port_no), (other, _) in (((src, src_port), (dst, dst_port)),
                                            ((dst, dst_port), (src, src_port))):
            hosts_since = self.host_ports.get((dpid, port_no))
            if hosts_since is not None and hosts_since >= self.switch(other).first_connected:
                return ("%s:%d has carried host traffic (since %.1f s ago); unplug it or "
                        "reset it to recable" % (dpid_to_str(dpid), port_no,
                                                 now - hosts_since))
        for (dpid, port_no), far in (((src, src_port), (dst, dst_port)),
                                     ((dst, dst_port), (src, src_port))):
            for link in self.links_at(dpid, port_no):
                end = (link.dst, link.dst_port) if link.src == dpid and \
                    link.src_port == port_no else (link.src, link.src_port)
                if end != far and now - link.last_seen < self.link_timeout:
                    return "%s:%d is linked to %s:%d (heard %.1f s ago)" % (
                        dpid_to_str(dpid), port_no, dpid_to_str(end[0]), end[1],
                        now - link.last_seen)
        return None

    def _link_down(self, link: Link) -> None:
        self.graph.remove_edge(link.src, link.dst, key=link.src_port)
        self.down_links[(link.src, link.src_port)] = link
        self._changed(link.src, link.dst)

    def _changed(self, *switches: int) -> None:
        """The graph changed at ``switches`` (a switch, or the ends of edges that came or
        went): what paths.fabric cached for it is stale there."""
        self.graph.graph["version"] += 1
        self.graph.graph.setdefault("changed_at", set()).update(switches)

    def port_received(self, dpid: int, port_no: int, now: float) -> None:
        """Statistics show the port receiving: evidence that links into it work."""
        port = self.switch(dpid).ports.get(port_no) if dpid in self.graph else None
        if port is not None:
            port.last_rx = now

    def switch_answered(self, dpid: int, sent_at: float) -> None:
        """The switch answered a request we sent at ``sent_at`` (see expire_links)."""
        if dpid in self.graph:
            switch = self.switch(dpid)
            switch.answered_until = max(switch.answered_until, sent_at)

    def expire_links(self, now: float, timeout: float) -> list[Link]:
        """Drop links that went silent: no LLDP *and* no traffic received at their far
        end for ``timeout``.  Traffic counts because a congested link tail-drops LLDP
        frames too, and a busy link must not be mistaken for a dead one.  Links whose
        source switch is cut off from the controller cannot be re-proven, so they are
        kept (see switch_disconnected).

        Silence counts only while both ends demonstrably kept up with us: each
        (connected) end has answered a request sent more than ``timeout`` after the
        link was last heard,
        so the probes sent in between went out and anything the far end sent back was
        read.  A controller that fell behind (measured: ~17 s sending 9,000 flow mods
        to an 80-switch fabric) finds its LLDP still queued, not lost; declaring those
        links down made it recompute and send more, and the fabric never converged."""
        def heard(link):
            port = self.switch(link.dst).ports.get(link.dst_port)
            return max(link.last_seen, port.last_rx if port else link.last_seen)

        def kept_up_until(switch):  # a far end cut off from us can never show it
            return switch.answered_until if switch.connected else now

        def silent(link):
            src, dst = self.switch(link.src), self.switch(link.dst)
            return src.connected and min(kept_up_until(src), kept_up_until(dst),
                                         now) - heard(link) > timeout
        stale = [lk for lk in self.links() if silent(lk)]
        for link in stale:
            self._link_down(link)
        return stale

    # -- hosts -------------------------------------------------------------------------

    def lldp_delay_seen(self, delay: float, now: float) -> None:
        """One of our LLDP probes came back ``delay`` s after it was sent."""
        delay = max(0.0, delay)
        delays = self._lldp_delays
        while delays and delays[-1][1] <= delay:
            delays.pop()
        delays.append((now, delay))

    def settle_after(self, now: float) -> float:
        """How long a port must be up with no LLDP seen on it before it counts as
        host-facing: settle_time, or LLDP_DELAY_FACTOR times the slowest probe heard in
        the last LLDP_DELAY_WINDOW s if that is longer (a controller or switch falling
        behind answers late, and a switch behind the port must have had the time).
        ``now`` never goes back between calls (it drops what has left the window)."""
        delays = self._lldp_delays
        while delays and delays[0][0] <= now - LLDP_DELAY_WINDOW:
            delays.popleft()
        slowest = delays[0][1] if delays else 0.0
        return max(self.settle_time, LLDP_DELAY_FACTOR * slowest)

    def is_edge_port(self, dpid: int, port_no: int, now: float) -> bool:
        """A port that faces hosts: live, proven by no LLDP, and up long enough that LLDP
        would have shown a switch behind it.  Only these learn hosts and receive floods,
        which is what makes loops in the topology harmless."""
        at = self._edge_from(dpid, port_no, now)
        return at is not None and now >= at

    def settling(self, dpid: int, port_no: int, now: float) -> float | None:
        """Seconds until a port that is not an edge port yet becomes one, if nothing
        but time stands in the way (live, its switch connected, no LLDP seen on it);
        None otherwise."""
        at = self._edge_from(dpid, port_no, now)
        return at - now if at is not None and at > now else None

    def expect_links(self, dpid: int, ports, until: float) -> None:
        """A switch's taken-over entries show these ports were in links: discovery is
        not done before each is proven again, or ``until`` (the neighbour may be gone)."""
        for port_no in ports:
            self.expected_links[(dpid, port_no)] = until

    def discovery_left(self, now: float) -> float | None:
        """Seconds until every live port of every connected switch is either in a link
        or settled as host-facing, and every expected link is proven or given up on (as
        far as discovery can tell, the topology is then known), or None if it already
        is.  A neighbour still reconnecting makes no settling port, so its expected
        links are what show it is coming: they are polled (EXPECTED_LINK_POLL_S)."""
        self.expected_links = {k: t for k, t in self.expected_links.items() if t > now}
        waits = [wait for dpid, switch in self.switches.items() if switch.connected
                 for port_no in switch.ports
                 if (wait := self.settling(dpid, port_no, now)) is not None]
        for (dpid, port_no), until in self.expected_links.items():
            switch = self.graph.nodes[dpid]["switch"] if dpid in self.graph else None
            port = switch.ports.get(port_no) if switch else None
            if port is not None and port.live and switch.connected and \
                    not self.is_link_port(dpid, port_no):
                waits.append(min(until - now, EXPECTED_LINK_POLL_S))
        return max(waits) if waits else None

    def _edge_from(self, dpid: int, port_no: int, now: float) -> float | None:
        """When a port counts as host-facing as things stand (settles_at), or None for
        one that will not: gone, down, on a disconnected switch, or in a link."""
        if dpid not in self.graph:
            return None
        switch = self.switch(dpid)
        port = switch.ports.get(port_no)
        if port is None or not port.live or not switch.connected \
                or self.is_link_port(dpid, port_no):
            return None
        if self.expected_links.get((dpid, port_no), float("-inf")) > now:
            # Taken over: the switch's own entries say a link was here.  Until LLDP
            # proves it again (or its time runs out), traffic arriving on it is transit
            # traffic, not hosts: learning it would mark the port as host-facing and the
            # relay defence would then refuse the link for good (seen when a standby
            # controller took over while frames were in flight).
            return None
        return self.settles_at(max(port.up_since, switch.connected_since), now)

    def settles_at(self, start: float, now: float) -> float:
        """When a port up and on a connected switch since ``start`` counts as host-facing
        if no LLDP shows otherwise: settle_after(now) later, and as long again after any
        switch that connected before then.  The switch behind a port may be among those
        still connecting (a fabric's switches connect over seconds); until it has, no
        LLDP can come back through the port, and frames its side sends by itself (a
        Linux port's IPv6 autoconfiguration: 128 "hosts" learned on fattree,8's
        inter-switch ports) must not be taken for hosts."""
        wait = self.settle_after(now)
        at = start + wait
        connects = self._connects
        for i in range(bisect.bisect_right(connects, start), len(connects)):
            if connects[i] >= at:
                break
            at = connects[i] + wait
        return at

    def edge_ports(self, now: float) -> list[tuple[int, int]]:
        return sorted((dpid, port_no) for dpid, sw in self.switches.items()
                      for port_no in sw.ports if self.is_edge_port(dpid, port_no, now))

    def learn_host(self, mac: str, dpid: int, port_no: int, now: float,
                   ip: str | None = None) -> bool:
        """Record that ``mac`` sent from this edge port.  Returns True when forwarding must
        change (a new host, or one that moved)."""
        if not self.is_edge_port(dpid, port_no, now):
            return False
        if (dpid, port_no) not in self.host_ports and not self._is_switch_port(mac):
            self.host_ports[(dpid, port_no)] = now
        host = self.hosts.get(mac)
        moved = host is None or (host.dpid, host.port) != (dpid, port_no)
        if moved:
            why = self._full(dpid, port_no)
            if why:
                self.refused = (mac, dpid, port_no, why)
                return False
        if host is None:
            host = self.hosts[mac] = Host(mac, dpid, port_no)
        host.dpid, host.port, host.last_seen = dpid, port_no, now
        if ip and ip not in host.ips:
            # An IP belongs to one host: a newer claim wins (address reassigned).
            for other in self.hosts.values():
                if other is not host and ip in other.ips:
                    other.ips.remove(ip)
            host.ips = (host.ips + [ip])[-MAX_IPS_PER_HOST:]
        return moved

    def _is_switch_port(self, mac: str) -> bool:
        """``mac`` is a switch port's own address: a frame from it (the IPv6 address
        autoconfiguration of a Linux port, say) is the far switch speaking, not a host."""
        return any(port.hw_addr == mac for sw in self.switches.values()
                   for port in sw.ports.values())

    def _full(self, dpid: int, port_no: int) -> str | None:
        """Why this port may learn no further host (a cap reached), or None."""
        if not (self.max_hosts_per_port or self.max_hosts_per_switch):
            return None
        on_switch = on_port = 0
        for host in self.hosts.values():
            if host.dpid == dpid:
                on_switch += 1
                on_port += host.port == port_no
        if self.max_hosts_per_port and on_port >= self.max_hosts_per_port:
            return "max_hosts_per_port (%d) reached" % self.max_hosts_per_port
        if self.max_hosts_per_switch and on_switch >= self.max_hosts_per_switch:
            return "max_hosts_per_switch (%d) reached" % self.max_hosts_per_switch
        return None

    def restore_host(self, mac: str, dpid: int, port_no: int, now: float) -> bool:
        """Re-learn a host from our own learning entry found on a switch after a
        controller restart; unlike learn_host it does not wait for the port to settle,
        since the entry itself proves a host was seen there."""
        if dpid not in self.graph or mac in self.hosts or self.is_link_port(dpid, port_no):
            return False
        port = self.switch(dpid).ports.get(port_no)
        if port is None or not port.live:
            return False
        self.hosts[mac] = Host(mac, dpid, port_no, last_seen=now)
        self.host_ports.setdefault((dpid, port_no), now)
        return True

    def remove_host(self, mac: str) -> bool:
        return self.hosts.pop(mac, None) is not None

    def find_host(self, key: str) -> Host:
        """Look a host up by MAC or IPv4 address."""
        key = key.strip()
        if ":" in key or "-" in key:
            host = self.hosts.get(normalize_mac(key))
        else:
            host = next((h for h in self.hosts.values() if key in h.ips), None)
        if host is None:
            raise TopologyError("unknown host %r" % key)
        return host

    def host_by_ip(self, ip: str) -> Host | None:
        return next((h for h in self.hosts.values() if ip in h.ips), None)

    def hops_to_hosts(self, dpid: int):
        """``hops(ip)``: the fewest links from switch ``dpid`` to the switch of the host
        with address ``ip`` over the links up now (None: unknown host or unreachable)."""
        lengths = nx.single_source_shortest_path_length(self.graph, dpid) \
            if dpid in self.graph else {}

        def hops(ip):
            host = self.host_by_ip(ip)
            return lengths.get(host.dpid) if host is not None else None
        return hops
