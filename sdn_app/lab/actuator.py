"""The lab's scaling actuator: starts and stops a real backend server on the Mininet
host that has a given address, for the controller's ``scaling_command``.

    python -m sdn_app.lab.actuator [--startup-s S] [--serve-args "..."] start <service> <ip> <port>
    python -m sdn_app.lab.actuator stop <service> <ip> <port>

``start`` enters the host's network namespace (Mininet's ``mnexec -a <pid>``) and runs
``sdn_app.lab.service_load serve`` there, which listens only after ``--startup-s`` (a
backend's start-up time); ``stop`` ends it.  Exit 0 on success; otherwise a message on
stderr and exit 1, which the controller retries with backoff.  A real deployment points
``scaling_command`` at its own script with the same arguments (scale a Kubernetes
Deployment, a VM group...).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

STATE = Path(os.environ.get("SDN_APP_ACTUATOR_DIR", "/tmp/sdn_app_actuator"))
REPO = Path(__file__).resolve().parents[2]


def mininet_hosts() -> dict:
    """{host name: shell pid} of the Mininet hosts running on this machine, read from
    /proc (no process is started: the actuator runs while VR traffic needs the CPU)."""
    hosts = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in words if w]
        # a host's shell: "bash ... mininet:h3"; a subshell it forks for a command
        # looks the same until it runs the command, and is gone soon: the shell is the
        # oldest (lowest pid; Mininet starts the shells before anything else)
        if words and words[0].endswith("bash") and words[-1].startswith("mininet:") \
                and len(words[-1]) > len("mininet:"):
            name = words[-1][len("mininet:"):]
            hosts[name] = min(hosts.get(name, int(entry.name)), int(entry.name))
    return hosts


def local_addresses(pid: int) -> set:
    """The IPv4 addresses of the network namespace process ``pid`` is in."""
    try:
        return addresses_in_fib_trie(Path("/proc/%d/net/fib_trie" % pid).read_text())
    except OSError:
        return set()


def addresses_in_fib_trie(text: str) -> set:
    """The local addresses in a /proc/net/fib_trie: each is the last word of the line
    before a "/32 host LOCAL" (blank lines skipped: one read while a namespace's process
    was going away had one there)."""
    found, before = set(), []
    for line in text.splitlines():
        if "/32 host LOCAL" in line and before:
            found.add(before[-1])
        before = line.split() or before
    return found


def host_with(ip: str) -> tuple[str, int]:
    for name, pid in sorted(mininet_hosts().items()):
        if ip in local_addresses(pid):
            return name, pid
    raise LookupError("no Mininet host has address %s" % ip)


def pid_file(service: str, ip: str, port: int) -> Path:
    return STATE / ("%s-%s-%d.pid" % (service, ip, port))


def start(service: str, ip: str, port: int, startup_s: float, serve_args=()) -> None:
    name, host_pid = host_with(ip)
    STATE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["mnexec", "-a", str(host_pid), sys.executable, "-m", "sdn_app.lab.service_load",
         "serve", "--port", str(port), "--name", name, "--startup-s", str(startup_s),
         *serve_args],
        cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    pid_file(service, ip, port).write_text(str(proc.pid))


def stop(service: str, ip: str, port: int) -> None:
    path = pid_file(service, ip, port)
    if not path.exists():
        return  # nothing of ours runs there: stopped already
    try:
        os.kill(int(path.read_text()), signal.SIGTERM)
    except ProcessLookupError:
        pass
    path.unlink()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("service")
    parser.add_argument("ip")
    parser.add_argument("port", type=int)
    parser.add_argument("--startup-s", type=float, default=0.0)
    parser.add_argument("--serve-args", default="",
                        help="more service_load serve options (e.g. a capacity)")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            start(args.service, args.ip, args.port, args.startup_s,
                  args.serve_args.split())
        else:
            stop(args.service, args.ip, args.port)
    except (LookupError, OSError, ValueError) as exc:
        print("actuator: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
