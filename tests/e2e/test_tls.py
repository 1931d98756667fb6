"""OpenFlow over TLS end to end (issue 14): switches with certificates of the CA the
controller trusts connect and forward; a switch with another CA's certificate, and a
client speaking plain OpenFlow to the TLS port, are refused and make no switch."""

import socket
import struct

from sdn_app.lab.emulation import (
    ControllerProcess,
    emulated_network,
    free_port,
    ping_pairs,
    wait_converged,
    wait_until,
)
from sdn_app.lab.pki import issue, new_ca, ovs_ssl, ryu_tls_args


def test_switches_connect_over_mutual_tls_and_an_untrusted_one_is_refused(tmp_path):
    ca, rogue_ca = new_ca(tmp_path, "fabric-ca"), new_ca(tmp_path, "rogue-ca")
    controller_pair = issue(tmp_path, "controller", ca)
    port = free_port()
    with ControllerProcess(of_port=port, log_path=tmp_path / "controller.log",
                           extra_args=ryu_tls_args(controller_pair, ca.cert, port)) as ctl:
        with ovs_ssl(issue(tmp_path, "switch", ca), ca.cert), \
                emulated_network("leafspine,2,2,2", port, controller_protocol="ssl") as net:
            wait_converged(ctl, net)
            assert not ping_pairs(net)[1]
            targets = net.switches[0].vsctl("get-controller", net.switches[0].name)
            assert targets.strip().startswith("ssl:127.0.0.1:%d" % port)
        refused = "OpenFlow TLS handshake from 127.0.0.1"

        def refusals():
            return ctl.log_path.read_text().count(refused)
        # plain OpenFlow to the TLS port: a HELLO, and nothing comes of it (the
        # start-up's own check that the port listens was one refusal already)
        before = refusals()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(struct.pack("!BBHI", 4, 0, 8, 1))
            plain.settimeout(5)
            try:
                answer = plain.recv(64)
            except OSError:
                answer = b""
            assert not answer.startswith(b"\x04\x00"), "no OpenFlow HELLO back"
        assert wait_until(lambda: refusals() > before, 10), ctl.log_tail()
        assert "WRONG_VERSION_NUMBER" in ctl.log_tail(5)
        before = refusals()
        with ovs_ssl(issue(tmp_path, "rogue-switch", rogue_ca), ca.cert), \
                emulated_network("leafspine,2,2,2", port, controller_protocol="ssl") as net:
            assert wait_until(lambda: refusals() >= before + len(net.switches), 20), \
                ctl.log_tail()
            assert all(not s["connected"] for s in ctl.get("/v1/switches")), \
                "no switch with an untrusted certificate is connected"
            state = net.switches[0].vsctl("--columns=is_connected", "list", "controller")
            assert "false" in state and "true" not in state, state
        assert ctl.alive()
        assert "Traceback" not in ctl.log_path.read_text(), ctl.log_tail(60)
