"""Small persistent state (restart counters): written temp + fsync + rename.

A corrupt file is reported and kept aside for inspection, never silently replaced.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .log import log


class StateFile:
    def __init__(self, path: Path):
        self.path = path
        self.problem: str | None = None

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return data
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError) as err:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            self.problem = f"{self.path} was unreadable ({err}); kept as {aside}, counters restart at 0"
            log("error", "state_corrupt", path=str(self.path), kept_as=str(aside), error=str(err))
            return {}

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
