"""A probe stream: UDP packets at a fixed rate carrying a sequence number and the send
time, and a receiver that says what arrived.  Run inside Mininet hosts, which share one
clock, so one-way delay is exact (on separate machines it carries their clock offset).

    python -m sdn_app.lab.probe recv --port 9000 --seconds 12 > result.json
    python -m sdn_app.lab.probe send --dst 10.0.0.2 --port 9000 --rate 1000 --seconds 10

The receiver prints JSON: sent/received/lost, the longest gap between arrivals, the
largest run of consecutive lost sequence numbers, duplicates, reordered packets, and
one-way delay percentiles.  At 1 probe/ms, probes lost = the loss window in ms: run one
short stream around each event (a failure, a repair) to measure that event.

    python -m sdn_app.lab.probe flows --dst 10.0.0.3 --flows 300 --mbps 16 --seconds 4

sends many flows that differ only in their UDP source port (how hashing splits them is
read off the switches' counters).
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import struct
import sys
import time

from .measure import ms, percentile

HEADER = struct.Struct("!4sIQd")  # magic, stream id, sequence number, send time (s)
MAGIC = b"PRB1"
PAYLOAD = 64  # bytes per probe, header included


def encode(stream: int, seq: int, sent: float) -> bytes:
    return HEADER.pack(MAGIC, stream, seq, sent).ljust(PAYLOAD, b"\0")


def decode(data: bytes):
    """(stream, seq, send time) or None for anything that is not a probe."""
    if len(data) < HEADER.size or data[:4] != MAGIC:
        return None
    _, stream, seq, sent = HEADER.unpack_from(data)
    return stream, seq, sent


def analyse(arrivals: list[tuple[int, float, float]], sent: int | None = None) -> dict:
    """Summary of a probe trace.  ``arrivals``: (seq, send time, receive time) in arrival
    order; ``sent``: how many were sent (else the highest sequence seen + 1)."""
    seen, duplicates, reordered, highest = set(), 0, 0, -1
    delays = []
    for seq, send_time, recv_time in arrivals:
        if seq in seen:
            duplicates += 1
            continue
        seen.add(seq)
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
        delays.append(recv_time - send_time)
    total = sent if sent is not None else highest + 1
    lost = sorted(set(range(total)) - seen)
    longest_run = run = 0
    for i, seq in enumerate(lost):
        run = run + 1 if i and seq == lost[i - 1] + 1 else 1
        longest_run = max(longest_run, run)
    times = sorted(r for _, _, r in arrivals)
    gap = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)
    delays.sort()

    def delay_ms(p):
        return ms(percentile(delays, p))
    return {"sent": total, "received": len(seen), "lost": len(lost),
            "longest_lost_run": longest_run, "longest_gap_ms": round(1000 * gap, 3),
            "duplicates": duplicates, "reordered": reordered,
            "delay_ms": {"p50": delay_ms(50), "p99": delay_ms(99), "max": delay_ms(100)}}


def send(dst: str, port: int, rate: float, seconds: float, stream: int = 0) -> int:
    """Send ``rate`` probes per second for ``seconds`` on an absolute schedule (late
    packets are sent at once, so scheduling jitter does not lower the count)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    interval, count = 1.0 / rate, int(rate * seconds)
    start = time.time()
    for seq in range(count):
        due = start + seq * interval
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        try:
            sock.sendto(encode(stream, seq, time.time()), (dst, port))
        except OSError:
            pass  # no route or buffer full: counted as lost by the receiver
    return count


