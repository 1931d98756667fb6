"""The VR traffic model and its QoS analysis, on synthetic traces (no network)."""

import math
import random
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest

from sdn_app.lab import vr
from sdn_app.lab.vr import POSE, RECORD, VIDEO, Phase, Profile, Session


def test_frame_sizes_keep_the_bitrate_and_the_bounds():
    profile = Profile(fps=90, mbps=30, scale=0.1)
    every = profile.keyframe_every
    assert every == 180
    sizes = [s for s, _ in zip(vr.frame_sizes(profile, random.Random(3)), range(90 * 60),
                               strict=False)]
    mean = profile.mean_frame_bytes
    assert statistics.mean(sizes) == pytest.approx(mean, rel=0.02)
    base = mean * every / (every - 1 + profile.keyframe_factor)
    key = [s for i, s in enumerate(sizes) if i % every == 0]
    other = [s for i, s in enumerate(sizes) if i % every]
    assert min(other) >= 0.5 * base - 1 and max(other) <= 1.5 * base + 1
    assert statistics.mean(key) == pytest.approx(3 * base, rel=0.1)
    assert statistics.stdev(other) / base == pytest.approx(0.10, abs=0.02)


def test_no_key_frames_when_disabled():
    profile = Profile(mbps=10, keyframe_seconds=0, size_sd=0)
    sizes = [s for s, _ in zip(vr.frame_sizes(profile, random.Random(1)), range(100),
                               strict=False)]
    assert set(sizes) == {round(profile.mean_frame_bytes)}


@pytest.mark.parametrize("frame,packet,expected", [
    (4000, 1400, [1400, 1400, 1200]),
    (2800, 1400, [1400, 1400]),
    (1, 1400, [vr.HEADER.size]),
    (1410, 1400, [1400, vr.HEADER.size]),
])
def test_packetize(frame, packet, expected):
    assert vr.packetize(frame, packet) == expected


def test_packet_plan_bursts_frames_on_the_frame_clock_and_repeats_with_a_seed():
    profile = Profile(fps=100, mbps=8, scale=1.0)  # 10 kB frames: 8 packets each
    session = Session(7, VIDEO, "srv", "usr", 1.0, 1.1)
    plan = list(vr.packet_plan(session, profile, seed=5))
    assert plan == list(vr.packet_plan(session, profile, seed=5))
    assert plan != list(vr.packet_plan(session, profile, seed=6))
    starts = sorted({p[4] for p in plan})
    assert starts == pytest.approx([1.0 + i / 100 for i in range(10)])
    first = [p for p in plan if p[1] == 0]
    assert all(p[0] == 1.0 for p in first), "a frame is a back-to-back burst"
    assert [p[2] for p in first] == list(range(len(first))) and first[0][3] == len(first)
    paced = [p for p in vr.packet_plan(session, Profile(fps=100, mbps=8, pacing=0.5), 5)
             if p[1] == 0]
    assert paced[-1][0] - paced[0][0] == pytest.approx(0.005 * (len(paced) - 1) / len(paced))


def test_pose_and_background_rates():
    pose = list(vr.packet_plan(Session(1, POSE, "u", "s", 0, 1), Profile(pose_ms=4), 1))
    assert len(pose) == 250 and all(p[5] == 100 for p in pose)
    bulk = list(vr.packet_plan(Session(2, vr.BULK, "a", "b", 0, 1, mbps=1.12),
                               Profile(), 1))
    assert len(bulk) == 100  # 1.12 Mbit/s of 1400-byte packets


def test_schedules_are_reproducible_with_a_seed():
    pairs = [("h%d" % i, "h1") for i in range(2, 6)]
    a = vr.flash_crowd(pairs, 10, at=5.0, stop=20.0, seed=4)
    assert a == vr.flash_crowd(pairs, 10, at=5.0, stop=20.0, seed=4)
    assert a != vr.flash_crowd(pairs, 10, at=5.0, stop=20.0, seed=5)
    assert len(a) == 8 and {s.stream for s in a} == {10, 11, 12, 13}
    assert all(5.0 <= s.start <= 6.0 and s.stop == 20.0 for s in a)
    video = [s for s in a if s.kind == VIDEO]
    assert all(s.src == "h1" for s in video)
    bursts = vr.on_off("h2", "h3", 99, vr.BULK, 60.0, seed=2, mean_on=1, mean_off=2, mbps=1)
    assert bursts == vr.on_off("h2", "h3", 99, vr.BULK, 60.0, seed=2, mean_on=1,
                               mean_off=2, mbps=1)
    assert len(bursts) > 5
    assert all(0 <= s.start < s.stop <= 60 for s in bursts)
    assert all(a.stop < b.start for a, b in zip(bursts, bursts[1:], strict=False))
    with pytest.raises(ValueError):
        vr.on_off("a", "b", 1, vr.BULK, 10, 1, mean_on=0, mean_off=1)


