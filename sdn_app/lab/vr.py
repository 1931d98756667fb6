"""VR-like ("metaverse") traffic: a model, a sender, a receiver and the QoS analysis.

Model (after 3GPP TR 38.838's XR traffic model and ALVR's defaults): per user a downlink
video stream of ``fps`` frames a second at ``mbps`` (times ``scale``, to fit emulated
links); each frame's size is a truncated Gaussian around the mean frame size (sd 10 %,
bounded to 50-150 %), every ``keyframe_seconds`` a key frame ``keyframe_factor`` times
larger (the other frames are scaled so the mean bitrate stays as asked); a frame leaves
as a back-to-back burst of ``packet_bytes`` UDP payloads (or paced over ``pacing`` of the
frame interval).  Uplink, every ``pose_ms`` a ``pose_bytes`` pose/control packet.
Background traffic: on/off bursts of constant-rate UDP.  Who talks when is a list of
``Session``s, built from a schedule or at random with a seed, so runs repeat exactly.

Every packet carries kind, stream id, frame id, packet index/count, a per-stream
sequence number, the frame's start time and its own send time.  Senders log every packet
they send and receivers every packet they get (binary records, ``RECORD``); ``analyse``
joins the two logs, so loss is exact even for frames that vanished whole.  One-way delay
is exact inside Mininet (all hosts share one clock); between separate machines it
carries their clock offset.

    python scripts/vr_traffic.py recv --port 9100 --seconds 12 --log recv.bin
    python scripts/vr_traffic.py send --dst 10.0.0.2 --port 9100 --seconds 10 --log sent.bin
    python scripts/vr_traffic.py analyse --sent sent.bin --received recv.bin
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

from .measure import ms, percentile
from .probe import udp_datagrams

VIDEO, POSE, BULK = 0, 1, 2
KIND_NAMES = {VIDEO: "video", POSE: "pose", BULK: "background"}
# Each kind goes to its own UDP port, the given port plus this, as VR runtimes carry
# video and tracking on channels of their own: the network can then tell a session's
# video (what admission control admits, core/admission.py) from its pose and from bulk.
KIND_PORT_OFFSET = {VIDEO: 0, POSE: 1, BULK: 2}


def kind_port(port: int, kind: int) -> int:
    """The UDP port packets of ``kind`` go to, for VR traffic on ``port``."""
    return port + KIND_PORT_OFFSET[kind]

# magic, kind, stream, frame, packet index, packet count, sequence, frame start, send time
HEADER = struct.Struct("!4sBIIHHIdd")
MAGIC = b"VRT1"
# a log record: kind, stream, frame, index, count, seq, frame start, sent, received, bytes
RECORD = struct.Struct("<BIIHHIdddI")


@dataclass(frozen=True)
class Profile:
    """One user's traffic; defaults: a 30 Mbit/s 90 fps headset, pose every 4 ms."""

    fps: float = 90.0
    mbps: float = 30.0
    scale: float = 1.0
    size_sd: float = 0.10
    size_min: float = 0.5
    size_max: float = 1.5
    keyframe_seconds: float = 2.0
    keyframe_factor: float = 3.0
    packet_bytes: int = 1400
    pacing: float = 0.0
    pose_ms: float = 4.0
    pose_bytes: int = 100

    def check(self) -> None:
        """Raise ValueError naming the first unusable field."""
        rules = [("fps", 1 <= self.fps <= 1000), ("mbps", self.mbps > 0),
                 ("scale", 0 < self.scale <= 10), ("size_sd", 0 <= self.size_sd < 1),
                 ("size_min", 0 < self.size_min <= 1 <= self.size_max),
                 ("keyframe_seconds", self.keyframe_seconds >= 0),
                 ("keyframe_factor", self.keyframe_factor >= 1),
                 ("packet_bytes", HEADER.size <= self.packet_bytes <= 8972),
                 ("pacing", 0 <= self.pacing <= 1),
                 ("pose_ms", self.pose_ms >= 0.5),
                 ("pose_bytes", HEADER.size <= self.pose_bytes <= 8972)]
        for name, ok in rules:
            if not ok:
                raise ValueError("bad %s: %r" % (name, getattr(self, name)))

    @property
    def frame_interval(self) -> float:
        return 1.0 / self.fps

    @property
    def mean_frame_bytes(self) -> float:
        return self.mbps * self.scale * 1e6 / 8 / self.fps

    @property
    def keyframe_every(self) -> int:
        """Frames from one key frame to the next; 0 for none."""
        return round(self.keyframe_seconds * self.fps) if self.keyframe_seconds else 0


