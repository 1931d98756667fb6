"""The controller's Prometheus metrics scraped by a real Prometheus server (Debian's
package) every second, asked in PromQL over its HTTP API, while real traffic crosses
an emulated network and a link is cut."""

import time

from sdn_app.lab.emulation import (
    ControllerProcess,
    emulated_network,
    host_port,
    ping_pairs,
    switch_link,
    wait_converged,
    wait_until,
)
from sdn_app.lab.prometheus import PrometheusServer

SPEC = "leafspine,2,2,2"


def ends(link):
    """((dpid, port), (dpid, port)) of a Mininet link between switches, written as the
    metrics label them."""
    return tuple(("%016x" % int(intf.node.dpid, 16), str(intf.node.ports[intf]))
                 for intf in (link.intf1, link.intf2))


def test_prometheus_sees_the_traffic_a_cut_link_and_the_events(tmp_path):
    with ControllerProcess(log_path=tmp_path / "controller.log") as ctl, \
            emulated_network(SPEC, ctl.of_port) as net:
        wait_converged(ctl, net)
        assert not ping_pairs(net)[1]
        target = "127.0.0.1:%d" % ctl.metrics_port
        with PrometheusServer([target], log_path=tmp_path / "prometheus.log") as prom:
            assert prom.wait_scraped(), prom.log_tail()
            n_links = sum(1 for lk in net.links
                          if {lk.intf1.node, lk.intf2.node} <= set(net.switches))
            assert prom.value("count(dp_status == 1)") == len(net.switches)
            assert prom.value("count(sdn_link_up == 1)") == 2 * n_links
            assert prom.value("sum(sdn_hosts_learned)") == len(net.hosts)
            assert prom.value('sum(of_packet_ins_total{kind="lldp"})') > 0
            assert prom.value("sum(of_flowmsgs_sent_total)") > 0
            assert prom.value("sum(sdn_recompute_duration_seconds_count)") > 0
            assert prom.value('count(sdn_policy_info{policy="adaptive"})') == 1

            # 20 Mbit/s of UDP from a host on one leaf to one on the other
            src, dst = net.hosts[0], net.hosts[-1]
            server = dst.popen(["iperf3", "-s", "-1", "-p", "5201"])
            time.sleep(0.5)
            client = src.popen(["iperf3", "-c", dst.IP(), "-u", "-b", "20M", "-t", "8",
                                "-p", "5201"])
            try:
                leaf, port = host_port(dst)
                leaf_dpid = "%016x" % int(net.get(leaf).dpid, 16)
                toward_dst = ('rate(of_port_tx_bytes_total{dpid="%s", port="%d"}[5s])'
                              % (leaf_dpid, port))
                assert wait_until(lambda: (prom.value(toward_dst) or 0) > 1e6, 10), \
                    prom.query(toward_dst)
                src_leaf = "%016x" % int(net.get(host_port(src)[0]).dpid, 16)
                uplinks = 'max(sdn_link_load_bytes_per_second{src="%s"})' % src_leaf
                assert wait_until(lambda: (prom.value(uplinks) or 0) > 1e6, 10), \
                    prom.query("sdn_link_load_bytes_per_second")
            finally:
                client.wait(timeout=30)
                server.kill()
                server.wait()

            downs = 'sum(sdn_events_total{kind="port_down"}) or vector(0)'
            recomputes = "sum(sdn_recomputes_total)"
            before = prom.value(downs), prom.value(recomputes)
            link = switch_link(net)
            (a, a_port), (b, b_port) = ends(link)
            state = 'sdn_link_up{src="%s", src_port="%s"}' % (a, a_port)
            net.configLinkStatus(link.intf1.node.name, link.intf2.node.name, "down")
            assert wait_until(lambda: prom.value(state) == 0, 5), prom.query(state)
            assert prom.value('sdn_link_up{src="%s", src_port="%s"}' % (b, b_port)) == 0
            assert prom.value('port_status{dpid="%s", port="%s"}' % (a, a_port)) == 0
            assert wait_until(lambda: prom.value(downs) >= before[0] + 2, 5)
            assert prom.value(recomputes) > before[1]
            net.configLinkStatus(link.intf1.node.name, link.intf2.node.name, "up")
            assert wait_until(lambda: prom.value(state) == 1, 10), prom.query(state)
            assert prom.value("count(sdn_link_up == 1)") == 2 * n_links
        text = ctl.metrics()
        (tmp_path / "metrics.txt").write_text(text)  # a whole scrape, to read
        assert "# TYPE of_port_tx_bytes_total counter" in text
        assert ctl.alive() and "Traceback" not in ctl.log_path.read_text(), ctl.log_tail(80)
