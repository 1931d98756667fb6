"""Weighted multipath on the real stack: the groups OVS holds, the split its own port
counters show, and policy changes over REST."""

import json
import re
import subprocess
import sys
import threading
import time

import pytest

from sdn_app.lab.emulation import (
    REPO,
    ControllerProcess,
    capacity_settings,
    emulated_network,
    expected_topology,
    flow_lines,
    host_port,
    iperf3,
    ovs_ofctl,
    ping_pairs,
    port_bytes,
    switch_by_dpid,
    wait_converged,
    wait_until,
)

SPEC = "diamond,hosts=2,bw_main=10,bw_alt=40"
BRANCH = 0x10101
DESTINATION = 0x10104  # the only destination the branching switch splits traffic for


def uplinks(net):
    """{capacity Mbit/s: port} of the branching switch's two uplinks."""
    expected = expected_topology(net)
    ports = {}
    for src, src_port, dst, _ in expected["links"]:
        if int(src, 16) == BRANCH:
            ports[10 if int(dst, 16) == 0x10102 else 40] = src_port
    return ports


def dump_groups(protocols):
    """{group id: dump-groups line} of the branching switch."""
    lines = ovs_ofctl("dump-groups", "s10101", protocols=protocols).splitlines()
    return {int(line.split("group_id=")[1].split(",")[0]): line
            for line in lines if "group_id=" in line}


def group_line(protocols):
    """The branching switch's SELECT group (toward DESTINATION), or None."""
    return next((line for line in dump_groups(protocols).values() if "type=select" in line),
                None)


def bucket_weights(line, protocols="OpenFlow15"):
    """{port: weight} of a SELECT group's dump-groups line (OVS omits weight:1).  A
    bucket chained to a FAST_FAILOVER group counts for that group's primary port."""
    groups = dump_groups(protocols)
    weights = {}
    for bucket in line.split("bucket=")[1:]:
        weight = re.search(r"weight:(\d+)", bucket)
        chained = re.search(r"group:(\d+)", bucket)
        if chained:
            failover = groups[int(chained.group(1))]
            assert "type=ff" in failover, failover
            bucket = failover.split("bucket=")[1]
        port = int(re.search(r"output:(\d+)", bucket).group(1))
        weights[port] = int(weight.group(1)) if weight else 1
    return weights


def learn_hosts(net):
    """Let the controller learn every host from pings within each switch: traffic between
    the two switches would be demand, which adaptive may place whole (see below)."""
    by_switch = {}
    for host in net.hosts:
        by_switch.setdefault(host_port(host)[0], []).append(host)
    for hosts in by_switch.values():
        assert not ping_pairs(net, hosts)[1]


@pytest.fixture
def balanced(tmp_path):
    """Controller (adaptive) + unequal diamond speaking OpenFlow 1.5."""
    protocols = "OpenFlow13,OpenFlow15"
    with ControllerProcess(log_path=tmp_path / "controller.log",
                           settings=capacity_settings(SPEC)) as ctl, \
            emulated_network(SPEC, ctl.of_port, protocols) as net:
        wait_converged(ctl, net)
        learn_hosts(net)
        yield ctl, net, "OpenFlow15"
        assert ctl.alive(), ctl.log_tail()


