"""Pool scaling in the Ryu layer (core/scaling.py decides): every tick each scaled
service's load is measured from the switches' counts and its ``Scaler`` asked; a larger
pool starts standby backends through the actuator and adds each one once its start
succeeded (it takes connections only after its health check passes, then slow start);
a smaller one drains backends, and one started for load is stopped when its drain
ends or it is removed (``stopped``), and all a service started when the service is
removed (``service_removed``).  How long each started backend took from being asked for
to passing its checks goes back to its service's scaler, whose look-ahead covers the
slowest of the last few.

The actuator is the ``scaling_command`` setting, run as ``<command> start|stop
<service> <ip> <port>`` in a green thread: exit 0 is done; anything else, or no answer
within ACTUATOR_TIMEOUT, is retried after 1, 2 and 4 s and then given up, each failure
an event (``scaling_failed``) and a log line, never an exception in the controller.
"""

from __future__ import annotations

import shlex
import subprocess
import time

from ..core.services import ServiceTable

ACTUATOR_TIMEOUT = 30.0
RETRY_DELAYS = (1.0, 2.0, 4.0)


class PoolScaling:
    def __init__(self, table: ServiceTable, command: str, services_changed, event, logger,
                 spawn, sleep):
        self.table = table
        self.command = shlex.split(command) if command else []
        self.services_changed = services_changed  # (kind, **details): event + rebuild
        self.event = event
        self.logger = logger
        self.spawn, self.sleep = spawn, sleep  # ryu.lib.hub's, so nothing blocks
        self.starting: dict = {}  # (service, ip) -> BackendSpec being started
        self.asked_at: dict = {}  # (service, ip) -> when its start was asked, until it serves
        # (service, ip) -> BackendSpec started for load and in the pool, in start order
        self.started: dict = {}

    def tick(self, now: float, active: dict, rate_of, requests_of) -> None:
        """``active``: {backend id: connections}; ``rate_of(ip)``: bits/s toward a
        backend; ``requests_of(name)``: a service's new connections/s."""
        self._measure_start_ups(now)
        for name, service in list(self.table.services.items()):
            spec = service.spec.scaling
            if spec.policy == "off":
                continue
            load = service.scaling_load(now, active, rate_of, requests_of)
            if load is None:  # nothing measured (no agent has answered): no decision
                continue
            service.scaler.observe(now, load)
            starting = {ip for (svc, ip) in self.starting if svc == name}
            current = len(service.serving()) + len(starting)
            free = service.standby_free(starting) if self.command else []
            decision = service.scaler.desired(now, current, current + len(free))
            if decision is None:
                continue
            self.event("scale", service=name, size_from=current, size_to=decision.size,
                       reason=decision.reason)
            self.logger.info("service %s: pool %d -> %d (%s)", name, current,
                             decision.size, decision.reason)
            if decision.size > current:
                for backend in free[:decision.size - current]:
                    self.starting[(name, backend.ip)] = backend
                    self.asked_at[(name, backend.ip)] = now
                    self.spawn(self._start, name, backend)
            else:
                ours = [ip for (svc, ip) in self.started if svc == name]
                for ip in service.scale_in_choice(current - decision.size, active, ours):
                    service.set_draining(ip, True)
                    self.services_changed("backend_changed", service=name, ip=ip,
                                          state="draining", reason="scale in")

    def _measure_start_ups(self, now: float) -> None:
        """Each backend started for load that now serves tells its service's scaler how
        long that took; one that failed to start or left is forgotten."""
        for key, asked in list(self.asked_at.items()):
            name, ip = key
            service = self.table.services.get(name)
            backend = service.backends.get(ip) if service is not None else None
            if backend is not None and backend.health.up:
                service.scaler.ready_seen(backend.health.last_change - asked)
            elif key in self.starting or backend is not None:
                continue  # still starting, or started and not yet checked up
            del self.asked_at[key]

    def _start(self, name: str, backend) -> None:
        try:
            if self._run("start", name, backend):
                service = self.table.services.get(name)
                if service is not None and backend.ip not in service.backends:
                    self.table.add_backend(name, backend)
                    self.started[(name, backend.ip)] = backend
                    self.services_changed("backend_added", service=name, ip=backend.ip,
                                          reason="scale out")
        except Exception:  # a clash found meanwhile (REST added it): logged, not raised
            self.logger.exception("scaling %s out to %s failed", name, backend.ip)
        finally:
            self.starting.pop((name, backend.ip), None)

    def stopped(self, name: str, ip: str) -> None:
        """A backend left the pool (drained, or removed over REST): stop it if it was
        started for load."""
        backend = self.started.pop((name, ip), None)
        if backend is not None:
            self.spawn(self._run, "stop", name, backend)

    def service_removed(self, name: str) -> None:
        """A service was deleted: stop every backend it started for load."""
        for svc, ip in list(self.started):
            if svc == name:
                self.stopped(name, ip)

    def _run(self, action: str, name: str, backend) -> bool:
        args = [*self.command, action, name, backend.ip, str(backend.port)]
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            self.sleep(delay)
            problem = self._once(args)
            if problem is None:
                self.event("scaling_" + action, service=name, ip=backend.ip)
                return True
            self.logger.warning("scaling %s %s %s failed (attempt %d): %s", action, name,
                                backend.ip, attempt + 1, problem)
            self.event("scaling_failed", service=name, ip=backend.ip, action=action,
                       attempt=attempt + 1, problem=problem)
        return False

    def _once(self, args) -> str | None:
        """Run the actuator once; None if it succeeded, else what went wrong."""
        try:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        except OSError as exc:
            return str(exc)
        deadline = time.monotonic() + ACTUATOR_TIMEOUT
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                return "no answer in %.0f s" % ACTUATOR_TIMEOUT
            self.sleep(0.05)
        if proc.returncode != 0:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            return "exit %d: %s" % (proc.returncode, err[-300:])
        return None
