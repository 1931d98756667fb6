#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: system packages, Open vSwitch
# daemons (userspace datapath: this kernel has no openvswitch module) and the
# project's virtual environment in .venv.  A second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
STAMP=$VENV/.setup-stamp
log() { printf '[setup] %s\n' "$*"; }

APT_PACKAGES=(openvswitch-switch mininet iperf3 iputils-ping ethtool iproute2 python3-venv python3-dev gcc haproxy prometheus chromium chromium-driver etcd-server etcd-client)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# OVS daemons (the userspace datapath needs no kernel module).
if ! ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
    log "starting Open vSwitch daemons"
    /usr/share/openvswitch/scripts/ovs-ctl --system-id=random start >/dev/null 2>&1 || true
    ovs-vsctl --timeout=5 show >/dev/null
fi

# The venv is built from Debian's interpreter so that Debian's mininet package
# (installed for /usr/bin/python3) is importable alongside our pinned packages.
want_hash=$(cat requirements.txt setup.cfg pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [[ -f $STAMP && $(cat "$STAMP") == "$want_hash" ]] && "$VENV/bin/python" -c 'import ryu, sdn_app, mininet.net' 2>/dev/null; then
    log "environment up to date ($VENV)"
    exit 0
fi
if [[ ! -x $VENV/bin/python ]]; then
    log "creating $VENV"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
# Ryu 4.34 only builds with an old setuptools and without build isolation.
"${PIP[@]}" 'setuptools<58' wheel
"${PIP[@]}" --no-build-isolation -r requirements.txt
"${PIP[@]}" --no-build-isolation --no-deps -e .
# Make plain `.venv/bin/ryu-manager` work on Python 3.11: a .pth line runs our
# compatibility shim at interpreter start, before Ryu imports eventlet.wsgi.
# Named zz_ so that it runs after the editable-install path entries.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo 'import sdn_app.ryuapp.compat' > "$site/zz_sdn_app_compat.pth"
"$VENV/bin/python" -c 'import ryu.app.wsgi, sdn_app, mininet.net'
echo "$want_hash" > "$STAMP"
log "environment ready ($VENV)"
