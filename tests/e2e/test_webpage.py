"""The live topology page (GET /ui/) in a real browser, headless Chromium through
Selenium, against a running controller and a Mininet fat tree: what it draws, a host
pair's paths, a service's backends with their health, and a cut link drawn as failed
within 2 s; with nothing in the browser's console."""

import json
import subprocess
import sys
import time

from sdn_app.lab.browser import click, console_errors, count, headless_chromium
from sdn_app.lab.emulation import (
    REPO,
    ControllerProcess,
    emulated_network,
    ping_pairs,
    switch_link,
    wait_converged,
    wait_until,
)

SPEC = "fattree,4"
VIP, PORT = "10.0.0.100", 8000


def test_the_page_draws_the_network_paths_services_and_a_cut_link(tmp_path):
    with ControllerProcess(log_path=tmp_path / "controller.log") as ctl, \
            emulated_network(SPEC, ctl.of_port) as net, headless_chromium() as browser:
        wait_converged(ctl, net)
        assert not ping_pairs(net)[1]
        up, down = net.hosts[0], net.hosts[1]  # a backend that answers, one that cannot
        server = up.popen([sys.executable, "-m", "sdn_app.lab.service_load", "serve",
                           "--port", str(PORT), "--name", up.name], cwd=str(REPO),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            body = {"name": "web", "vip": VIP, "port": PORT, "protocol": "tcp",
                    "backends": [{"ip": up.IP()}, {"ip": down.IP()}]}
            assert ctl.request("/v1/services", "POST", json.dumps(body).encode())[0] == 201
            status, page = ctl.request("/")  # followed to the page itself
            assert status == 200 and "<svg" in page
            browser.get("http://127.0.0.1:%d/" % ctl.rest_port)  # sent on to /ui/
            assert browser.current_url.endswith("/ui/")

            def drawn(selector, n):
                return wait_until(lambda: count(browser, selector) == n, 10)
            n_links = 2 * sum(1 for lk in net.links
                              if {lk.intf1.node, lk.intf2.node} <= set(net.switches))
            assert drawn(".switch", len(net.switches)), count(browser, ".switch")
            assert drawn(".host", len(net.hosts)), count(browser, ".host")
            assert drawn(".link.up", n_links), count(browser, ".link")
            assert browser.find_element("id", "summary").get_attribute("data-down") == "0"
            assert drawn('.backend[data-state="up"]', 1)
            assert drawn('.backend[data-state="down"]', 1)
            assert drawn(".host.backend-up", 1) and drawn(".host.backend-down", 1)

            src, dst = net.hosts[0], net.hosts[-1]  # across the core
            for host in (src, dst):
                assert click(browser, '.host[data-mac="%s"] circle' % host.MAC())
            paths = ctl.get("/v1/paths?src=%s&dst=%s" % (src.MAC(), dst.MAC()))["paths"]
            assert drawn(".path-row", len(paths)), browser.find_element("id", "paths").text
            assert count(browser, ".path-hop") >= len(paths[0]["hops"]) + 1

            link = switch_link(net)
            end = link.intf1
            end_id = "%016x:%d" % (int(end.node.dpid, 16), end.node.ports[end])
            cut_at = time.monotonic()
            net.configLinkStatus(link.intf1.node.name, link.intf2.node.name, "down")
            assert wait_until(lambda: count(browser, '.link.down[data-src="%s"]' % end_id),
                              5, interval=0.05)
            shown_after = time.monotonic() - cut_at
            assert shown_after <= 2.0, shown_after
            assert count(browser, ".link.down") == 2  # both directions
            browser.save_screenshot(str(tmp_path / "topology-page.png"))
            net.configLinkStatus(link.intf1.node.name, link.intf2.node.name, "up")
            assert drawn(".link.down", 0)
            assert drawn(".link.up", n_links)
            errors = console_errors(browser)
            assert not errors, errors
        finally:
            server.kill()
            server.wait()
        assert ctl.alive() and "Traceback" not in ctl.log_path.read_text(), ctl.log_tail(80)