def frame_sizes(profile: Profile, rng: random.Random):
    """Endless frame sizes in bytes.  Key frames (frame 0 and every keyframe_every-th)
    are keyframe_factor times the others, whose mean is lowered to keep the bitrate."""
    every, factor = profile.keyframe_every, profile.keyframe_factor
    base = profile.mean_frame_bytes
    if every > 1:
        base = base * every / (every - 1 + factor)
    frame = 0
    while True:
        nominal = base * (factor if every and frame % every == 0 else 1.0)
        while True:  # truncated Gaussian: redraw outside the bounds
            ratio = rng.gauss(1.0, profile.size_sd)
            if profile.size_min <= ratio <= profile.size_max:
                break
        yield max(1, round(nominal * ratio))
        frame += 1


def packetize(frame_bytes: int, packet_bytes: int) -> list[int]:
    """Payload sizes of a frame's packets: full packets, then the remainder (never
    smaller than the header it has to carry)."""
    count = max(1, math.ceil(frame_bytes / packet_bytes))
    last = frame_bytes - packet_bytes * (count - 1)
    return [packet_bytes] * (count - 1) + [max(HEADER.size, last)]


@dataclass(frozen=True)
class Session:
    """``kind`` traffic on stream ``stream`` from ``src`` to ``dst`` (host names or
    addresses) between ``start`` and ``stop`` seconds after the scenario starts.  A VR
    user is two sessions on one stream id: VIDEO server->user and POSE user->server."""

    stream: int
    kind: int
    src: str
    dst: str
    start: float
    stop: float
    mbps: float = 0.0  # BULK only: its constant rate while on


def vr_user(stream: int, user: str, server: str, start: float, stop: float) -> list[Session]:
    return [Session(stream, VIDEO, server, user, start, stop),
            Session(stream, POSE, user, server, start, stop)]


def flash_crowd(pairs, first_stream: int, at: float, stop: float, seed: int,
                spread: float = 1.0) -> list[Session]:
    """VR users (``pairs`` of (user, server)) joining at random within ``spread``
    seconds after ``at`` and staying until ``stop``."""
    rng = random.Random(seed)
    sessions = []
    for i, (user, server) in enumerate(pairs):
        sessions += vr_user(first_stream + i, user, server, at + rng.uniform(0, spread), stop)
    return sessions


def on_off(src: str, dst: str, stream: int, kind: int, duration: float, seed: int,
           mean_on: float, mean_off: float, mbps: float = 0.0) -> list[Session]:
    """Exponentially distributed on and off periods (seeded) within [0, duration)."""
    if mean_on <= 0 or mean_off <= 0:
        raise ValueError("mean on and off times must be positive")
    rng = random.Random(seed)
    sessions, t = [], rng.expovariate(1 / mean_off)
    while t < duration:
        end = min(duration, t + rng.expovariate(1 / mean_on))
        sessions.append(Session(stream, kind, src, dst, t, end, mbps))
        t = end + rng.expovariate(1 / mean_off)
    return sessions


def churn(pairs, first_stream: int, duration: float, seed: int, mean_on: float,
          mean_off: float) -> list[Session]:
    """VR users (``pairs`` of (user, server)) that come and go at random: each user's
    on and off periods are exponential (seeded); every on period is a new stream."""
    sessions, stream = [], first_stream
    for i, (user, server) in enumerate(pairs):
        for period in on_off(user, server, 0, VIDEO, duration, seed * 7919 + i,
                             mean_on, mean_off):
            sessions += vr_user(stream, user, server, period.start, period.stop)
            stream += 1
    return sessions


