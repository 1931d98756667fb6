"""Real TCP and UDP servers and clients for service tests, run inside Mininet hosts.

    python -m sdn_app.lab.service_load serve --port 8000 --name h3 [--udp]
        answers every connection with its name (after --delay-ms: a slow backend),
        then keeps it open until the client closes (so a connection can be held open
        across a pool change); with --udp, answers every datagram with its name
        (request/response); with --agent-port, a load agent answers there (UDP) with
        the connections it has open;
    python -m sdn_app.lab.service_load connect --dst 10.0.0.100 --port 8000 --count 300
        opens connections one after another (or for --seconds, if given), reads the
        name that answered, closes; prints JSON {"answers": {name: n}, "failed": n,
        "seconds": s, "latency_ms": [p50, p99]}, and with --timeline every attempt as
        [wall-clock start, name or null]; with --udp each attempt is one request from
        a new source port;
    python -m sdn_app.lab.service_load arrivals --dst 10.0.0.100 --port 8000 --rate 50
        opens a connection every 1/rate s, each in its own thread (open-loop, as
        independent users arrive), for --seconds; prints answers, failed, latency_ms
        [p50, p99] and latency_mean_ms;
    python -m sdn_app.lab.service_load hold --dst 10.0.0.100 --port 8000 --count 5
        opens ``count`` connections, prints the names that answered, then every second
        checks each one still echoes; prints JSON {"names": [...], "broken": [...]} at the
        end of ``--seconds``.

The clients (arrivals, connect, hold) take ``--at <epoch seconds>``: started early, they
begin then, so starting them costs nothing at that moment.
"""

from __future__ import annotations

import argparse
import json
import socket
import socketserver
import sys
import threading
import time

from sdn_app.lab.measure import percentile


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        with self.server.lock:
            self.server.open += 1
        try:
            self._serve()
        finally:
            with self.server.lock:
                self.server.open -= 1

    def _serve(self):
        if self.server.workers is not None:  # a capacity: so many requests at a time
            with self.server.workers:
                time.sleep(self.server.delay)
        elif self.server.delay:  # a slow backend: it takes this long to answer
            time.sleep(self.server.delay)
        self.request.sendall(self.server.name.encode() + b"\n")
        while True:
            try:
                data = self.request.recv(4096)
            except OSError:
                return
            if not data:
                return
            self.request.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512


def serve(port: int, name: str, udp: bool = False, delay_ms: float = 0.0,
          startup_s: float = 0.0, workers: int = 0, agent_port: int = 0) -> None:
    """``workers`` > 0: at most that many requests are served at a time, each taking
    ``delay_ms`` (a capacity of workers / delay requests per second; beyond it requests
    queue, as on a saturated server).  ``agent_port``: a load agent there answers any
    datagram with "load <connections open now>" (the controller's health check asks)."""
    time.sleep(startup_s)  # a backend that takes this long to start serving
    if udp:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", port))
        while True:
            _, peer = sock.recvfrom(2048)
            sock.sendto(name.encode() + b"\n", peer)
    server = _Server(("0.0.0.0", port), _Handler)
    server.name, server.delay = name, delay_ms / 1000.0
    server.workers = threading.Semaphore(workers) if workers > 0 else None
    server.lock, server.open = threading.Lock(), 0
    if agent_port:
        threading.Thread(target=_load_agent, args=(server, agent_port), daemon=True).start()
    server.serve_forever()


