"""This node's ESTIMATED power draw, for /metrics: the collection's model (docs/power.md) fed with
what the power role recorded on this node and its CPU load now, as power_report.yml computes it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._power_model import BOARDS, estimate, knobs_in_effect
from .files import loads_json, read_small_file

POWER_RECORD = Path("/etc/ansible/facts.d/pico_power.fact")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
LOADAVG = Path("/proc/loadavg")
MAX_RECORD_BYTES = 64 * 1024  # the power role's record is a few hundred bytes


def _text(path: Path, limit: int) -> str:
    try:
        return read_small_file(path, limit)[0].decode("utf-8", "replace")
    except (OSError, ValueError):  # missing, unreadable, not a regular file, too large
        return ""


def estimate_now(board: str, record_file: Path = POWER_RECORD, boot_id_file: Path = BOOT_ID,
                 loadavg_file: Path = LOADAVG) -> dict[str, Any] | None:
    """The model's estimate for this node now, or None for a board it does not model."""
    if board not in BOARDS:
        return None
    try:
        record = loads_json(_text(record_file, MAX_RECORD_BYTES) or "{}")
    except ValueError:
        record = {}  # no usable record (power role not applied): the stock configuration
    knobs = knobs_in_effect(record, _text(boot_id_file, 64).strip())["now"]
    try:
        one_minute = float(_text(loadavg_file, 256).split()[0])
    except (IndexError, ValueError):
        one_minute = 0.0
    # One-minute load over the CPU count, capped at 1: CPU utilisation, roughly (as the report).
    load = round(min(max(one_minute / (os.cpu_count() or 1), 0.0), 1.0), 2)
    return estimate(board, knobs, load)
