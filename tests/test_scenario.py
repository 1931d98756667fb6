"""Who serves whom, and when, in the main job's scenario (no network)."""

import os
import time

import pytest

from sdn_app.lab import scenario, vr


def hosts(n):
    return ["h%d" % i for i in range(1, n + 1)]


def test_every_fourth_host_serves_the_next_block_of_four():
    plan = scenario.build(hosts(16), users=12, crowd=0, duration=40, seed=1,
                          profile=vr.Profile(), background=0)
    assert plan.servers == ["h1", "h5", "h9", "h13"]
    video = [s for s in plan.sessions if s.kind == vr.VIDEO]
    assert len(video) == 12
    served = {s.dst: s.src for s in video}
    assert served["h2"] == "h5" and served["h6"] == "h9" and served["h14"] == "h1"
    assert not set(served) & set(plan.servers)
    pose = [s for s in plan.sessions if s.kind == vr.POSE]
    assert {(s.src, s.dst) for s in pose} == {(s.dst, s.src) for s in video}


def test_phases_crowd_churn_and_background():
    plan = scenario.build(hosts(8), users=3, crowd=4, duration=40, seed=2,
                          profile=vr.Profile(), background=2, churn=1)
    assert plan.phases == [("steady", 0, 10), ("crowd", 10, 20), ("failure", 20, 30),
                           ("recovery", 30, 40)]
    video = [s for s in plan.sessions if s.kind == vr.VIDEO]
    crowd = [s for s in video if 3 <= s.stream < 7]
    assert len(crowd) == 4 and all(10 <= s.start <= 11 and s.stop == 40 for s in crowd)
    assert all(s.start == 0 for s in video if s.stream < 3)
    assert any(s.stream >= 500 for s in video), "a churning user"
    assert any(s.kind == vr.BULK for s in plan.sessions)
    again = scenario.build(hosts(8), users=3, crowd=4, duration=40, seed=2,
                           profile=vr.Profile(), background=2, churn=1)
    assert again.sessions == plan.sessions


def test_two_hosts_make_one_server_and_one_user():
    plan = scenario.build(hosts(2), users=2, crowd=1, duration=8, seed=1,
                          profile=vr.Profile())
    assert plan.servers == ["h1"]
    assert {s.dst for s in plan.sessions if s.kind == vr.VIDEO} == {"h2"}


@pytest.mark.parametrize("kwargs", [
    {"users": 0}, {"crowd": -1}, {"duration": 2}, {"cut": "random"}, {"churn": -1},
])
def test_bad_scenarios_are_refused(kwargs):
    args = dict(users=1, crowd=0, duration=40, seed=1, profile=vr.Profile())
    args.update(kwargs)
    with pytest.raises(ValueError):
        scenario.build(hosts(4), **args)
    with pytest.raises(ValueError):
        scenario.build(["h1"], users=1, crowd=0, duration=40, seed=1, profile=vr.Profile())


def test_a_ctrl_c_lost_in_a_finalizer_still_stops_the_run():
    """The handler's KeyboardInterrupt can be dropped (raised inside a __del__); the
    flag it sets stops the next wait anyway."""
    scenario.INTERRUPTED.set()
    try:
        began = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            scenario._sleep_until(time.time() + 30, lambda text: None, "steady")
        assert time.monotonic() - began < 1
    finally:
        scenario.INTERRUPTED.clear()
    scenario._sleep_until(time.time() + 0.05, lambda text: None, None)  # cleared: sleeps


def test_dataplane_cpu_reads_a_process_and_says_none_when_it_cannot(tmp_path):
    pid_file = tmp_path / "ovs-vswitchd.pid"
    pid_file.write_text("%d\n" % os.getpid())
    before = scenario.dataplane_cpu_seconds(pid_file)
    spin_until = time.process_time() + 0.05
    while time.process_time() < spin_until:
        pass
    after = scenario.dataplane_cpu_seconds(pid_file)
    assert before is not None and after - before >= 0.03
    assert scenario.dataplane_cpu_seconds(tmp_path / "missing.pid") is None
    pid_file.write_text("not a pid\n")
    assert scenario.dataplane_cpu_seconds(pid_file) is None
    pid_file.write_text("%d\n" % (1 << 30))  # no such process
    assert scenario.dataplane_cpu_seconds(pid_file) is None


def test_refusals_name_video_streams_by_their_source_address_and_port():
    status = {"enabled": True, "recent_refusals": [
        {"stream": ["10.0.0.5", "10.0.0.2", 40001, 9100]},
        {"stream": ["10.0.0.5", "10.0.0.2", 40001, 9100]},  # refused again later
        {"stream": ["10.0.0.9", "10.0.0.6", 40007, 9100]},
        {"stream": ["10.0.0.2", "10.0.0.5", 40003, 9101]},  # a pose stream: not video
        {"stream": ["10.0.0.7", "10.0.0.8", 40009, 9100]}]}  # not ours
    streams = {("10.0.0.5", 40001): (vr.VIDEO, 3), ("10.0.0.9", 40007): (vr.VIDEO, 8),
               ("10.0.0.2", 40003): (vr.POSE, 3), ("10.0.0.5", 40002): (vr.VIDEO, 4)}
    assert scenario.refused_streams(status, streams) == {3, 8}
    assert scenario.refused_streams({"enabled": False}, streams) == set()


def test_admission_figures_count_refused_streams_frames_as_missed():
    run = scenario.Run(0.0, [], [], [], {"phases": [{"phase": "crowd", "video_streams": {
        1: {"frames": 100, "frame_misses": 2}, 2: {"frames": 100, "frame_misses": 0},
        3: {"frames": 50, "frame_misses": 50}}}]}, refused={3})
    assert run.admission("crowd") == {"offered": 3, "refused": 1, "admitted_miss_pct": 1.0,
                                      "frames_on_time": 198}
    run.refused = set()
    assert run.admission("crowd")["admitted_miss_pct"] == pytest.approx(100 * 52 / 250)


def test_the_failover_figures_leave_refused_streams_out():
    run = scenario.Run(0.0, [], [], [], {"phases": []}, refused={3}, failover={
        "video_streams": {1: {"frame_misses": 2, "longest_outage_ms": 12.0},
                          3: {"frame_misses": 90, "longest_outage_ms": 990.0}},
        "pose": {"longest_outage_ms": 15.0}})
    assert run.failover_figures() == (2, 15.0)
    run.refused = set()
    assert run.failover_figures() == (90, 990.0)
    assert scenario.Run(0.0, [], [], [], {}).failover_figures() == (None, None)