# -- sending ------------------------------------------------------------------------

def packet_plan(session: Session, profile: Profile, seed: int):
    """(offset from scenario start, frame, index, count, frame start offset, bytes) for
    every packet of ``session``, in time order.  Deterministic for a seed."""
    rng = random.Random("%d/%d/%d" % (seed, session.stream, session.kind))
    t, frame = session.start, 0
    if session.kind == VIDEO:
        sizes = frame_sizes(profile, rng)
        while t < session.stop:
            packets = packetize(next(sizes), profile.packet_bytes)
            step = profile.pacing * profile.frame_interval / len(packets)
            for index, size in enumerate(packets):
                yield t + index * step, frame, index, len(packets), t, size
            frame += 1
            t = session.start + frame * profile.frame_interval
    elif session.kind == POSE:
        while t < session.stop:
            yield t, frame, 0, 1, t, profile.pose_bytes
            frame += 1
            t = session.start + frame * profile.pose_ms / 1000
    else:
        gap = profile.packet_bytes * 8 / (session.mbps * 1e6)
        while t < session.stop:
            yield t, frame, 0, 1, t, profile.packet_bytes
            frame += 1
            t = session.start + frame * gap


def send(sessions, addresses: dict, port: int, profile: Profile, seed: int,
         start_at: float, log=None, source_ports: dict | None = None) -> int:
    """Send every packet of ``sessions`` on their absolute schedule from ``start_at``
    (epoch seconds; late packets go at once, so a busy CPU delays but never thins the
    stream).  ``addresses`` maps a session's dst to an IP.  Logs each packet sent to
    ``log`` (a binary file) and returns the count.  Each stream (and kind) sends from
    its own source port (_stream_socket); ``source_ports`` ({}) gets them,
    {(kind, stream): port}, as what the network sees of each stream (admission control
    names the streams it refused by their addresses and ports)."""
    sockets: dict = {}  # (kind, stream) -> its own UDP socket, so its own source port
    plans = [(packet_plan(s, profile, seed), s) for s in sessions]
    heap = []
    for i, (plan, _) in enumerate(plans):
        first = next(plan, None)
        if first is not None:
            heap.append((first[0], i, first))
    heapq.heapify(heap)
    # one sequence per stream, across its sessions: a background stream's on periods
    # are sessions of one stream, and the analysis joins packets by (kind, stream, seq)
    seqs: dict = {}
    padding = bytes(9000)
    out, sent = [], 0
    try:
        while heap:
            offset, i, (_, frame, index, count, frame_start, size) = heapq.heappop(heap)
            session = plans[i][1]
            due = start_at + offset
            delay = due - time.time()
            if delay > 0.0005:
                time.sleep(delay)
            now = time.time()
            key = (session.kind, session.stream)
            seq = seqs[key] = seqs.get(key, -1) + 1
            header = HEADER.pack(MAGIC, session.kind, session.stream, frame, index, count,
                                 seq, start_at + frame_start, now)
            sock = sockets.get(key)
            if sock is None:
                sock = sockets[key] = _stream_socket()
                if source_ports is not None:
                    source_ports[key] = sock.getsockname()[1]
            # Logged before it is sent: a signal between the two then costs at most the
            # last packet, counted lost, instead of a received packet no log has sent.
            out.append(RECORD.pack(session.kind, session.stream, frame, index, count, seq,
                                   start_at + frame_start, now, 0.0, size))
            try:
                sock.sendto(header + padding[:size - HEADER.size],
                            (addresses.get(session.dst, session.dst),
                             kind_port(port, session.kind)))
            except OSError:
                pass  # no route or buffer full: the receiver counts it as lost
            sent += 1
            if log is not None and len(out) >= 4096:
                log.write(b"".join(out))
                out.clear()
            nxt = next(plans[i][0], None)
            if nxt is not None:
                heapq.heappush(heap, (nxt[0], i, nxt))
    finally:  # a stopped sender still leaves the log of what it sent
        for sock in sockets.values():
            sock.close()
        if log is not None:
            log.write(b"".join(out))
            log.flush()
    return sent


