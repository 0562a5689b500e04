"""Structured log lines (one JSON object per line on stderr, which journald keeps).

Callers log state changes, not ticks, and never pass secrets.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_threshold = LEVELS["info"]


def set_level(name: str) -> None:
    global _threshold
    _threshold = LEVELS[name]


def log(level: str, event: str, **fields: Any) -> None:
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
