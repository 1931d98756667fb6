"""The bounded log of what happened (``GET /v1/events``): topology changes and the
recomputations that answer them, each recomputation naming its causes."""

from __future__ import annotations

import collections

EVENT_LOG_SIZE = 1000  # this many are kept, oldest dropped first
RECONCILED = "reconciled"  # the kind of a recomputation's record
# Kinds counted from zero from the start (sdn_events_total): a counter series that
# first appears with its first event hides that event from Prometheus's increase() and
# rate(), which is exactly when an operator looks; these are the ones alerts watch.
# Any other kind is counted from its first event on.
WATCHED_KINDS = ("port_up", "port_down", "port_deleted", "link_up", "link_silent",
                 "link_refused", "host_refused", "packet_ins_dropped", "mod_refused",
                 "switch_connected", "switch_disconnected", "backend_up", "backend_down",
                 RECONCILED)


class EventLog:
    """``clock()`` gives the wall-clock seconds stamped on each record."""

    def __init__(self, clock, size: int = EVENT_LOG_SIZE):
        self.clock = clock
        self.records = collections.deque(maxlen=size)
        self.seq = 0
        self.counts = collections.Counter(dict.fromkeys(WATCHED_KINDS, 0))  # since start
        self._pending_causes: list[tuple[int, str]] = []  # since the last recomputation

    def record(self, kind: str, **details) -> dict:
        """Record something that happened; anything but a recomputation becomes a cause
        of the next one."""
        self.seq += 1
        record = {"seq": self.seq, "time": round(self.clock(), 4), "event": kind, **details}
        self.records.append(record)
        self.counts[kind] += 1
        if kind != RECONCILED:
            self._pending_causes.append((self.seq, kind))
        return record

    def take_causes(self) -> list[tuple[int, str]]:
        """(sequence number, kind) of the events since the last call: what a
        recomputation answers."""
        causes, self._pending_causes = self._pending_causes, []
        return causes

    def since(self, seq: int = 0, limit: int = EVENT_LOG_SIZE) -> list[dict]:
        """Records after ``seq``, oldest first, the newest ``limit`` of them."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return [e for e in self.records if e["seq"] > seq][-limit:]
