"""Structured log lines (one JSON object per line on stderr, which journald keeps).

Callers log state changes, not ticks, and never pass secrets.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_threshold = LEVELS["info"]


def set_level(name: str) -> None:
    global _threshold
    _threshold = LEVELS[name]


# What a person looking at a board wants to see happen (the status page's recent events), kept
# whatever the log level: the last RECENT_KEPT, with only the fields below, each cut short. No
# field here ever carries a service's env or a token.
RECENT_EVENTS = frozenset({"member_status", "failover_changed", "container_started", "container_removed",
                           "health_changed", "plan_taken", "service_drained", "service_undrained"})
RECENT_FIELDS = ("node", "status", "service", "replica", "reason", "detail", "generation", "takeovers", "waiting")
RECENT_KEPT = 100
recent: deque[dict[str, Any]] = deque(maxlen=RECENT_KEPT)


def _remember(event: str, fields: dict[str, Any]) -> None:
    kept = {"ts": round(time.time(), 3), "event": event}
    for name in RECENT_FIELDS:
        value = fields.get(name)
        if isinstance(value, list):  # failover_changed's takeovers and waiting: who for whom
            value = ", ".join(f"{v.get('service')}:{v.get('slot')} of {v.get('owner')}" if isinstance(v, dict) else str(v)
                              for v in value)
        if value is not None and value != "":
            kept[name] = str(value)[:160]
    recent.append(kept)


def log(level: str, event: str, **fields: Any) -> None:
    if event in RECENT_EVENTS:
        _remember(event, fields)
    if LEVELS[level] < _threshold:
        return
    record = {"ts": round(time.time(), 3), "level": level, "event": event, **fields}
    sys.stderr.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
    sys.stderr.flush()


class Throttled:
    """An event that can happen once per packet or per accept(): logged at most once per `every`
    seconds, with how often it happened in all."""

    def __init__(self, level: str, event: str, every: float = 10.0):
        self.level, self.event, self.every = level, event, every
        self.count = 0
        self._last = -every

    def __call__(self, **fields: Any) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last >= self.every:
            log(self.level, self.event, total=self.count, **fields)
            self._last = now
