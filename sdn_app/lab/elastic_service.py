"""A service beside the main job's VR traffic whose pool follows the flash crowd: a VIP
with one backend and standby hosts under reactive pool scaling (the lab actuator starts
and stops real servers); the crowd's users each hold connections to it while the crowd
lasts; afterwards the scaling decisions, with when and why, go into the report."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .emulation import REPO, wait_until

VIP, PORT = "10.0.0.200", 7000
ACTUATOR = "%s -m sdn_app.lab.actuator" % sys.executable
LOAD = [sys.executable, "-m", "sdn_app.lab.service_load"]


class ScaledService:
    def __init__(self, ctl, backend, standby, target: int = 8):
        self.ctl, self.backend, self.standby, self.target = ctl, backend, standby, target
        self.server = None
        self.holders: list = []
        self.crowd_at: float | None = None

    def start(self) -> bool:
        self.server = self.backend.popen(
            [*LOAD, "serve", "--port", str(PORT), "--name", self.backend.name],
            cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        body = {"name": "sessions", "vip": VIP, "port": PORT, "protocol": "tcp",
                "scheduler": "least_conn", "backends": [{"ip": self.backend.IP()}],
                "scaling": {"policy": "reactive", "target": self.target,
                            "min_backends": 1, "max_backends": 1 + len(self.standby),
                            "hold_s": 1, "scale_down_window_s": 5,
                            "standby": [{"ip": h.IP()} for h in self.standby]}}
        status, _ = self.ctl.request("/v1/services", "POST", json.dumps(body).encode())
        return status == 201 and bool(wait_until(lambda: self.states().get(
            self.backend.IP()) == "up", 10))

    def states(self) -> dict:
        try:
            return {b["ip"]: b["state"] for b in self.ctl.get("/v1/services/sessions")[
                "backends"]}
        except RuntimeError:
            return {}

    def crowd_later(self, delay: float, clients, per_client: int, seconds: float) -> None:
        """In ``delay`` s, each client holds ``per_client`` connections for ``seconds``.
        The clients start now and wait (``--at``): four interpreters starting at the
        crowd's moment cost the VR senders, on the emulation's two cores, CPU they need
        then."""
        self.crowd_at = time.time() + delay
        self.holders = [c.popen([*LOAD, "hold", "--dst", VIP, "--port", str(PORT),
                                 "--count", str(per_client), "--seconds", str(seconds),
                                 "--at", "%.3f" % self.crowd_at],
                                cwd=str(REPO), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL) for c in clients]

    def finish(self, began: float, settle: float = 12.0) -> dict:
        """Wait for the crowd's connections and the pool's shrinking (``settle`` s at
        most), then the figures; the service and its servers are taken down."""
        held, broken = 0, 0
        for proc in self.holders:
            try:
                out = json.loads(proc.communicate(timeout=60)[0].decode().strip()
                                 .splitlines()[-1])
                held, broken = held + len(out["names"]), broken + len(out["broken"])
            except (ValueError, IndexError, subprocess.TimeoutExpired):
                proc.kill()
        wait_until(lambda: len(self.states()) <= 1, settle)
        try:
            scaling = self.ctl.get("/v1/services/sessions/scaling")
        except RuntimeError:
            scaling = {"decisions": []}
        asked = time.time()
        self.ctl.request("/v1/services/sessions", "DELETE")
        if self.server is not None:
            self.server.kill()
            self.server.wait()
        for host in self.standby:
            subprocess.run([*ACTUATOR.split(), "stop", "sessions", host.IP(), str(PORT)],
                           check=False)
        return {"vip": "%s:%d" % (VIP, PORT), "target": self.target,
                "crowd_at_s": round(self.crowd_at - began, 1) if self.crowd_at else None,
                "held": held, "broken": broken,
                "decisions": [{"at_s": round(asked - d["age_s"] - began, 1),
                               "size": d["size"], "reason": d["reason"]}
                              for d in scaling["decisions"]]}
