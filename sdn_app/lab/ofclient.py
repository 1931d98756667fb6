"""A bare OpenFlow 1.3 controller connection for tests that must speak to a switch as
somebody else would: ask for a role with a given generation, send a flow mod, and read
what the switch answers (errors above all).  Messages are built with Ryu's own parser;
no Ryu application runs.

    with OpenFlowPeer() as peer:              # listening on a free loopback port
        add_controller(switch, peer.port)     # the switch connects to it too
        peer.accept()
        peer.send(peer.role_request(master=True, generation=3))
        peer.wait_for(lambda m: ...)
"""

from __future__ import annotations

import socket
import struct
import time
from types import SimpleNamespace

from ryu.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser

from .emulation import free_port

OFP = ofproto_v1_3
PARSER = ofproto_v1_3_parser


class OpenFlowPeer:
    def __init__(self):
        self.port = free_port()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(1)
        self.conn = None
        self.datapath = SimpleNamespace(ofproto=OFP, ofproto_parser=PARSER, id=0)
        self._buffer = b""
        self._xid = 100

    def accept(self, timeout: float = 15.0) -> None:
        """The switch's connection, past the HELLO exchange."""
        self.listener.settimeout(timeout)
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(timeout)
        self.send(PARSER.OFPHello(self.datapath))
        self.wait_for(lambda msg: isinstance(msg, PARSER.OFPHello), timeout)

    def send(self, msg) -> int:
        self._xid += 1
        msg.xid = self._xid
        msg.serialize()
        self.conn.sendall(msg.buf)
        return self._xid

    def role_request(self, master: bool, generation: int):
        return PARSER.OFPRoleRequest(self.datapath, OFP.OFPCR_ROLE_MASTER if master
                                     else OFP.OFPCR_ROLE_SLAVE, generation)

    def flow_mod(self, priority: int = 1):
        """A harmless add: drop frames of an unused ethertype."""
        return PARSER.OFPFlowMod(self.datapath, priority=priority, cookie=0xBAD,
                                 match=PARSER.OFPMatch(eth_type=0x88B5), instructions=[])

    def receive(self, timeout: float):
        """The next message (echo requests are answered and skipped), or None."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buffer) >= 8:
                version, msg_type, length, xid = struct.unpack_from("!BBHI", self._buffer)
                if len(self._buffer) >= length:
                    raw, self._buffer = self._buffer[:length], self._buffer[length:]
                    msg = ofproto_parser.msg(self.datapath, version, msg_type, length, xid, raw)
                    if isinstance(msg, PARSER.OFPEchoRequest):
                        reply = PARSER.OFPEchoReply(self.datapath, data=msg.data)
                        reply.xid = xid
                        reply.serialize()
                        self.conn.sendall(reply.buf)
                        continue
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.conn.settimeout(left)
            try:
                chunk = self.conn.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self._buffer += chunk

    def wait_for(self, predicate, timeout: float = 5.0):
        """The first message ``predicate`` accepts within ``timeout``, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.receive(deadline - time.monotonic())
            if msg is not None and predicate(msg):
                return msg
        return None

    def answer_to(self, xid: int, timeout: float = 5.0):
        """The reply or error the switch sent for request ``xid``."""
        return self.wait_for(lambda msg: msg.xid == xid, timeout)

    def close(self) -> None:
        for sock in (self.conn, self.listener):
            if sock is not None:
                sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def add_controller(switch, port: int) -> None:
    """Point a Mininet OVS switch at one more controller (loopback ``port``), keeping its
    others."""
    targets = switch.vsctl("get-controller", switch.name).split()
    switch.vsctl("set-controller", switch.name, *targets, "tcp:127.0.0.1:%d" % port)


def controller_roles(switch) -> dict:
    """{controller target: role} of this switch's controller connections as Open vSwitch
    records them (master, slave, other; empty while it has no status yet)."""
    uuids = switch.vsctl("get", "bridge", switch.name, "controller").strip().strip("[]")
    uuids = [u.strip() for u in uuids.split(",") if u.strip()]
    if not uuids:
        return {}
    out = switch.vsctl("--columns=target,role", "--format=csv", "--data=bare",
                       "--no-headings", "list", "controller", *uuids)
    roles = {}
    for line in out.splitlines():
        target, _, role = line.strip().partition(",")
        roles[target.strip('"')] = role.strip('"')
    return roles


def masters(net, controllers) -> set:
    """Who Open vSwitch has as master, over every switch of ``net``: a set of the node
    ids (``cluster_node_id``) of ``controllers``, a switch with none or several adding
    a tuple of them; ``{"c1"}`` means c1 is master of every switch."""
    node_of = {"tcp:127.0.0.1:%d" % c.of_port: c.settings.get("cluster_node_id")
               for c in controllers}
    found = set()
    for switch in net.switches:
        held = [node_of.get(target, target) for target, role in
                controller_roles(switch).items() if role == "master"]
        found.add(held[0] if len(held) == 1 else tuple(held))
    return found
