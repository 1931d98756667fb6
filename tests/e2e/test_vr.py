"""VR traffic and the main job on the real stack: Mininet hosts send and receive the VR
model's packets through OVS under our controller; the demo runs to its report."""

import json
import signal
import subprocess
import sys
import time

from sdn_app.lab.emulation import REPO, emulated_network, ping_pairs, wait_converged

VR = [sys.executable, str(REPO / "scripts" / "vr_traffic.py")]


def test_a_short_vr_run_between_two_hosts_yields_sane_json(controller, tmp_path):
    with emulated_network("diamond", controller.of_port) as net:
        wait_converged(controller, net)
        assert not ping_pairs(net)[1]
        server, user = net.hosts[0], net.hosts[-1]
        recv_log, sent_log = tmp_path / "recv.bin", tmp_path / "sent.bin"
        receiver = user.popen(VR + ["recv", "--port", "9100", "--seconds", "5",
                                    "--log", str(recv_log)], stdout=subprocess.PIPE)
        time.sleep(0.3)
        sender = server.popen(VR + ["send", "--dst", user.IP(), "--streams", "2",
                                    "--scale", "0.1", "--seconds", "3",
                                    "--log", str(sent_log)], stdout=subprocess.PIPE)
        assert sender.wait(timeout=30) == 0
        assert receiver.wait(timeout=30) == 0
    out = subprocess.run(VR + ["analyse", "--sent", str(sent_log), "--received",
                               str(recv_log), "--json"], capture_output=True, text=True,
                         check=True).stdout
    video = json.loads(out)["phases"][0]["video"]
    assert video["streams"] == 2
    assert video["frames_sent"] == 2 * 270  # 90 fps for 3 s
    assert video["frames_complete"] == video["frames_sent"]
    assert video["packets_lost"] == 0 and video["duplicates"] == 0
    assert 0 < video["delay_ms"]["p50"] <= video["delay_ms"]["p99"] < 100
    assert 0 < video["frame_completion_ms"]["p50"] < 100
    assert 5.5 < video["throughput_mbps"] < 6.5  # 2 x 30 Mbit/s x 0.1


def test_the_main_job_runs_to_a_report_with_plots(tmp_path):
    logdir = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--topo",
         "diamond,hosts=2,bw_main=10,bw_alt=10", "--duration", "8", "--users", "2",
         "--crowd", "2", "--background", "1", "--logdir", str(logdir)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for phase in ("phase steady", "phase crowd", "phase failure", "phase recovery"):
        assert phase in proc.stdout, proc.stdout
    assert "Report:" in proc.stdout and "frames missed" in proc.stdout
    report = json.loads((logdir / "report.json").read_text())
    phases = report["vr"]["phases"]
    assert [p["phase"] for p in phases] == ["steady", "crowd", "failure", "recovery"]
    assert phases[0]["video"]["streams"] == 2 and phases[1]["video"]["streams"] == 4
    assert all(p["video"]["frames_sent"] > 0 for p in phases)
    assert report["cut"], "a busy link was cut"
    for picture in ("timeline.png", "frame_completion_cdf.png"):
        data = (logdir / picture).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000


def test_ctrl_c_leaves_no_network_or_traffic_behind(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--topo", "diamond",
         "--duration", "60", "--users", "1", "--crowd", "0",
         "--logdir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "phase steady" in line:
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "phase steady" in "".join(seen), "".join(seen)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True,
                             text=True).stdout.split()
    assert not [b for b in bridges if b.startswith("s10")], bridges
    leftovers = subprocess.run(["pgrep", "-f", "sdn_app.lab.vr|ryu-manager"],
                               capture_output=True, text=True).stdout.split()
    assert not leftovers, leftovers