def sent_trace(frames, packets_per_frame=3, stream=1, t0=100.0, interval=0.01):
    """Send-log records of ``frames`` video frames, 1 ms between a frame's packets."""
    records, seq = [], 0
    for frame in range(frames):
        start = t0 + frame * interval
        for index in range(packets_per_frame):
            records.append((VIDEO, stream, frame, index, packets_per_frame, seq, start,
                            start + index * 0.001, 0.0, 1000))
            seq += 1
    return records


def arrive(record, delay):
    return record[:8] + (record[7] + delay, record[9])


def test_analysis_counts_loss_duplicates_reordering_and_late_frames():
    sent = sent_trace(10)  # frames 0..9, 3 packets each, seq 0..29
    got = [arrive(r, 0.002) for r in sent]
    del got[4]                                 # frame 1 incomplete (seq 4 lost)
    got[10:12] = [got[11], got[10]]            # reordered pair
    got.append(got[0])                         # a duplicate
    late = [i for i, r in enumerate(got) if r[2] == 5 and r[3] == 2]
    got[late[0]] = arrive(got[late[0]], 0.030)  # frame 5 completes 30+ ms late
    result = vr.analyse(sent, got, [Phase("all", 100.0, 101.0)], budget_ms=20)
    video = result["phases"][0]["video"]
    assert video["packets_sent"] == 30 and video["packets_received"] == 29
    assert video["packets_lost"] == 1 and video["duplicates"] == 1
    assert video["reordered"] == 1
    assert video["frames_sent"] == 10 and video["frames_complete"] == 9
    assert video["frame_misses"] == 2  # the incomplete one and the late one
    assert video["frame_completion_ms"]["p50"] == pytest.approx(4.0, abs=0.01)
    assert video["frame_completion_ms"]["p99"] > 30
    assert video["delay_ms"]["p50"] == pytest.approx(2.0, abs=0.01)
    assert video["longest_outage_ms"] == pytest.approx(1.0, abs=0.01)
    assert result["phases"][0]["video_streams"][1]["frame_misses"] == 2


def test_a_vanished_frame_and_phases():
    sent = sent_trace(20)  # 200 ms of frames
    got = [arrive(r, 0.001) for r in sent if r[2] != 12]  # frame 12 lost whole
    phases = [Phase("before", 100.0, 100.1), Phase("after", 100.1, 100.2)]
    before, after = vr.analyse(sent, got, phases)["phases"]
    assert before["video"]["frame_misses"] == 0 and before["video"]["frames_sent"] == 10
    assert after["video"]["frame_misses"] == 1 and after["video"]["packets_lost"] == 3
    assert after["worst_stream_frame_misses"] == 1
    # the outage spans from the lost frame's first packet to the next frame's first
    assert after["video"]["longest_outage_ms"] == pytest.approx(10.0, abs=0.01)
    # 10 frames of 3 kB in 0.1 s
    assert before["video"]["throughput_mbps"] == pytest.approx(30_000 * 8 / 0.1 / 1e6)


def test_pose_lateness_and_an_empty_phase():
    sent = [(POSE, 3, i, 0, 1, i, 200 + i * 0.004, 200 + i * 0.004, 0.0, 100)
            for i in range(100)]
    got = [arrive(r, 0.015 if i % 10 == 0 else 0.001) for i, r in enumerate(sent)]
    result = vr.analyse(sent, got, [Phase("p", 200, 201), Phase("idle", 300, 301)])
    pose = result["phases"][0]["pose"]
    assert pose["late_pose"] == 10 and pose["packets_lost"] == 0
    assert pose["delay_ms"]["p99"] == pytest.approx(15.0, abs=0.01)
    assert "pose" not in result["phases"][1] and "video" not in result["phases"][1]
    assert vr.video_rows(result)[1][1] == 0  # the tables cope with an idle phase
    assert vr.other_rows(result)[1][1] == "- / -"


def test_timeline_and_completion_cdf():
    sent = sent_trace(100)  # one second of frames
    got = [arrive(r, 0.002) for r in sent if r[2] != 50]
    rows = vr.frame_timeline(sent, got, 100.0, bin_seconds=0.5)
    assert [r[0] for r in rows] == [0.0, 0.5]
    assert rows[0][3] == 0 and rows[1][3] == 1
    times = vr.completion_times_ms(sent, got, Phase("all", 100, 101))
    assert len(times) == 100 and math.isinf(times[-1]) and times[0] == pytest.approx(4.0)


