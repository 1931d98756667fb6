"""A real Prometheus server (Debian's ``prometheus`` package, installed by
scripts/setup.sh) scraping running controllers, on a free loopback port with a
throw-away data directory: what the end-to-end tests and the demo watch the
controller through, and where the README's sample configuration comes from.

    with PrometheusServer(["127.0.0.1:9302"]) as prom:
        prom.query('rate(of_port_tx_bytes_total[5s])')
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .emulation import free_port, wait_until

JOB = "sdn"


def scrape_config(targets, interval_s: float = 1.0, job: str = JOB) -> str:
    """A prometheus.yml scraping ``targets`` ("host:port" of each controller's
    prometheus_port) every ``interval_s``."""
    interval = "%gs" % interval_s
    lines = ["global:", "  scrape_interval: %s" % interval,
             "  evaluation_interval: %s" % interval, "scrape_configs:",
             "  - job_name: %s" % job, "    scrape_timeout: %s" % interval,
             "    static_configs:", "      - targets: [%s]"
             % ", ".join("'%s'" % t for t in targets)]
    return "\n".join(lines) + "\n"


class PrometheusError(RuntimeError):
    pass


class PrometheusServer:
    """``prometheus`` scraping ``targets``; ``query`` answers PromQL over its HTTP API."""

    def __init__(self, targets, interval_s: float = 1.0, binary: str = "prometheus",
                 log_path=None):
        self.targets = list(targets)
        self.interval_s = interval_s
        self.binary = shutil.which(binary) or binary
        self.port = free_port()
        self.workdir = tempfile.TemporaryDirectory(prefix="sdn-prom-")
        self.log_path = Path(log_path or Path(self.workdir.name) / "prometheus.log")
        self.proc = None

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        work = Path(self.workdir.name)
        config = work / "prometheus.yml"
        config.write_text(scrape_config(self.targets, self.interval_s))
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [self.binary, "--config.file=%s" % config, "--storage.tsdb.path=%s" % (work / "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_until(lambda: self._ready() or self.proc.poll() is not None, timeout) \
                or self.proc.poll() is not None:
            self.stop()
            raise PrometheusError("prometheus did not start; log:\n" + self.log_tail())
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _api(self, path: str, **params):
        url = "%s/api/v1/%s?%s" % (self.url, path, urllib.parse.urlencode(params))
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError("%s: %s" % (path, body.get("error", body)))
        return body["data"]

    def query(self, promql: str) -> list[tuple[dict, float]]:
        """[(labels, value)] of an instant vector query, now."""
        data = self._api("query", query=promql)
        if data["resultType"] != "vector":
            raise PrometheusError("%r is a %s, not a vector" % (promql, data["resultType"]))
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def value(self, promql: str) -> float | None:
        """The single value of a query (None if it has none, error if several)."""
        result = self.query(promql)
        if len(result) > 1:
            raise PrometheusError("%r has %d series" % (promql, len(result)))
        return result[0][1] if result else None

    def targets_up(self) -> bool:
        """Whether every target's last scrape succeeded."""
        active = self._api("targets")["activeTargets"]
        return len(active) == len(self.targets) and all(t["health"] == "up" for t in active)

    def wait_scraped(self, timeout: float = 15.0) -> bool:
        """Until every target has been scraped successfully at least twice (a rate() needs
        two samples)."""
        start = time.monotonic()
        if not wait_until(self.targets_up, timeout):
            return False
        left = max(0.0, timeout - (time.monotonic() - start))
        return bool(wait_until(lambda: (self.value('min(count_over_time(up{job="%s"}[1m]))'
                                                   % JOB) or 0) >= 2, left))

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.workdir.cleanup()
