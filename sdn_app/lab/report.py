"""Plain-text tables of what the controller reports, for people reading a terminal.

``sdn-topology [--url http://127.0.0.1:8080]`` prints a running controller's view.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]

    def line(values):
        return "  ".join("%-*s" % (w, v) for w, v in zip(widths, values, strict=True)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def format_topology(topology: dict) -> str:
    """The switches, links (one row per cable, state per direction) and hosts."""
    switches = [[s["dpid"], "yes" if s["connected"] else "NO",
                 sum(p["role"] == "link" for p in s["ports"]),
                 sum(p["role"] == "edge" for p in s["ports"]),
                 sum(not p["live"] for p in s["ports"])]
                for s in topology["switches"]]
    cables = {}
    for lk in topology["links"]:
        a = (lk["src"]["dpid"], lk["src"]["port_no"])
        b = (lk["dst"]["dpid"], lk["dst"]["port_no"])
        cables.setdefault(tuple(sorted((a, b))), {})[(a, b)] = lk["state"]
    links = []
    for (a, b), states in sorted(cables.items()):
        links.append(["%s:%d" % a, "%s:%d" % b, states.get((a, b), "-"),
                      states.get((b, a), "-")])
    hosts = [[h["mac"], ",".join(h["ipv4"]) or "-", "%s:%d" % (h["dpid"], h["port_no"])]
             for h in topology["hosts"]]
    return "\n\n".join([
        "Switches (%d)\n" % len(switches)
        + table(["dpid", "connected", "link ports", "edge ports", "ports down"], switches),
        "Links (%d cables)\n" % len(links)
        + table(["end A", "end B", "A->B", "B->A"], links),
        "Hosts (%d)\n" % len(hosts) + table(["mac", "ipv4", "attached at"], hosts),
    ])


def format_path(path: dict) -> str:
    return " -> ".join(["%s" % path["src"]]
                       + ["[%d]%s[%d]" % (h["in_port"], h["dpid"].lstrip("0") or "0",
                                          h["out_port"]) for h in path["hops"]]
                       + [path["dst"]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Print a running controller's topology.")
    parser.add_argument("--url", default="http://127.0.0.1:8080",
                        help="the controller's REST address (ryu-manager --wsapi-port)")
    args = parser.parse_args(argv)
    try:
        with urllib.request.urlopen(args.url.rstrip("/") + "/v1/topology", timeout=5) as resp:
            topology = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print("cannot read %s/v1/topology: %s" % (args.url, exc), file=sys.stderr)
        return 1
    print(format_topology(topology))
    return 0


if __name__ == "__main__":
    sys.exit(main())