def test_log_round_trip_ignores_a_torn_tail(tmp_path):
    path = tmp_path / "log.bin"
    records = sent_trace(2)
    path.write_bytes(b"".join(RECORD.pack(*r) for r in records) + b"\0\1\2")
    assert vr.read_log(path) == records


def test_send_and_receive_over_loopback(tmp_path):
    until = time.time() + 1.2
    received = tmp_path / "r.bin"
    with open(received, "wb") as log:
        listener = threading.Thread(target=vr.receive, args=(9871, until, log))
        listener.start()
        time.sleep(0.1)
        sessions = [Session(1, VIDEO, "me", "lo", 0, 0.5), Session(1, POSE, "me", "lo", 0, 0.5)]
        with open(tmp_path / "s.bin", "wb") as sent_log:
            count = vr.send(sessions, {"lo": "127.0.0.1"}, 9871, Profile(scale=0.1), 1,
                            time.time() + 0.05, sent_log)
        listener.join()
    sent = vr.read_log(tmp_path / "s.bin")
    assert len(sent) == count > 150
    result = vr.analyse(sent, vr.read_log(received), [Phase("all", 0, 2e10)])
    video = result["phases"][0]["video"]
    assert video["frames_sent"] == 45 and video["frames_complete"] == 45
    assert result["phases"][0]["pose"]["packets_received"] == 125


def test_a_background_streams_on_periods_are_one_sequence(tmp_path):
    """on_off gives each on period its own session under the stream's one id; their
    packets must not share sequence numbers, or the analysis joins packets of different
    periods (the main job once reported ~7 duplicates per background packet)."""
    until = time.time() + 1.3
    received = tmp_path / "r.bin"
    periods = [Session(7, vr.BULK, "me", "lo", start, start + 0.2, 0.4)
               for start in (0.0, 0.4, 0.8)]
    with open(received, "wb") as log:
        listener = threading.Thread(target=vr.receive, args=(9872, until, log))
        listener.start()
        time.sleep(0.1)
        with open(tmp_path / "s.bin", "wb") as sent_log:
            count = vr.send(periods, {"lo": "127.0.0.1"}, 9872, Profile(scale=0.1), 1,
                            time.time() + 0.05, sent_log)
        listener.join()
    sent = vr.read_log(tmp_path / "s.bin")
    assert sorted(r[5] for r in sent) == list(range(count))
    background = vr.analyse(sent, vr.read_log(received),
                            [Phase("all", 0, 2e10)])["phases"][0]["background"]
    assert background["packets_received"] == count > 15
    assert background["duplicates"] == 0


