"""OpenFlow over TLS that works for more than one switch, and refuses cleanly.

Ryu 4.34 serves OpenFlow over TLS when started with ``--ctl-privkey``, ``--ctl-cert``
(and ``--ca-certs`` to require switch certificates signed by that CA) on
``--ofp-ssl-listen-port``.  Its ``hub.StreamServer`` builds the TLS context on the
first connection by *popping* the certificate, key and CA out of its arguments, so the
second switch is wrapped with none of them (a plain ``ssl.wrap_socket`` with no
certificate: every handshake after the first fails), and a failed handshake escapes
as a traceback from a green thread.

``install`` swaps in a server that builds one context up front (TLS 1.2 or later, the
CA required when given) and wraps every connection with it; a handshake that fails,
or that does not finish within HANDSHAKE_TIMEOUT (a client that connects and stays
silent), is a log line naming the peer and the reason, and the socket is closed.
"""

from __future__ import annotations

import logging
import ssl

from ryu.controller import controller as ryu_controller
from ryu.lib import hub

LOG = logging.getLogger(__name__)
HANDSHAKE_TIMEOUT = 10.0


def server_context(certfile: str, keyfile: str, cert_reqs=ssl.CERT_NONE,
                   ca_certs: str | None = None) -> ssl.SSLContext:
    """The controller's side: its certificate, and the switches' CA if required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if ca_certs:
        context.load_verify_locations(ca_certs)
    context.verify_mode = cert_reqs if ca_certs else ssl.CERT_NONE
    return context


class StreamServer(hub.StreamServer):
    """hub.StreamServer with one TLS context for every connection (see above)."""

    def __init__(self, listen_info, handle=None, backlog=None, spawn="default",
                 **ssl_args):
        super().__init__(listen_info, handle, backlog, spawn)  # plain: we wrap below
        if not ssl_args:
            return
        context = server_context(ssl_args["certfile"], ssl_args["keyfile"],
                                 ssl_args.get("cert_reqs", ssl.CERT_NONE),
                                 ssl_args.get("ca_certs"))

        def wrap_and_handle(sock, addr):
            try:
                sock.settimeout(HANDSHAKE_TIMEOUT)
                wrapped = context.wrap_socket(sock, server_side=True)
                wrapped.settimeout(None)
            except (TimeoutError, ssl.SSLError, OSError) as exc:
                LOG.warning("OpenFlow TLS handshake from %s:%s refused: %s",
                            addr[0], addr[1], exc)
                sock.close()
                return
            handle(wrapped, addr)
        self.handle = wrap_and_handle


def install() -> None:
    """Make Ryu's OpenFlow listener use StreamServer (idempotent)."""
    ryu_controller.StreamServer = StreamServer
