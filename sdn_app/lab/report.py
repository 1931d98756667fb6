"""Plain-text tables of what the controller reports, for people reading a terminal.

``sdn-topology [--url http://127.0.0.1:8080] [--watch [SECONDS]]`` prints a running
controller's view, once or redrawn until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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


def read_topology(url: str) -> dict:
    """GET <url>/v1/topology; OSError or ValueError (urllib's errors are OSErrors)."""
    with urllib.request.urlopen(url.rstrip("/") + "/v1/topology", timeout=5) as resp:
        return json.load(resp)


def main(argv=None, read=read_topology, sleep=time.sleep) -> int:
    parser = argparse.ArgumentParser(description="Print a running controller's topology.")
    parser.add_argument("--url", default="http://127.0.0.1:8080",
                        help="the controller's REST address (ryu-manager --wsapi-port)")
    parser.add_argument("--watch", type=float, nargs="?", const=1.0, metavar="SECONDS",
                        help="redraw every SECONDS (1 if not given) until Ctrl-C; a "
                             "controller that stops answering is said and waited for")
    args = parser.parse_args(argv)
    if args.watch is not None and args.watch <= 0:
        parser.error("--watch needs a positive number of seconds")
    try:
        while True:
            try:
                text, failed = format_topology(read(args.url)), False
            except (OSError, ValueError) as exc:
                text, failed = "cannot read %s/v1/topology: %s" % (args.url, exc), True
            if args.watch is None:
                print(text, file=sys.stderr if failed else sys.stdout)
                return 1 if failed else 0
            # clear the terminal, then the view with when it was read
            print("\x1b[H\x1b[2J%s  %s (every %g s; Ctrl-C ends)\n\n%s"
                  % (time.strftime("%H:%M:%S"), args.url, args.watch, text), flush=True)
            sleep(args.watch)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