def test_adaptive_groups_follow_capacity_and_the_switch_splits_udp_flows(balanced):
    ctl, net, protocols = balanced
    ports = uplinks(net)
    line = group_line(protocols)
    assert line and "selection_method=dp_hash" in line, line
    assert bucket_weights(line) == {ports[10]: 1, ports[40]: 4}

    before = port_bytes("s10101", protocols)
    egress_before = port_bytes("s10104", protocols)
    result = {}
    run = threading.Thread(target=lambda: result.update(iperf3(
        net.get("h1"), net.get("h3"), udp=True, flows=64, seconds=6, mbps_per_flow=0.25)))
    run.start()
    # The controller measures that demand (above the 10 Mbit/s path, so not placed
    # whole); with it below capacity the LP keeps the capacity-proportional split.
    measured = wait_until(lambda: sum(row["bps"] for row in demand_toward(ctl, DESTINATION))
                          > 10e6, 5)
    time.sleep(2.5)  # a rebalance_interval (2 s) for the LP to run on it
    weights_under_load = bucket_weights(group_line(protocols))
    run.join()
    assert measured, ctl.get("/v1/demand")
    assert weights_under_load == {ports[10]: 1, ports[40]: 4}
    after = port_bytes("s10101", protocols)
    egress_after = port_bytes("s10104", protocols)
    sent = {cap: after[p]["tx"] - before[p]["tx"] for cap, p in ports.items()}
    share = sent[40] / (sent[10] + sent[40])
    # Weights 1:4 put 80% of flows on the fast path; 64 flows hash with a spread of
    # about 5% (binomial), so 0.65-0.95 holds unless the split is really wrong.
    assert 0.65 <= share <= 0.95, (share, sent)
    # 16 Mbit/s split 1:4 fits both paths: what h1 sent reaches h3 (switch counters).
    (_, port1), (_, port3) = host_port(net.get("h1")), host_port(net.get("h3"))
    offered = after[port1]["rx"] - before[port1]["rx"]
    delivered = egress_after[port3]["tx"] - egress_before[port3]["tx"]
    assert result["offered_mbps"] > 10 and delivered >= 0.97 * offered, (offered, delivered)

    links = {(lk["src"]["dpid"], lk["src"]["port_no"]): lk for lk in ctl.get("/v1/links")}
    assert links[("%016x" % BRANCH, ports[40])]["capacity_bps"] == 40e6


def test_policy_changes_over_rest_rewrite_the_groups(balanced):
    ctl, net, protocols = balanced
    ports = uplinks(net)
    status, body = ctl.request("/v1/policy", "PUT", json.dumps({"policy": "ecmp"}).encode())
    assert status == 200 and body["policy"] == "ecmp"
    assert wait_until(lambda: bucket_weights(group_line(protocols) or "", protocols)
                      == {ports[10]: 1, ports[40]: 1}, 5), group_line(protocols)
    paths = ctl.get("/v1/paths?src=10.0.0.1&dst=10.0.0.3")["paths"]
    assert sorted(p["share"] for p in paths) == [0.5, 0.5]

    ctl.request("/v1/policy", "PUT", b'{"policy": "shortest"}')
    assert wait_until(lambda: group_line(protocols) is None, 5), "group removed"
    assert len(ctl.get("/v1/paths?src=10.0.0.1&dst=10.0.0.3")["paths"]) == 1
    assert not ping_pairs(net)[1]

    for bad in (b"{", b'{"policy": "fastest"}', b'{"policy": "ecmp", "extra": 1}'):
        status, body = ctl.request("/v1/policy", "PUT", bad)
        assert status == 400 and "error" in body
    assert ctl.get("/v1/policy")["policy"] == "shortest"

    # Adaptive places a destination with light demand whole (core/te.py), so it splits
    # by capacity only once the pings just sent have gone quiet in the demand it reads.
    assert wait_until(lambda: not demand_toward(ctl, DESTINATION), 15), ctl.get("/v1/demand")
    ctl.request("/v1/policy", "PUT", b'{"policy": "adaptive"}')
    assert wait_until(lambda: bucket_weights(group_line(protocols) or "", protocols)
                      == {ports[10]: 1, ports[40]: 4}, 5), group_line(protocols)
    assert not ping_pairs(net)[1]


def demand_toward(ctl, dpid):
    return [row for row in ctl.get("/v1/demand") if int(row["dst"], 16) == dpid]