def udp_datagrams(port, until: float, buffer_bytes: int = 8 << 20):
    """(payload, receive time) of every datagram arriving on ``port`` (or on each of a
    list of ports) until epoch time ``until``: the receiving loop of the probe and of
    the VR receiver (sdn_app.lab.vr)."""
    ports = [port] if isinstance(port, int) else list(port)
    if len(ports) == 1:  # one blocking recv per datagram: the cheapest loop, measured
        yield from _one_port(ports[0], until, buffer_bytes)
        return
    sockets = []
    try:
        for number in ports:
            sockets.append(_receiving_socket(number, buffer_bytes))
            sockets[-1].setblocking(False)
        while time.time() < until:
            ready, _, _ = select.select(sockets, [], [], 0.1)
            for sock in ready:
                while True:  # drain it: one select per burst, not per datagram
                    try:
                        data = sock.recv(65535)
                    except BlockingIOError:
                        break
                    yield data, time.time()
    finally:
        for sock in sockets:
            sock.close()


def _one_port(port: int, until: float, buffer_bytes: int):
    """udp_datagrams on one port.  (The select loop over several costs ~13 us more per
    datagram, measured on loopback: over a dozen receivers at a few hundred packets per
    second each, CPU the emulated switches need.)"""
    sock = _receiving_socket(port, buffer_bytes)
    sock.settimeout(0.1)
    with sock:
        while time.time() < until:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            yield data, time.time()


def _receiving_socket(port: int, buffer_bytes: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
    sock.bind(("0.0.0.0", port))
    return sock


def receive(port: int, seconds: float) -> list[tuple[int, float, float]]:
    arrivals = []
    for data, now in udp_datagrams(port, time.time() + seconds):
        probe = decode(data)
        if probe is not None:
            arrivals.append((probe[1], probe[2], now))
    return arrivals


def send_flows(dst: str, port: int, flows: int, seconds: float, mbps: float,
               packet_bytes: int = 1200) -> int:
    """``flows`` UDP flows to one address and port that differ only in their source
    port (a socket each), ``mbps`` in all, round robin: what a hash split must spread
    and a switch's default SELECT hash does not.  Returns the datagrams sent."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < flows + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, flows + 64), hard))
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(flows)]
    payload = b"\0" * max(1, packet_bytes - 28)  # IPv4 + UDP headers
    interval = packet_bytes * 8 / (mbps * 1e6)
    start, sent = time.time(), 0
    try:
        while time.time() - start < seconds:
            wait = start + sent * interval - time.time()
            if wait > 0:
                time.sleep(wait)
            try:
                socks[sent % flows].sendto(payload, (dst, port))
            except OSError:
                pass  # buffer full: counted by whoever counts what arrives
            sent += 1
    finally:
        for sock in socks:
            sock.close()
    return sent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="UDP probe stream (see module doc)")
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, default=9000)
    s.add_argument("--rate", type=float, default=1000.0, help="probes per second")
    s.add_argument("--seconds", type=float, required=True)
    f = sub.add_parser("flows", help="many UDP flows differing only in source port")
    f.add_argument("--dst", required=True)
    f.add_argument("--port", type=int, default=9000)
    f.add_argument("--flows", type=int, default=300)
    f.add_argument("--mbps", type=float, default=4.0, help="all flows together")
    f.add_argument("--packet-bytes", type=int, default=1200)
    f.add_argument("--seconds", type=float, required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, default=9000)
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--sent", type=int, help="probes the sender sent (for trailing loss)")
    args = parser.parse_args(argv)
    if args.mode == "flows":
        if args.flows < 1 or args.mbps <= 0 or args.seconds <= 0 or args.packet_bytes < 29:
            parser.error("--flows, --mbps, --seconds and --packet-bytes must be positive")
        print(json.dumps({"sent": send_flows(args.dst, args.port, args.flows, args.seconds,
                                             args.mbps, args.packet_bytes)}))
        return 0
    if args.mode == "send":
        if args.rate <= 0 or args.seconds <= 0:
            parser.error("--rate and --seconds must be positive")
        print(json.dumps({"sent": send(args.dst, args.port, args.rate, args.seconds)}))
        return 0
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    print(json.dumps(analyse(receive(args.port, args.seconds), args.sent)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
