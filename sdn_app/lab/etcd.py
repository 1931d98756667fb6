"""A real etcd cluster on loopback (Debian's ``etcd-server``, installed by
scripts/setup.sh): N members on free ports with throw-away data directories, each
member can be killed and restarted, for the HA tests and scripts/bench_ha.py.

    with EtcdCluster(3) as etcd:
        settings = {"cluster_store": etcd.store_setting()}
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from .emulation import free_port, wait_until


class EtcdError(RuntimeError):
    pass


class EtcdCluster:
    def __init__(self, members: int = 3, binary: str = "etcd", log_dir=None):
        self.binary = shutil.which(binary) or binary
        self.names = ["etcd%d" % i for i in range(members)]
        self.client_ports = {name: free_port() for name in self.names}
        self.peer_ports = {name: free_port() for name in self.names}
        self.workdir = tempfile.TemporaryDirectory(prefix="sdn-etcd-")
        self.log_dir = Path(log_dir or self.workdir.name)
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def endpoints(self) -> list[str]:
        return ["127.0.0.1:%d" % self.client_ports[name] for name in self.names]

    def store_setting(self, names=None) -> str:
        """The controller's ``cluster_store`` value for these members (all by default)."""
        return "etcd://" + ",".join("127.0.0.1:%d" % self.client_ports[name]
                                    for name in (names or self.names))

    def _command(self, name: str, state: str) -> list[str]:
        peers = ",".join("%s=http://127.0.0.1:%d" % (n, self.peer_ports[n])
                         for n in self.names)
        client = "http://127.0.0.1:%d" % self.client_ports[name]
        peer = "http://127.0.0.1:%d" % self.peer_ports[name]
        return [self.binary, "--name", name,
                "--data-dir", str(Path(self.workdir.name) / name),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", peers, "--initial-cluster-state", state,
                "--initial-cluster-token", "sdn-app-test",
                # a member killed is noticed in a few hundred ms, not seconds
                "--heartbeat-interval", "100", "--election-timeout", "1000",
                "--log-level", "warn"]

    def start(self, timeout: float = 20.0) -> EtcdCluster:
        for name in self.names:
            self._spawn(name, "new")
        if not wait_until(self.healthy, timeout):
            self.stop()
            raise EtcdError("etcd did not become healthy")
        return self

    def _spawn(self, name: str, state: str) -> None:
        log = open(self.log_dir / ("%s.log" % name), "ab")  # noqa: SIM115 - the child's
        self.procs[name] = subprocess.Popen(self._command(name, state), stdout=log,
                                            stderr=subprocess.STDOUT,
                                            start_new_session=True)
        log.close()

    def healthy(self, names=None) -> bool:
        """Whether every member named (all running ones) reports healthy."""
        for name in names or [n for n, p in self.procs.items() if p.poll() is None]:
            try:
                url = "http://127.0.0.1:%d/health" % self.client_ports[name]
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if json.loads(resp.read()).get("health") != "true":
                        return False
            except (OSError, ValueError):
                return False
        return True

    def kill(self, name: str) -> None:
        """SIGKILL one member (its data stays, so it can rejoin)."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=5)

    def restart(self, name: str) -> None:
        self.kill(name)
        self._spawn(name, "existing")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.workdir.cleanup()