def test_adaptive_places_a_light_stream_whole_on_the_least_loaded_path(balanced):
    """A stream far below either path's capacity is not hashed over both: it goes
    whole onto the path whose bottleneck it loads least (40 Mbit/s), as measured."""
    ctl, net, protocols = balanced
    ports = uplinks(net)
    assert bucket_weights(group_line(protocols) or "", protocols) == {ports[10]: 1,
                                                                      ports[40]: 4}
    h1, h3 = net.get("h1"), net.get("h3")
    sender = h1.popen([sys.executable, "-m", "sdn_app.lab.probe", "send", "--dst", h3.IP(),
                       "--port", "9000", "--rate", "500", "--seconds", "20"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(REPO))

    def placed_whole():
        paths = ctl.get("/v1/paths?src=10.0.0.1&dst=10.0.0.3")["paths"]
        return len(paths) == 1 and paths[0]["hops"][0]["out_port"] == ports[40]
    try:
        assert wait_until(lambda: demand_toward(ctl, DESTINATION), 5), ctl.get("/v1/demand")
        # demand is read every stats_interval, weights re-evaluated every
        # rebalance_interval and changed at most every rebalance_hold (5 s)
        assert wait_until(placed_whole, 15), ctl.get("/v1/paths?src=10.0.0.1&dst=10.0.0.3")
        row = demand_toward(ctl, DESTINATION)[0]
        assert int(row["src"], 16) == BRANCH and 0 < row["bps"] < 10e6, row
    finally:
        sender.kill()
        sender.wait()
    assert not ping_pairs(net)[1]


def split_slots(bridge="s10101", protocols="OpenFlow13"):
    """{port: hash slots} the branching switch's split table gives the destination:
    each slot's FAST_FAILOVER group counts for its primary port."""
    groups = dump_groups(protocols)
    slots = {}
    for line in flow_lines(bridge, protocols):
        if "table=2" in line and "reg1=" in line:
            group = int(re.search(r"group:(\d+)", line).group(1))
            port = int(re.search(r"output:(\d+)", groups[group].split("bucket=")[1]).group(1))
            slots[port] = slots.get(port, 0) + 1
    return slots


def test_openflow13_open_vswitch_splits_udp_flows_by_weight_too(tmp_path):
    """OVS's SELECT groups over OpenFlow 1.3 ignore UDP ports (300 flows went one way),
    so 1.3 OVS switches split by hashing into their split table: slots by weight, and
    300 UDP flows that differ only in source port follow the weights on the switch's
    own counters."""
    with ControllerProcess(log_path=tmp_path / "c.log", settings=capacity_settings(SPEC)) as ctl, \
            emulated_network(SPEC, ctl.of_port, "OpenFlow13") as net:
        wait_converged(ctl, net)
        learn_hosts(net)
        ports = uplinks(net)
        assert wait_until(lambda: split_slots() == {ports[10]: 1, ports[40]: 4}, 5), \
            (split_slots(), flow_lines("s10101"))
        assert group_line("OpenFlow13") is None  # no SELECT group on this switch
        assert any("multipath(symmetric_l3l4+udp" in line for line in flow_lines("s10101"))

        before = port_bytes("s10101")
        src, dst = net.get("h1"), net.get("h3")
        sender = src.popen([sys.executable, "-m", "sdn_app.lab.probe", "flows", "--dst",
                            dst.IP(), "--flows", "300", "--mbps", "16", "--seconds", "4"],
                           stdout=subprocess.PIPE, cwd=str(REPO))
        assert json.loads(sender.communicate(timeout=30)[0])["sent"] > 4000
        after = port_bytes("s10101")
        sent = {cap: after[p]["tx"] - before[p]["tx"] for cap, p in ports.items()}
        share = sent[40] / (sent[10] + sent[40])
        # Slots 1:4 put 80% of the flows on the fast path; within 12% of that.
        assert 0.8 * 0.88 <= share <= 0.8 * 1.12, (share, sent)
        assert ctl.alive() and "Traceback" not in ctl.log_tail(200)

        stats = ctl.get("/v1/stats/%016x" % BRANCH)
        switch = switch_by_dpid(net, "%x" % BRANCH)
        assert {p["port_no"] for p in stats} == {
            port for intf, port in switch.ports.items() if intf.name != "lo"}
        assert all({"tx_bps", "rx_bps", "capacity_bps"} <= set(p) for p in stats), stats
