"""Mininet topologies with loops, for ``mn --custom topologies/topos.py --topo NAME,ARGS``.

    diamond[,hosts=N,bw_main=..,bw_alt=..]  two disjoint 2-hop paths, s10101 to s10104
    ring,N[,hosts=H,bw=..]              N switches in a ring, H hosts on each
    leafspine,S,L,H[,bw=..,bw_slow=..]  S spines, L leaves, H hosts per leaf
    fattree,K[,bw=..]                   k-ary fat tree (K=4: 20 switches, 16 hosts)

``bw`` (Mbit/s) limits every inter-switch link and ``host_bw`` every host link (both
need ``--link tc``); the other options set a different rate on some links, for
unequal-capacity experiments.  Tell the controller
the rates (``link_capacity_mbps``; sdn_app.emulation.capacity_settings does it): the
switches only see their veths' 10 Gbit/s.  Names and ids are
readable: a switch's dpid, in hex, spells its layer, pod and index as decimal digits
(s10203 = layer 1, pod 02, index 03: dpid 0x10203); host hN has MAC 00:00:00:00:HH:LL
and IP 10.0.HH.LL where HHLL is N in hex/decimal bytes.
"""

from mininet.topo import Topo


class ReadableTopo(Topo):
    """Adds switches and hosts with readable dpids, MACs and IPs."""

    def build(self, *args, **kwargs):
        self.host_count = 0
        self.link_bw = kwargs.pop("bw", None)
        self.host_bw = kwargs.pop("host_bw", None)
        self.build_topology(*args, **kwargs)

    def build_topology(self, *args, **kwargs):
        raise NotImplementedError

    def switch(self, layer, pod, index):
        name = "s%d%02d%02d" % (layer, pod, index)
        return self.addSwitch(name, dpid="%d%02d%02d" % (layer, pod, index))

    def hosts_on(self, switch, count):
        for _ in range(count):
            self.host_count += 1
            n = self.host_count
            host = self.addHost("h%d" % n, mac="00:00:00:00:%02x:%02x" % (n >> 8, n & 0xFF),
                                ip="10.0.%d.%d/16" % (n >> 8, n & 0xFF))
            self._add_link(host, switch, self.host_bw)

    def connect(self, a, b, bw=None):
        """An inter-switch link; ``bw`` overrides the topology-wide rate."""
        self._add_link(a, b, bw if bw is not None else self.link_bw)

    def _add_link(self, a, b, bw):
        if bw is None:
            self.addLink(a, b)
        else:
            self.addLink(a, b, bw=float(bw))


class DiamondTopo(ReadableTopo):
    """s10101 branches to s10102 (bw_main) and s10103 (bw_alt), which rejoin at s10104."""

    def build_topology(self, hosts=1, bw_main=None, bw_alt=None):
        s1, s2, s3, s4 = (self.switch(1, 1, i) for i in range(1, 5))
        self.hosts_on(s1, int(hosts))
        self.hosts_on(s4, int(hosts))
        self.connect(s1, s2, bw_main)
        self.connect(s2, s4, bw_main)
        self.connect(s1, s3, bw_alt)
        self.connect(s3, s4, bw_alt)


class RingTopo(ReadableTopo):
    def build_topology(self, n=4, hosts=1):
        n = int(n)
        if n < 3:
            raise ValueError("a ring needs at least 3 switches")
        switches = [self.switch(1, 1, i) for i in range(1, n + 1)]
        for sw in switches:
            self.hosts_on(sw, int(hosts))
        for i, sw in enumerate(switches):
            self.connect(sw, switches[(i + 1) % n])


class LeafSpineTopo(ReadableTopo):
    """Every leaf (layer 2) links to every spine (layer 1).  ``bw_slow`` sets the rate
    of the links to the last spine."""

    def build_topology(self, spines=2, leaves=2, hosts=2, bw_slow=None):
        spines, leaves = int(spines), int(leaves)
        if spines < 1 or leaves < 1:
            raise ValueError("leafspine needs at least one spine and one leaf")
        spine_switches = [self.switch(1, 1, i) for i in range(1, spines + 1)]
        for j in range(1, leaves + 1):
            leaf = self.switch(2, 1, j)
            self.hosts_on(leaf, int(hosts))
            for i, spine in enumerate(spine_switches):
                slow = bw_slow is not None and i == spines - 1
                self.connect(leaf, spine, bw_slow if slow else None)


class FatTreeTopo(ReadableTopo):
    """k pods of k/2 edge (layer 3) and k/2 aggregation (layer 2) switches, (k/2)^2 core
    switches (layer 1), k/2 hosts per edge switch."""

    def build_topology(self, k=4):
        k = int(k)
        if k < 2 or k % 2:
            raise ValueError("fattree needs an even k >= 2")
        half = k // 2
        cores = [self.switch(1, 0, i) for i in range(1, half * half + 1)]
        for pod in range(1, k + 1):
            aggs = [self.switch(2, pod, i) for i in range(1, half + 1)]
            for i, agg in enumerate(aggs):
                for j in range(half):
                    self.connect(agg, cores[i * half + j])
            for e in range(1, half + 1):
                edge = self.switch(3, pod, e)
                self.hosts_on(edge, half)
                for agg in aggs:
                    self.connect(edge, agg)


topos = {
    "diamond": DiamondTopo,
    "ring": RingTopo,
    "leafspine": LeafSpineTopo,
    "fattree": FatTreeTopo,
}
