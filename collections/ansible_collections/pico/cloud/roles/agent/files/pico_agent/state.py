"""Small persistent state (restart counters): written temp + fsync + rename.

A corrupt file, or one of the wrong shape, is reported and kept aside for inspection, never
silently replaced; the agent starts with counters at 0 rather than not at all.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .files import FileProblem, loads_json, read_small_file, write_atomically
from .log import log

MAX_STATE_BYTES = 1024 * 1024


def _checked(data: Any) -> dict[str, Any]:
    """The state this version writes: {"restarts": {service: count}}; other keys are kept."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    restarts = data.get("restarts", {})
    if not isinstance(restarts, dict) or not all(
            isinstance(name, str) and len(name) <= 64 and isinstance(count, int) and not isinstance(count, bool)
            and 0 <= count < 2**53 for name, count in restarts.items()):
        raise ValueError("restarts is not an object of service name: count")
    return data


class StateFile:
    def __init__(self, path: Path):
        self.path = path
        self.problem: str | None = None

    def load(self) -> dict[str, Any]:
        try:
            raw, _status = read_small_file(self.path, MAX_STATE_BYTES)
            return _checked(loads_json(raw))
        except FileNotFoundError:
            return {}
        except (FileProblem, ValueError, OSError) as err:
            why = str(err) if isinstance(err, FileProblem) else getattr(err, "strerror", None) or str(err)
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            try:
                os.replace(self.path, aside)
                kept = f"kept as {aside}"
            except OSError as move_err:
                kept = f"could not be moved aside ({move_err.strerror})"
            self.problem = f"{self.path} was unreadable ({why[:200]}); {kept}, counters restart at 0"
            log("error", "state_corrupt", path=str(self.path), kept=kept, error=why[:200])
            return {}

    def save(self, data: dict[str, Any]) -> None:
        write_atomically(self.path, json.dumps(data, sort_keys=True).encode())
