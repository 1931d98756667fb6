"""Certificates for OpenFlow over TLS in the lab: a CA, certificates it signs, and the
Open vSwitch side (``ovs-vsctl set-ssl``), made with the openssl command line.

What a deployment does by hand (README, "OpenFlow over TLS"), done here in a temporary
directory so the tests can run the controller and the switches with mutual TLS, and a
switch holding a certificate of another CA can be shown refused.
"""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    key: Path
    cert: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def new_ca(directory: Path, name: str) -> KeyPair:
    """A self-signed CA certificate and its key."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = KeyPair(directory / (name + ".key"), directory / (name + ".pem"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
             "-subj", "/CN=" + name, "-keyout", str(pair.key), "-out", str(pair.cert))
    return pair


def issue(directory: Path, name: str, ca: KeyPair) -> KeyPair:
    """A key and a certificate for ``name`` signed by ``ca``."""
    pair = KeyPair(directory / (name + ".key"), directory / (name + ".pem"))
    request = directory / (name + ".csr")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
             "-keyout", str(pair.key), "-out", str(request))
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey",
             str(ca.key), "-CAcreateserial", "-days", "30", "-out", str(pair.cert))
    return pair


def ryu_tls_args(controller: KeyPair, switches_ca: Path, port: int) -> list[str]:
    """ryu-manager's options for OpenFlow over TLS on ``port``, requiring switch
    certificates signed by ``switches_ca``."""
    return ["--ctl-privkey", str(controller.key), "--ctl-cert", str(controller.cert),
            "--ca-certs", str(switches_ca), "--ofp-ssl-listen-port", str(port)]


@contextlib.contextmanager
def ovs_ssl(switch: KeyPair, controller_ca: Path):
    """Open vSwitch's TLS identity (one for all its bridges) for ``ssl:`` controller
    targets, removed on exit."""
    subprocess.run(["ovs-vsctl", "set-ssl", str(switch.key), str(switch.cert),
                    str(controller_ca)], check=True, timeout=10)
    try:
        yield
    finally:
        subprocess.run(["ovs-vsctl", "del-ssl"], check=False, timeout=10)