def _load_agent(server, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        _, peer = sock.recvfrom(2048)
        sock.sendto(b"load %d\n" % server.open, peer)


def _p50_p99(latencies: list) -> list:
    """[p50, p99] of sorted latencies (ms), by our one percentile; [] if none."""
    return [round(percentile(latencies, p), 3) for p in (50, 99)] if latencies else []


def _ask_udp(dst: str, port: int, timeout: float, source: str = "") -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.sendto(b"?", (dst, port))
        data, _ = sock.recvfrom(2048)
    return data.decode().strip()


def _open(dst: str, port: int, timeout: float,
          source: str = "") -> tuple[socket.socket, str]:
    sock = socket.create_connection((dst, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    sock.settimeout(timeout)
    name = b""
    while not name.endswith(b"\n"):
        chunk = sock.recv(64)
        if not chunk:
            raise OSError("closed before answering")
        name += chunk
    return sock, name.decode().strip()


def connect(dst: str, port: int, count: int, timeout: float, seconds: float = 0.0,
            udp: bool = False, timeline: bool = False, sources=()) -> dict:
    """Attempts one after another: ``count`` of them, or as many as fit in ``seconds``;
    from each of ``sources`` (local addresses) in turn if given."""
    answers: dict = {}
    failed = 0
    latencies = []
    attempts = []
    start = time.monotonic()
    done = 0
    while (time.monotonic() - start < seconds) if seconds else done < count:
        done += 1
        began, wall = time.monotonic(), time.time()
        source = sources[(done - 1) % len(sources)] if sources else ""
        try:
            if udp:
                name = _ask_udp(dst, port, timeout, source)
            else:
                sock, name = _open(dst, port, timeout, source)
                sock.close()
        except OSError:
            failed += 1
            attempts.append([round(wall, 4), None])
            continue
        latencies.append(1000.0 * (time.monotonic() - began))
        answers[name] = answers.get(name, 0) + 1
        attempts.append([round(wall, 4), name])
    latencies.sort()
    out = {"answers": answers, "failed": failed,
           "seconds": round(time.monotonic() - start, 3),
           "latency_ms": _p50_p99(latencies)}
    if timeline:
        out["timeline"] = attempts
    return out


def arrivals(dst: str, port: int, rate: float, seconds: float, timeout: float,
             budget_ms: float = 0.0) -> dict:
    """Open-loop load: a new connection every 1/``rate`` s for ``seconds``, each in its
    own thread whether or not the earlier ones were answered (as independent users
    arrive), so a slow backend's connections pile up."""
    results: list = []
    lock = threading.Lock()

    def one():
        began = time.monotonic()
        try:
            sock, name = _open(dst, port, timeout)
            sock.close()
        except OSError:
            name = None
        with lock:
            results.append((name, 1000.0 * (time.monotonic() - began)))
    threads = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        thread = threading.Thread(target=one, daemon=True)
        thread.start()
        threads.append(thread)
        n += 1
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
    for thread in threads:
        thread.join(timeout + 1.0)
    answers: dict = {}
    for name, _ in results:
        if name is not None:
            answers[name] = answers.get(name, 0) + 1
    latencies = sorted(ms for name, ms in results if name is not None)
    return {"answers": answers, "failed": n - sum(answers.values()),
            "latency_ms": _p50_p99(latencies),
            "latency_mean_ms": round(sum(latencies) / len(latencies), 3) if latencies
            else None,
            "over_budget": sum(1 for ms in latencies if budget_ms and ms > budget_ms)}


def hold(dst: str, port: int, count: int, seconds: float, timeout: float) -> dict:
    held = [_open(dst, port, timeout) for _ in range(count)]
    print(json.dumps({"names": [name for _, name in held]}), flush=True)
    broken = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for i, (sock, _) in enumerate(held):
            if i in broken:
                continue
            try:
                sock.sendall(b"ping\n")
                if sock.recv(64) != b"ping\n":
                    broken.add(i)
            except OSError:
                broken.add(i)
        time.sleep(0.5)
    for sock, _ in held:
        sock.close()
    return {"names": [name for _, name in held], "broken": sorted(broken)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--udp", action="store_true")
    s.add_argument("--delay-ms", type=float, default=0.0, help="answer this much later")
    s.add_argument("--startup-s", type=float, default=0.0, help="listen only after this")
    s.add_argument("--agent-port", type=int, default=0,
                   help="answer load questions (UDP) with the connections open")
    s.add_argument("--workers", type=int, default=0,
                   help="requests served at a time (0: no limit), each --delay-ms long")
    a = sub.add_parser("arrivals")
    a.add_argument("--dst", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--rate", type=float, default=50.0, help="new connections per second")
    a.add_argument("--seconds", type=float, default=5.0)
    a.add_argument("--timeout", type=float, default=3.0)
    a.add_argument("--budget-ms", type=float, default=0.0,
                   help="count answered requests slower than this (over_budget)")
    clients = [a]
    for name in ("connect", "hold"):
        c = sub.add_parser(name)
        clients.append(c)
        c.add_argument("--dst", required=True)
        c.add_argument("--port", type=int, required=True)
        c.add_argument("--count", type=int, default=100)
        c.add_argument("--timeout", type=float, default=2.0)
        c.add_argument("--seconds", type=float, default=0.0 if name == "connect" else 5.0)
        c.add_argument("--udp", action="store_true")
        c.add_argument("--timeline", action="store_true")
        c.add_argument("--sources", default="", help="comma-separated local addresses")
    for c in clients:
        c.add_argument("--at", type=float, default=0.0,
                       help="begin at this wall-clock time (the process started, and its "
                            "interpreter loaded, ahead of the moment)")
    args = parser.parse_args(argv)
    if getattr(args, "at", 0.0):
        time.sleep(max(0.0, args.at - time.time()))
    if args.command == "serve":
        serve(args.port, args.name, args.udp, args.delay_ms, args.startup_s, args.workers,
              args.agent_port)
        return 0
    if args.command == "arrivals":
        print(json.dumps(arrivals(args.dst, args.port, args.rate, args.seconds,
                                  args.timeout, args.budget_ms)))
        return 0
    if args.command == "connect":
        print(json.dumps(connect(args.dst, args.port, args.count, args.timeout,
                                 args.seconds, args.udp, args.timeline,
                                 [a for a in args.sources.split(",") if a])))
    else:
        print(json.dumps(hold(args.dst, args.port, args.count, args.seconds, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
