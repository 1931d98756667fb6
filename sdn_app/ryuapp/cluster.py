"""The Ryu side of high availability (the election itself is core/cluster.py): the loop
that steps the election against etcd, the guard that keeps a follower from changing
any switch, the OpenFlow role each switch is told, and the state the leader records.

A follower sends nothing that modifies a switch: every datapath gets a guard on its
``send_msg`` (``guard_datapath``) that drops flow, group, meter, port and table mods and
packet-outs unless this node leads, whatever code path tries; reads (statistics,
descriptions, barriers) and role requests pass.  The switch refuses them from a SLAVE
anyway (OFPBRC_IS_SLAVE); the guard means we never try.
"""

from __future__ import annotations

import json
import time
import urllib.request

from ryu.lib import hub

from ..core.cluster import LEADER, STATE_PREFIX, Election, StoreUnavailable
from .cluster_store import EtcdStore, parse_endpoints

# What only the leader may send: everything that changes a switch's state or puts a
# frame on its ports.
MODIFYING = frozenset({"OFPFlowMod", "OFPGroupMod", "OFPMeterMod", "OFPPacketOut",
                       "OFPPortMod", "OFPTableMod"})


def guard_datapath(datapath, allowed, frames_allowed=None) -> None:
    """Make ``datapath.send_msg`` drop modifying messages while ``allowed()`` is false
    (counted in ``datapath.send_msg.refused``).  ``frames_allowed()``, if given, lets
    packet-outs through on its own: a leader that lost the store but is still the
    switches' master keeps probing links and answering ARP, so the network it keeps as
    it is does not go stale meanwhile; table changes still wait for the store."""
    send = datapath.send_msg

    def guarded(msg, *args, **kwargs):
        kind = type(msg).__name__
        if kind in MODIFYING and not allowed() and not (
                kind == "OFPPacketOut" and frames_allowed is not None and frames_allowed()):
            guarded.refused += 1
            return False
        return send(msg, *args, **kwargs)
    guarded.refused = 0
    datapath.send_msg = guarded


def role_request(datapath, master: bool, generation: int):
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPRoleRequest(datapath, ofp.OFPCR_ROLE_MASTER if master
                                 else ofp.OFPCR_ROLE_SLAVE, generation)


class ClusterMember:
    """This controller as a member of the cluster: ``run`` is its green thread;
    ``on_change(RoleChange)`` is called from it."""

    def __init__(self, settings, node_id: str, rest_url: str, on_change, logger):
        self.store = EtcdStore(parse_endpoints(settings.cluster_store))  # ValueError
        self.election = Election(node_id, settings.cluster_lease)
        self.rest_url = rest_url
        self.on_change = on_change
        self.logger = logger
        self.state_dirty: dict = {}  # name -> value the leader could not record yet
        self._warned_at = float("-inf")

    def leading(self) -> bool:
        return self.election.leading(time.monotonic())

    def holding_on(self) -> bool:
        """Leading, or led last and lost the store with nobody else elected since: the
        switches still have this node as their master."""
        return self.leading() or self.election.suspended

    def watch_leader(self, interval_s: float, misses: int = 2):
        """Fast detection of a leader whose process is gone (a green thread): its REST
        port is asked every ``interval_s``; ``misses`` refused connections in a row (the
        kernel answering for a dead process) and its lease is revoked, so the next step
        elects at once instead of at lease expiry.  Only a refusal counts: a slow answer
        or a timeout may be a busy leader (a large recomputation), and a host that
        vanished entirely is left to the lease.  etcd still decides who leads; a leader
        revoked in error finds its lease gone at its next renewal, and the switches
        already refuse it (the new leader's generation)."""
        refused = 0
        while True:
            hub.sleep(interval_s)
            election = self.election
            record = election.members.get(election.leader or "", {})
            if election.role == LEADER or not record.get("rest") or not record.get("lease"):
                refused = 0
                continue
            try:
                with urllib.request.urlopen(record["rest"] + "/v1/cluster",
                                            timeout=max(1.0, 10 * interval_s)):
                    refused = 0
            except OSError as exc:
                reason = getattr(exc, "reason", exc)
                refused = refused + 1 if isinstance(reason, ConnectionRefusedError) else 0
            if refused >= misses:
                refused = 0
                self.logger.warning("cluster: leader %s refuses connections; revoking its "
                                    "lease", election.leader)
                try:
                    self.store.revoke(int(record["lease"]))
                except (StoreUnavailable, ValueError):
                    pass  # another follower was first, or the store decides at expiry

    def run(self):
        while True:
            started = time.monotonic()
            try:
                change = self.election.step(self.store, started, {
                    "heartbeat": time.time(), "role": self.election.role,
                    "rest": self.rest_url, "lease": self.election.lease})
                if change is not None:
                    self.on_change(change)
                if self.state_dirty and self.leading():
                    self._flush_state()
                if not self.election.store_ok and started - self._warned_at > 10:
                    self._warned_at = started
                    self.logger.warning("cluster store unreachable (%s); %s",
                                        self.election.store_error,
                                        "leading until the lease runs out"
                                        if self.leading() else "not leading")
            except Exception:  # the loop must outlive any bug in a step
                self.logger.exception("cluster step failed")
            hub.sleep(max(0.0, self.election.tick_s - (time.monotonic() - started)))

    def record(self, name: str, value) -> None:
        """Keep ``value`` (JSON-ready) in the store as the leader's ``name`` at the next
        step (within a tick; retried while the store does not answer), so whoever
        records it is never held up by the store."""
        self.state_dirty[name] = value

    def _flush_state(self) -> None:
        for name, value in list(self.state_dirty.items()):
            try:
                self.store.put(STATE_PREFIX + name, json.dumps(value))
            except StoreUnavailable as exc:
                self.logger.warning("cluster store: %s not recorded yet (%s)", name, exc)
                return
            if self.state_dirty.get(name) is value:
                del self.state_dirty[name]

    def recorded(self) -> dict:
        """{name: value} of what the leaders recorded ({} if the store does not answer)."""
        try:
            found = self.store.get_prefix(STATE_PREFIX)
        except StoreUnavailable as exc:
            self.logger.warning("cluster store: the recorded state cannot be read (%s)", exc)
            return {}
        out = {}
        for key, text in found.items():
            try:
                out[key[len(STATE_PREFIX):]] = json.loads(text)
            except ValueError:
                self.logger.warning("cluster store: %s is not JSON; ignored", key)
        return out

    @property
    def is_leader(self) -> bool:
        return self.election.role == LEADER

    def stop(self) -> None:
        self.election.resign(self.store)
