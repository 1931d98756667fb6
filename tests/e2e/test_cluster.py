"""High availability on the real stack: a 3-member etcd cluster (Debian's etcd-server)
on loopback, three controllers, a Mininet leaf-spine whose switches connect to all of
them.  The leader killed: another takes over, traffic flows throughout and nothing that
forwards changes; a follower refuses changes; the switches refuse a deposed leader
(stale generation) and a follower's flow mods; a leader cut off from the store stops."""

import json
import subprocess
import sys
import time

from sdn_app.lab.emulation import (
    REPO,
    ControllerProcess,
    cluster_leader,
    emulated_network,
    network_tables,
    ping_pairs,
    probe_run,
    tables_diff,
    wait_converged,
    wait_quiet,
    wait_until,
)
from sdn_app.lab.etcd import EtcdCluster
from sdn_app.lab.ofclient import OpenFlowPeer, add_controller, masters

SPEC = "leafspine,2,2,2"
OFP_ROLE_REQUEST_FAILED, OFPRRFC_STALE = 11, 0
OFPET_BAD_REQUEST, OFPBRC_IS_SLAVE = 1, 10


def start_controllers(tmp_path, stores: list[str], first: int = 0,
                      **settings) -> list[ControllerProcess]:
    """Controllers c<first>, c<first + 1>... each with its cluster_store."""
    controllers = []
    for i, store in enumerate(stores, start=first):
        ctl = ControllerProcess(settings={"cluster_store": store, "cluster_node_id": "c%d" % i,
                                          **settings},
                                log_path=tmp_path / ("c%d.log" % i))
        controllers.append(ctl.start())
    return controllers


def role_of(ctl) -> str | None:
    status, body = ctl.request("/v1/cluster")
    return body.get("role") if status == 200 and isinstance(body, dict) else None


