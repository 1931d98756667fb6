"""Admission control on the real stack: streams past what a path carries are refused at
their first switch, the admitted ones keep their frames."""

import time

from sdn_app.lab import vr
from sdn_app.lab.emulation import (
    ControllerProcess,
    capacity_settings,
    emulated_network,
    ping_pairs,
    vr_load,
    wait_converged,
)

TOPO = "diamond,bw_main=10,bw_alt=10"


def test_streams_past_the_paths_capacity_are_refused_and_the_admitted_keep_their_frames(
        tmp_path):
    settings = {**capacity_settings(TOPO), "admission_udp_ports": "9100",
                "admission_utilization": 0.9, "admission_stream_mbps": 3.0,
                "policy": "adaptive"}
    with ControllerProcess(settings=settings, log_path=tmp_path / "controller.log") as ctl, \
            emulated_network(TOPO, ctl.of_port) as net:
        wait_converged(ctl, net)
        assert not ping_pairs(net)[1]
        server, user = net.hosts[0], net.hosts[-1]
        # five 3 Mbit/s streams at once; either 10 Mbit/s path carries three within 90%
        with vr_load(server, user, tmp_path, streams=5, scale=0.1) as (sent_log, recv_log):
            time.sleep(2.5)  # within the refusals' 5 s
            status = ctl.get("/v1/admission")
            table = server_switch_table(net, server)
            time.sleep(1.5)
        assert ctl.alive(), ctl.log_tail()
    assert status["enabled"] and status["admitted"] >= 1 and status["refused"] >= 1
    refusals = status["recent_refusals"]
    assert refusals and all("would be at" in r["reason"] for r in refusals)
    sent, got = vr.read_log(sent_log), vr.read_log(recv_log)
    everything = vr.Phase("all", min(r[6] for r in sent), max(r[6] for r in sent) + 1e-6)
    streams = vr.analyse(sent, got, [everything])["phases"][0]["video_streams"].values()
    assert len(streams) == 5
    delivered = [s for s in streams if s["frame_misses"] < s["frames"]]
    dropped = [s for s in streams if s["frame_misses"] == s["frames"]]
    assert len(delivered) + len(dropped) == 5, streams
    assert len(delivered) == status["admitted"], (streams, status)
    assert 2 <= len(delivered) <= 3, "three fit one path within 90%; none may be cut off"
    for stream in delivered:
        assert stream["frame_misses"] <= 0.01 * stream["frames"], stream
    # the verdicts are entries of the stream's first switch: forward or drop
    admitted = [line for line in table if "resubmit(,1)" in line]
    refused = [line for line in table if "actions=drop" in line]
    assert len(admitted) == len(delivered) and len(refused) == len(dropped), table


def server_switch_table(net, host):
    """The admission table (6) of the switch ``host`` is attached to."""
    switch = host.intfList()[0].link.intf2.node
    out = switch.cmd("ovs-ofctl -O OpenFlow13 dump-flows %s table=6" % switch.name)
    return [line for line in out.splitlines() if "tp_src=" in line or "udp_src=" in line]