def wait_bound(port, proc, timeout=20.0):
    """Until a UDP socket holds ``port`` (binding it ourselves then fails), so a sender
    started next loses nothing to a receiver still starting up (a fixed head start of
    0.3 s once lost the first packets on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return
        finally:
            probe.close()
        time.sleep(0.02)
    raise AssertionError("receiver never bound port %d" % port)


def test_a_terminated_sender_and_receiver_leave_whole_logs(tmp_path):
    base = [sys.executable, "-m", "sdn_app.lab.vr"]
    sent_log, recv_log = tmp_path / "s.bin", tmp_path / "r.bin"
    receiver = subprocess.Popen(base + ["recv", "--port", "9872", "--seconds", "60",
                                        "--log", str(recv_log)])
    sender = None
    try:
        wait_bound(9872, receiver)
        sender = subprocess.Popen(base + ["send", "--dst", "127.0.0.1", "--port", "9872",
                                          "--seconds", "60", "--scale", "0.1",
                                          "--log", str(sent_log)], stdout=subprocess.DEVNULL)
        time.sleep(1.5)
        sender.terminate()
        assert sender.wait(timeout=10) == 130
        time.sleep(0.2)
        receiver.terminate()
        assert receiver.wait(timeout=10) == 130
    finally:
        for proc in (sender, receiver):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    sent, got = vr.read_log(sent_log), vr.read_log(recv_log)
    assert len(sent) > 50  # ~1 s of 90 fps video; nothing is held back in memory
    sent_seqs, got_seqs = {r[5] for r in sent}, {r[5] for r in got}
    assert got_seqs <= sent_seqs  # nothing arrived that the sender's log does not hold
    # every packet arrived, but for the last one if the signal fell between log and send
    assert sent_seqs - got_seqs <= {max(sent_seqs)}


@pytest.mark.parametrize("argv", [
    ["send", "--log", "x", "--dst", "10.0.0.1", "--fps", "0"],
    ["send", "--log", "x", "--dst", "10.0.0.1", "--scale", "-1"],
    ["send", "--log", "x", "--dst", "10.0.0.1", "--packet-bytes", "10"],
    ["send", "--log", "x", "--dst", "10.0.0.1", "--seconds", "0"],
    ["send", "--log", "x"],
    ["send", "--log", "x", "--schedule", "/nonexistent.json"],
    ["recv", "--log", "x", "--seconds", "-2"],
    ["recv", "--log", "x", "--seconds", "1", "--kinds", "video,smell"],
    ["analyse", "--sent", "/nonexistent", "--received", "/nonexistent"],
    ["fly"],
])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        vr.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_bad_phase_is_a_usage_error(tmp_path, capsys):
    log = tmp_path / "s.bin"
    log.write_bytes(b"".join(RECORD.pack(*r) for r in sent_trace(2)))
    with pytest.raises(SystemExit):
        vr.main(["analyse", "--sent", str(log), "--received", str(log), "--phase", "x:y"])
    assert "NAME:START:END" in capsys.readouterr().err


def test_users_churn_reproducibly_each_visit_a_new_stream():
    pairs = [("h2", "h1"), ("h3", "h1")]
    a = vr.churn(pairs, 100, 60.0, seed=3, mean_on=5, mean_off=5)
    assert a == vr.churn(pairs, 100, 60.0, seed=3, mean_on=5, mean_off=5)
    assert a != vr.churn(pairs, 100, 60.0, seed=4, mean_on=5, mean_off=5)
    video = [s for s in a if s.kind == VIDEO]
    pose = [s for s in a if s.kind == POSE]
    assert len(video) == len(pose) > 4
    assert len({s.stream for s in video}) == len(video), "one stream per visit"
    assert {(s.src, s.dst) for s in video} <= {("h1", "h2"), ("h1", "h3")}
    for user in ("h2", "h3"):
        visits = sorted((s.start, s.stop) for s in video if s.dst == user)
        assert all(b[0] > a[1] for a, b in zip(visits, visits[1:], strict=False))


def test_a_profile_survives_the_command_line():
    import argparse
    profile = Profile(fps=72, mbps=25, scale=0.2, packet_bytes=1200, pacing=0.3,
                      keyframe_seconds=1.5, pose_ms=8, pose_bytes=120)
    parser = argparse.ArgumentParser()
    vr._add_profile_options(parser)
    assert vr.profile_from(parser.parse_args(vr.profile_args(profile))) == profile


def bound_pair():
    """Two UDP sockets on loopback ports p and p + 1 (video's and pose's, kind_port)."""
    for _ in range(50):
        video = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        video.bind(("127.0.0.1", 0))
        pose = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            pose.bind(("127.0.0.1", video.getsockname()[1] + 1))
            return video, pose
        except OSError:
            video.close()
            pose.close()
    raise AssertionError("no two adjacent free UDP ports")


def test_each_stream_sends_from_its_own_source_port_and_each_kind_to_its_own_port():
    """Two users' video to one host, and one user's pose: three flows, not one 5-tuple
    (one socket per sender once made every stream to a host unsplittable); pose goes to
    the port after video's, so the network can tell them apart (admission control)."""
    video_rx, pose_rx = bound_pair()
    sessions = [Session(1, VIDEO, "me", "lo", 0, 0.1), Session(2, VIDEO, "me", "lo", 0, 0.1),
                Session(1, POSE, "me", "lo", 0, 0.1)]
    base = video_rx.getsockname()[1]
    assert vr.kind_port(base, POSE) == base + 1 and vr.kind_port(base, VIDEO) == base
    reported = {}
    count = vr.send(sessions, {"lo": "127.0.0.1"}, base, Profile(scale=0.1),
                    1, time.time() + 0.02, source_ports=reported)
    ports, kinds_at = {}, {}
    try:
        for rx in (video_rx, pose_rx):
            rx.settimeout(0.5)
            try:
                for _ in range(count):
                    data, (_, port) = rx.recvfrom(9000)
                    _, kind, stream = vr.HEADER.unpack_from(data)[:3]
                    ports.setdefault((kind, stream), set()).add(port)
                    kinds_at.setdefault(rx.getsockname()[1], set()).add(kind)
            except TimeoutError:
                pass
    finally:
        video_rx.close()
        pose_rx.close()
    assert set(ports) == {(VIDEO, 1), (VIDEO, 2), (POSE, 1)}
    assert all(len(p) == 1 for p in ports.values())
    assert len(set.union(*ports.values())) == 3
    assert kinds_at == {base: {VIDEO}, base + 1: {POSE}}
    assert {key: {port} for key, port in reported.items()} == ports, "as the network saw"