def _stream_socket() -> socket.socket:
    """A UDP socket for one stream.  Each stream sends from its own (ephemeral) source
    port, as separate headsets or sessions do: streams to users who share a host are
    then separate flows, which a switch can hash or a controller place apart; one socket
    for every stream of a sender made them a single 5-tuple that nothing could split."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind(("0.0.0.0", 0))  # its port known before it sends (source_ports)
    return sock


def receive(port: int, until: float, log, kinds=tuple(KIND_PORT_OFFSET)) -> int:
    """Log every VR packet of ``kinds`` arriving for ``port`` (each kind's port,
    kind_port) until epoch time ``until``."""
    out, count = [], 0
    try:
        for data, now in udp_datagrams([kind_port(port, k) for k in kinds], until):
            if len(data) < HEADER.size or data[:4] != MAGIC:
                continue
            _, kind, stream, frame, index, total, seq, frame_start, sent = \
                HEADER.unpack_from(data)
            out.append(RECORD.pack(kind, stream, frame, index, total, seq, frame_start,
                                   sent, now, len(data)))
            count += 1
            if len(out) >= 4096:
                log.write(b"".join(out))
                out.clear()
    finally:  # a stopped receiver still leaves the log of what arrived
        log.write(b"".join(out))
        log.flush()
    return count


def read_log(path) -> list[tuple]:
    with open(path, "rb") as f:
        data = f.read()
    whole = len(data) - len(data) % RECORD.size  # a killed writer may leave a fragment
    return list(RECORD.iter_unpack(data[:whole]))


# -- analysis -----------------------------------------------------------------------

@dataclass
class Phase:
    name: str
    start: float  # epoch seconds
    end: float


@dataclass
class _Tally:
    """Counters for one kind of traffic in one phase (and one stream)."""

    sent: int = 0
    received: int = 0
    duplicates: int = 0
    reordered: int = 0
    bytes: int = 0
    delays: list = field(default_factory=list)
    jitter_sum: float = 0.0
    jitter_n: int = 0
    frames: int = 0
    frames_complete: int = 0
    completions: list = field(default_factory=list)
    late: int = 0  # frames past the budget (complete or not), or late pose packets
    outage: float = 0.0  # longest send-time span of consecutive lost packets

    def merge(self, other: _Tally) -> None:
        for name in ("sent", "received", "duplicates", "reordered", "bytes", "jitter_n",
                     "frames", "frames_complete", "late"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.jitter_sum += other.jitter_sum
        self.delays += other.delays
        self.completions += other.completions
        self.outage = max(self.outage, other.outage)

    def summary(self, kind: int, seconds: float) -> dict:
        self.delays.sort()
        self.completions.sort()
        lost = self.sent - self.received
        out = {"packets_sent": self.sent, "packets_received": self.received,
               "packets_lost": lost,
               "loss_pct": round(100 * lost / self.sent, 3) if self.sent else 0.0,
               "duplicates": self.duplicates, "reordered": self.reordered,
               "throughput_mbps": round(self.bytes * 8 / seconds / 1e6, 3) if seconds else 0,
               "delay_ms": {"p50": ms(percentile(self.delays, 50)),
                            "p95": ms(percentile(self.delays, 95)),
                            "p99": ms(percentile(self.delays, 99))},
               "jitter_ms": round(1000 * self.jitter_sum / self.jitter_n, 3)
               if self.jitter_n else None,
               "longest_outage_ms": ms(self.outage)}
        if kind == VIDEO:
            out.update({
                "frames_sent": self.frames, "frames_complete": self.frames_complete,
                "frame_misses": self.late,
                "frame_miss_pct": round(100 * self.late / self.frames, 3) if self.frames else 0.0,
                "frame_completion_ms": {"p50": ms(percentile(self.completions, 50)),
                                        "p95": ms(percentile(self.completions, 95)),
                                        "p99": ms(percentile(self.completions, 99))}})
        elif kind == POSE:
            out["late_pose"] = self.late
        return out


def _stream_tally(sent: list[tuple], got: dict, kind: int, budget: float) -> _Tally:
    """A tally of one stream's packets ``sent`` (log records, in sequence order) in one
    phase; ``got`` maps seq to the receive records of that stream."""
    tally = _Tally(sent=len(sent))
    last_transit, highest = None, -1
    firsts = {}  # (kind, stream, seq) -> first copy received, as video_frames wants it
    lost_from = None
    for record in sent:
        seq, send_time = record[5], record[7]
        copies = got.get(seq, ())
        if not copies:
            if lost_from is None:
                lost_from = send_time
            continue
        if lost_from is not None:
            tally.outage = max(tally.outage, send_time - lost_from)
            lost_from = None
        first = firsts[(kind, record[1], seq)] = min(copies, key=lambda r: r[8])
        tally.received += 1
        tally.duplicates += len(copies) - 1
        tally.bytes += first[9]
        transit = first[8] - first[7]
        tally.delays.append(transit)
        if last_transit is not None:
            tally.jitter_sum += abs(transit - last_transit)
            tally.jitter_n += 1
        last_transit = transit
        if kind == POSE and transit > budget:
            tally.late += 1
    if lost_from is not None and sent:
        tally.outage = max(tally.outage, sent[-1][7] - lost_from)
    arrivals = sorted((r[8], r[5]) for copies in got.values() for r in copies)
    for _, seq in arrivals:
        if seq < highest:
            tally.reordered += 1
        highest = max(highest, seq)
    for _, completion in (video_frames(sent, firsts).values() if kind == VIDEO else ()):
        tally.frames += 1
        if math.isfinite(completion):
            tally.frames_complete += 1
            tally.completions.append(completion)
        if completion > budget:  # late, or never complete (inf)
            tally.late += 1
    return tally


def analyse(sent_records, received_records, phases: list[Phase], budget_ms: float = 20.0,
            pose_budget_ms: float = 10.0) -> dict:
    """QoS per phase and kind, overall and per stream.  A packet belongs to the phase in
    which its frame started (pose/background: in which it was sent)."""
    received: dict[tuple, dict[int, list]] = {}
    for r in received_records:
        received.setdefault((r[0], r[1]), {}).setdefault(r[5], []).append(r)
    streams: dict[tuple, list] = {}
    for r in sorted(sent_records, key=lambda r: (r[0], r[1], r[5])):
        streams.setdefault((r[0], r[1]), []).append(r)
    result = {"budget_ms": budget_ms, "pose_budget_ms": pose_budget_ms, "phases": []}
    for phase in phases:
        seconds = phase.end - phase.start
        totals = {kind: _Tally() for kind in KIND_NAMES}
        per_stream = {}
        active = {kind: 0 for kind in KIND_NAMES}
        for (kind, stream), records in sorted(streams.items()):
            mine = [r for r in records if phase.start <= r[6] < phase.end]
            if not mine:
                continue
            seqs = {r[5] for r in mine}
            got = {seq: copies for seq, copies in received.get((kind, stream), {}).items()
                   if seq in seqs}
            budget = (budget_ms if kind == VIDEO else pose_budget_ms) / 1000
            tally = _stream_tally(mine, got, kind, budget)
            active[kind] += 1
            if kind == VIDEO:
                per_stream[stream] = {"frames": tally.frames, "frame_misses": tally.late,
                                      "lost": tally.sent - tally.received,
                                      "longest_outage_ms": ms(tally.outage)}
            totals[kind].merge(tally)
        entry = {"phase": phase.name, "start": phase.start, "seconds": round(seconds, 3)}
        for kind, name in KIND_NAMES.items():
            if active[kind]:
                entry[name] = dict(totals[kind].summary(kind, seconds), streams=active[kind])
        entry["video_streams"] = per_stream
        entry["worst_stream_frame_misses"] = max(
            (s["frame_misses"] for s in per_stream.values()), default=0)
        entry["longest_outage_ms"] = max(entry.get(name, {}).get("longest_outage_ms") or 0
                                         for name in ("video", "pose"))
        result["phases"].append(entry)
    return result


def first_arrivals(received_records) -> dict:
    """{(kind, stream, seq): the record of the first copy received}."""
    first = {}
    for r in received_records:
        key = (r[0], r[1], r[5])
        if key not in first or r[8] < first[key][8]:
            first[key] = r
    return first


def video_frames(sent_records, first: dict) -> dict:
    """{(stream, frame): (start, completion seconds, or inf if a packet never came)}."""
    frames: dict[tuple, list] = {}
    for r in sent_records:
        if r[0] != VIDEO:
            continue
        state = frames.setdefault((r[1], r[2]), [r[6], r[4], 0, 0.0])
        hit = first.get((VIDEO, r[1], r[5]))
        if hit is not None:
            state[2] += 1
            state[3] = max(state[3], hit[8])
    return {key: (start, last - start if received == count else math.inf)
            for key, (start, count, received, last) in frames.items()}


def frame_timeline(sent_records, received_records, start: float, bin_seconds: float = 0.5):
    """Per time bin from ``start``: (bin start offset, received video Mbit/s, p99 frame
    completion ms of frames started in the bin, frames missed).  For plots."""
    first = first_arrivals(received_records)
    bins: dict[int, list] = {}
    for r in first.values():
        if r[0] == VIDEO:
            bins.setdefault(int((r[8] - start) // bin_seconds), [0, [], 0])[0] += r[9]
    for frame_start, completion in video_frames(sent_records, first).values():
        slot = bins.setdefault(int((frame_start - start) // bin_seconds), [0, [], 0])
        if math.isfinite(completion):
            slot[1].append(completion)
        else:
            slot[2] += 1
    rows = []
    for slot in sorted(bins):
        total, completions, missed = bins[slot]
        completions.sort()
        rows.append((slot * bin_seconds, total * 8 / bin_seconds / 1e6,
                     ms(percentile(completions, 99)), missed))
    return rows


def completion_times_ms(sent_records, received_records, phase: Phase) -> list[float]:
    """Completion times of the frames started in ``phase`` (incomplete frames: inf)."""
    frames = video_frames(sent_records, first_arrivals(received_records))
    return sorted(1000 * completion for start, completion in frames.values()
                  if phase.start <= start < phase.end)


# -- reporting ----------------------------------------------------------------------

def _fmt(value, digits=1):
    return "-" if value is None else ("%.*f" % (digits, value))


def _pair(stats: dict, key: str, a: str = "p50", b: str = "p99") -> str:
    values = stats.get(key) or {}
    return "%s / %s" % (_fmt(values.get(a)), _fmt(values.get(b)))


VIDEO_HEADERS = ["phase", "streams", "video Mbit/s", "loss %", "delay p50/p99 ms",
                 "jitter ms", "frames missed", "miss %", "frame done p50/p99 ms",
                 "worst stream missed"]
OTHER_HEADERS = ["phase", "pose delay p50/p99 ms", "pose late or lost", "background Mbit/s",
                 "background loss %", "longest outage ms"]


def video_rows(result: dict) -> list[list]:
    """Rows under VIDEO_HEADERS for ``analyse``'s result: the frames' story."""
    rows = []
    for p in result["phases"]:
        video = p.get("video", {})
        rows.append([p["phase"], video.get("streams", 0),
                     _fmt(video.get("throughput_mbps"), 2), _fmt(video.get("loss_pct"), 2),
                     _pair(video, "delay_ms"), _fmt(video.get("jitter_ms")),
                     "%s of %s" % (video.get("frame_misses", 0), video.get("frames_sent", 0)),
                     _fmt(video.get("frame_miss_pct"), 2),
                     _pair(video, "frame_completion_ms"), p["worst_stream_frame_misses"]])
    return rows


def other_rows(result: dict) -> list[list]:
    """Rows under OTHER_HEADERS: pose packets, background traffic, the longest outage."""
    rows = []
    for p in result["phases"]:
        pose, bulk = p.get("pose", {}), p.get("background", {})
        rows.append([p["phase"], _pair(pose, "delay_ms"),
                     pose.get("late_pose", 0) + pose.get("packets_lost", 0),
                     _fmt(bulk.get("throughput_mbps"), 2) if bulk else "-",
                     _fmt(bulk.get("loss_pct"), 2) if bulk else "-",
                     _fmt(p["longest_outage_ms"])])
    return rows


CLOCK_NOTE = ("one-way delays assume sender and receiver share a clock (true inside "
              "Mininet); between separate machines they include the clock offset")


# -- command line ------------------------------------------------------------------

def _add_profile_options(parser) -> None:
    defaults = Profile()
    parser.add_argument("--fps", type=float, default=defaults.fps,
                        help="frames per second (72, 90, 120...)")
    parser.add_argument("--mbps", type=float, default=defaults.mbps,
                        help="video bitrate before scaling, Mbit/s")
    parser.add_argument("--scale", type=float, default=defaults.scale,
                        help="multiplies the bitrate, to fit emulated links")
    parser.add_argument("--packet-bytes", type=int, default=defaults.packet_bytes)
    parser.add_argument("--pacing", type=float, default=defaults.pacing,
                        help="spread a frame over this fraction of the frame interval")
    parser.add_argument("--keyframe-seconds", type=float, default=defaults.keyframe_seconds)
    parser.add_argument("--pose-ms", type=float, default=defaults.pose_ms)
    parser.add_argument("--pose-bytes", type=int, default=defaults.pose_bytes)


def profile_args(profile: Profile) -> list[str]:
    """The command-line options that give ``profile`` back through ``profile_from``."""
    return ["--fps", repr(profile.fps), "--mbps", repr(profile.mbps), "--scale",
            repr(profile.scale), "--packet-bytes", str(profile.packet_bytes), "--pacing",
            repr(profile.pacing), "--keyframe-seconds", repr(profile.keyframe_seconds),
            "--pose-ms", repr(profile.pose_ms), "--pose-bytes", str(profile.pose_bytes)]


def profile_from(args) -> Profile:
    return Profile(fps=args.fps, mbps=args.mbps, scale=args.scale,
                   packet_bytes=args.packet_bytes, pacing=args.pacing,
                   keyframe_seconds=args.keyframe_seconds, pose_ms=args.pose_ms,
                   pose_bytes=args.pose_bytes)


def _send_or_receive(parser, args) -> int:
    if args.mode == "send":
        try:
            profile = profile_from(args)
            profile.check()
        except ValueError as exc:
            parser.error(str(exc))
        if args.seconds <= 0 or args.streams < 1:
            parser.error("--seconds and --streams must be positive")
        if args.schedule:
            try:
                with open(args.schedule) as f:
                    sessions = [Session(**item) for item in json.load(f)]
                addresses = json.loads(args.addresses) if args.addresses else {}
            except (OSError, ValueError, TypeError) as exc:
                parser.error("bad --schedule/--addresses: %s" % exc)
        elif args.dst:
            sessions = [Session(i, VIDEO, "self", args.dst, 0.0, args.seconds)
                        for i in range(args.streams)]
            if args.pose_to:
                sessions += [Session(i, POSE, "self", args.pose_to, 0.0, args.seconds)
                             for i in range(args.streams)]
            addresses = {}
        else:
            parser.error("give --dst or --schedule")
        start_at = args.start_at if args.start_at else time.time() + 0.2
        ports: dict = {}
        with open(args.log, "wb") as log:
            try:
                count = send(sessions, addresses, args.port, profile, args.seed, start_at,
                             log, ports)
            finally:
                if args.ports_log:
                    with open(args.ports_log, "w") as f:
                        json.dump([[kind, stream, port] for (kind, stream), port
                                   in sorted(ports.items())], f)
        print(json.dumps({"packets_sent": count, "start_at": start_at}))
        return 0
    if args.seconds <= 0:  # recv
        parser.error("--seconds must be positive")
    names = {name: kind for kind, name in KIND_NAMES.items()}
    try:
        kinds = [names[name] for name in args.kinds.split(",")]
    except KeyError:
        parser.error("--kinds: a comma-separated list of %s" % ", ".join(names))
    with open(args.log, "wb") as log:
        count = receive(args.port, time.time() + args.seconds, log, kinds)
    print(json.dumps({"packets_received": count}))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="vr_traffic", description="VR-like traffic: send, receive, analyse "
        "(see sdn_app/lab/vr.py)")
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send", help="send VR streams (video to --dst) or a schedule file")
    s.add_argument("--dst", help="receiver address (with --streams)")
    s.add_argument("--streams", type=int, default=1, help="video streams to --dst")
    s.add_argument("--pose-to", help="also send each stream's pose packets to this host")
    s.add_argument("--schedule", help="JSON list of sessions (fields of Session), instead")
    s.add_argument("--addresses", help="JSON object: session host name -> IP address")
    s.add_argument("--port", type=int, default=9100)
    s.add_argument("--ports-log", help="write each stream's UDP source port here "
                   "(JSON [[kind, stream, port], ...])")
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--start-at", type=float, help="epoch time the scenario starts "
                   "(default: now + 0.2 s)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--log", required=True, help="binary log of every packet sent")
    _add_profile_options(s)
    r = sub.add_parser("recv", help="log every VR packet received on a port")
    r.add_argument("--port", type=int, default=9100)
    r.add_argument("--kinds", default=",".join(KIND_NAMES.values()),
                   help="the kinds to listen for, each on its port (default: all); one "
                        "kind listens on one socket, the cheapest")
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--log", required=True)
    a = sub.add_parser("analyse", help="join send and receive logs: QoS per phase")
    a.add_argument("--sent", nargs="+", required=True)
    a.add_argument("--received", nargs="+", required=True)
    a.add_argument("--phase", action="append", default=[], metavar="NAME:START:END",
                   help="epoch seconds; default one phase over everything sent")
    a.add_argument("--budget-ms", type=float, default=20.0)
    a.add_argument("--pose-budget-ms", type=float, default=10.0)
    a.add_argument("--json", action="store_true", help="JSON instead of a table")
    args = parser.parse_args(argv)
    if args.mode in ("send", "recv"):
        # Stopped by a signal (a benchmark's background load ends so), it still closes
        # its log whole and exits 130, as on Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return _send_or_receive(parser, args)
        except KeyboardInterrupt:
            return 130
    try:
        sent = [r for path in args.sent for r in read_log(path)]
        got = [r for path in args.received for r in read_log(path)]
    except OSError as exc:
        parser.error(str(exc))
    phases = []
    for text in args.phase:
        try:
            name, start, end = text.rsplit(":", 2)
            phases.append(Phase(name, float(start), float(end)))
        except ValueError:
            parser.error("bad --phase %r (want NAME:START:END)" % text)
    if not phases:
        if not sent:
            parser.error("the send logs are empty")
        phases = [Phase("all", min(r[6] for r in sent), max(r[6] for r in sent) + 1e-6)]
    result = analyse(sent, got, phases, args.budget_ms, args.pose_budget_ms)
    result["clock_note"] = CLOCK_NOTE
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        from sdn_app.lab.report import table
        print(table(VIDEO_HEADERS, video_rows(result)))
        print()
        print(table(OTHER_HEADERS, other_rows(result)))
        print(CLOCK_NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