def test_the_leader_killed_another_takes_over_with_nothing_lost_or_moved(tmp_path):
    with EtcdCluster(3, log_dir=tmp_path) as etcd:
        # ecmp: its paths follow from the topology alone, so any change the new leader
        # made would be the takeover's (adaptive ones follow the demand it measures)
        controllers = start_controllers(tmp_path, [etcd.store_setting()] * 3, policy="ecmp")
        try:
            leader = cluster_leader(controllers)
            assert leader, [c.log_tail() for c in controllers]
            with emulated_network(SPEC, [c.of_port for c in controllers]) as net:
                wait_converged(leader, net)
                assert not ping_pairs(net)[1]
                # a service whose backend answers: its health, known only to the
                # leader's checks, must reach the next leader through the store
                server = net.hosts[1].popen(
                    [sys.executable, "-m", "sdn_app.lab.service_load", "serve", "--port",
                     "8000", "--name", "h2"], cwd=str(REPO),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                body = {"name": "web", "vip": "10.0.0.100", "port": 8000, "protocol": "tcp",
                        "backends": [{"ip": net.hosts[1].IP()}]}
                assert leader.request("/v1/services", "POST",
                                      json.dumps(body).encode())[0] == 201
                assert wait_until(lambda: leader.get("/v1/services/web")["backends"][0]
                                  ["state"] == "up", 5)
                assert wait_quiet(leader)
                names = {c.settings["cluster_node_id"] for c in controllers}
                assert wait_until(lambda: masters(net, controllers)
                                  == {leader.settings["cluster_node_id"]}, 15), \
                    masters(net, controllers)
                before = network_tables(net)
                generation = leader.get("/v1/cluster")["generation"]
                last_seq = leader.get("/v1/events")[-1]["seq"]
                src, dst = net.hosts[0], net.hosts[-1]
                killed = []

                seen_first = {}

                def kill():  # SIGKILL: no resignation, the lease must run out
                    killed.append(time.time())
                    leader.proc.kill()
                    leader.proc.wait()
                    # the new leader at once, before its own checks (2 answers, 200 ms
                    # apart) could find the backend up again: it knows from the store
                    first = cluster_leader([c for c in controllers if c is not leader], 10)
                    if first is not None:
                        seen_first["state"] = first.get("/v1/services/web")[
                            "backends"][0]["state"]
                probes = probe_run(src, dst, 6.0, event=kill, event_at=1.0)
                assert probes["lost"] == 0, probes
                assert seen_first.get("state") == "up", seen_first
                survivors = [c for c in controllers if c is not leader]
                new = cluster_leader(survivors, 10)
                assert new, [c.log_tail() for c in survivors]
                elected = [e for e in new.get("/v1/events") if e["event"] == "role_changed"
                           and e["role"] == "leader"]
                took = elected[-1]["time"] - killed[0]
                assert 0 < took <= 2 + 1, took  # at worst the lease (2 s) and a step
                assert any("refuses connections; revoking its lease" in c.log_path.read_text()
                           for c in survivors), "fast detection did not see it go"
                cluster = new.get("/v1/cluster")
                assert cluster["generation"] > generation
                assert new.get("/v1/events")[-1]["seq"] > last_seq, "the sequence goes on"
                assert cluster["leader"] == new.settings["cluster_node_id"]
                follower = next(c for c in survivors if c is not new)
                assert follower.get("/v1/cluster")["leader"] == cluster["leader"]
                status, body = follower.request("/v1/policy", "PUT", b'{"policy": "ecmp"}')
                assert status == 409 and body["leader"] == cluster["leader"], body
                assert wait_until(lambda: masters(net, controllers)
                                  == {cluster["leader"]}, 15), masters(net, controllers)
                assert wait_quiet(new)
                after = network_tables(net)
                assert after == before, ("the takeover moved no traffic",
                                         tables_diff(before, after))
                assert new.get("/v1/policy")["mods_sent"]["flow_mods"] == 0
                assert not ping_pairs(net)[1]
                assert names >= masters(net, controllers)
                assert new.get("/v1/services/web")["backends"][0]["state"] == "up"
                server.kill()
                server.wait()
        finally:
            for ctl in controllers:
                ctl.stop()
        for ctl in controllers:
            assert "Traceback" not in ctl.log_path.read_text(), ctl.log_tail(80)


def test_a_deposed_leader_is_fenced_by_the_store_and_refused_by_the_switches(tmp_path):
    """c0 reaches the store only through member etcd0; killing that member cuts c0 off
    while the store keeps its quorum.  c0 stops changing anything once its lease may
    have expired, c1 or c2 leads with a larger generation, and a switch refuses a role
    request carrying c0's old generation and a follower's flow mod."""
    with EtcdCluster(3, log_dir=tmp_path) as etcd:
        only_first = etcd.store_setting([etcd.names[0]])
        others = etcd.store_setting(etcd.names[1:])
        controllers = start_controllers(tmp_path, [only_first])  # c0 first: it leads
        try:
            assert wait_until(lambda: role_of(controllers[0]) == "leader", 10), \
                controllers[0].log_tail()
            controllers += start_controllers(tmp_path, [others, others], first=1)
            with emulated_network(SPEC, [c.of_port for c in controllers]) as net:
                cut = controllers[0]
                wait_converged(cut, net)
                assert not ping_pairs(net)[1]
                old = cut.get("/v1/cluster")
                assert old["leader"] == "c0" and len(old["members"]) == 3, old
                etcd.kill(etcd.names[0])
                assert wait_until(lambda: role_of(cut) == "follower", 10), cut.log_tail()
                successor = cluster_leader([c for c in controllers if c is not cut], 10)
                assert successor, [c.log_tail() for c in controllers]
                new = successor.get("/v1/cluster")
                assert new["generation"] > old["generation"]
                assert not cut.get("/v1/cluster")["store_reachable"]
                assert cut.request("/v1/policy", "PUT", b'{"policy": "ecmp"}')[0] == 409
                assert not ping_pairs(net)[1], "the new leader runs the network"
                switch = net.switches[0]
                with OpenFlowPeer() as peer:
                    add_controller(switch, peer.port)
                    peer.accept()
                    stale = peer.answer_to(peer.send(peer.role_request(
                        master=True, generation=old["generation"])))
                    assert (stale.type, stale.code) == (OFP_ROLE_REQUEST_FAILED,
                                                        OFPRRFC_STALE), stale
                    reply = peer.answer_to(peer.send(peer.role_request(
                        master=False, generation=new["generation"])))
                    assert reply.role == 3 and reply.generation_id == new["generation"]
                    refused = peer.answer_to(peer.send(peer.flow_mod()))
                    assert (refused.type, refused.code) == (OFPET_BAD_REQUEST,
                                                            OFPBRC_IS_SLAVE), refused
        finally:
            for ctl in controllers:
                ctl.stop()
