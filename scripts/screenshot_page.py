#!/usr/bin/env python3
"""A screenshot of the live topology page (GET /ui/) on an emulated network: the
controller, a Mininet topology with every pair pinged once, optionally a link cut and
a host pair selected, as headless Chromium draws it.  The README's picture is made
with the defaults.

Usage: .venv/bin/python scripts/screenshot_page.py [--topo fattree,4,bw=10]
           [--out docs/topology-page.png] [--no-cut] [--no-pair] [--udp-mbps 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdn_app.lab.browser import click, count, headless_chromium  # noqa: E402
from sdn_app.lab.emulation import (  # noqa: E402
    ControllerProcess,
    capacity_settings,
    emulated_network,
    ping_pairs,
    switch_link,
    wait_converged,
    wait_until,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topo", default="fattree,4,bw=10",
                        help="shaped links (bw=) colour by load; their rates are given to "
                             "the controller")
    parser.add_argument("--out", default=str(ROOT / "docs" / "topology-page.png"))
    parser.add_argument("--no-cut", action="store_true", help="leave every link up")
    parser.add_argument("--no-pair", action="store_true", help="select no host pair")
    parser.add_argument("--udp-mbps", type=float, default=7.0,
                        help="UDP load between the pair while the picture is taken (0: none)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with ControllerProcess(settings=capacity_settings(args.topo)) as ctl, \
            emulated_network(args.topo, ctl.of_port) as net, headless_chromium() as browser:
        print("[page] waiting for the controller to learn %s" % args.topo, flush=True)
        wait_converged(ctl, net)
        ping_pairs(net)
        browser.get("http://127.0.0.1:%d/ui/" % ctl.rest_port)
        wait_until(lambda: count(browser, ".host") == len(net.hosts), 10)
        src, dst = net.hosts[0], net.hosts[-1]
        load = []
        if args.udp_mbps > 0:
            load.append(dst.popen(["iperf3", "-s", "-1", "-p", "5201"]))
            time.sleep(0.5)
            load.append(src.popen(["iperf3", "-c", dst.IP(), "-u", "-b", "%gM" % args.udp_mbps,
                                   "-t", "10", "-p", "5201"], stdout=subprocess.DEVNULL))
        try:
            if not args.no_pair:
                for host in (src, dst):
                    click(browser, '.host[data-mac="%s"] circle' % host.MAC())
            time.sleep(4.0)  # the load shows in the smoothed link rates
            if not args.no_cut:
                link = switch_link(net)
                net.configLinkStatus(link.intf1.node.name, link.intf2.node.name, "down")
                wait_until(lambda: count(browser, ".link.down") == 2, 5)
                time.sleep(1.5)
            browser.save_screenshot(str(out))
        finally:
            for proc in load:
                proc.kill()
                proc.wait()
    print("[page] %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
