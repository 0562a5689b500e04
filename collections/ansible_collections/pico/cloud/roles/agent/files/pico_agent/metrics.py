"""Prometheus text exposition of the agent's view: members, services, restarts, reconcile time, board."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from ._plan_document import Plan
    from .catalog import Catalog

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")
# Raspberry Pi firmware's throttling bits (under-voltage, frequency capped, throttled, soft limit).
THROTTLED = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _read_number(path: Path, base: int = 10) -> int | None:
    try:
        return int(path.read_text().strip(), base)
    except (OSError, ValueError):
        return None


class Metrics:
    def __init__(self) -> None:
        self.reconcile_count = 0
        self.reconcile_seconds_sum = 0.0
        self.reconcile_seconds_last = 0.0
        self.peer_fetch_failures = 0
        self.serf_broadcasts_late = 0
        self.dns_queries = 0
        # Set by the agent from its connection limiter before each render.
        self.connections_waiting = 0
        self.connections_evicted = 0
        self.failover_takeovers = 0
        self.failover_waiting = 0
        self.failover_uncovered = 0

    def observe_reconcile(self, seconds: float) -> None:
        self.reconcile_count += 1
        self.reconcile_seconds_sum += seconds
        self.reconcile_seconds_last = seconds

    def render(self, catalog: Catalog, local_status: list[dict], restarts: dict[str, int],
               spec_errors: int, serf_connected: bool, plan: Plan | None = None,
               thermal: Path = THERMAL, throttled: Path = THROTTLED, power: dict[str, Any] | None = None) -> str:
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")

        metric("pico_build_info", "gauge", "The agent's version and the Python that runs it (always 1).",
               [({"version": __version__, "python": platform.python_version()}, 1)])
        statuses: dict[str, int] = {s: 0 for s in ("alive", "leaving", "left", "failed")}
        for member in catalog.members.values():
            statuses[member.status] = statuses.get(member.status, 0) + 1
        metric("pico_members", "gauge", "Serf members by status.", [({"status": s}, n) for s, n in statuses.items()])
        metric("pico_serf_connected", "gauge", "1 while the agent holds a Serf RPC connection.",
               [({}, 1 if serf_connected else 0)])
        metric("pico_services", "gauge", "Services with at least one healthy instance in the cluster.",
               [({}, len(catalog.services()))])
        metric("pico_service_instances", "gauge", "Healthy instances per service in the cluster.",
               [({"service": name}, n) for name, n in catalog.services().items()])
        # What the plan asks for, beside what runs: every agent holds the plan, so any one board
        # scraped tells "healthy vs desired" (a service with no healthy instance has no sample
        # above, but has one here).
        metric("pico_service_desired", "gauge", "Replicas per service in the plan this node holds.",
               [({"service": name}, len(service.slots)) for name, service in sorted(plan.services.items())]
               if plan else [])
        metric("pico_plan_generation", "gauge", "Generation of the plan this node holds (0: none).",
               [({}, plan.generation if plan else 0)])
        local: dict[tuple[str, str], int] = {}
        for status in local_status:
            key = (status["service"], status["health"])
            local[key] = local.get(key, 0) + 1
        metric("pico_local_instances", "gauge", "This node's instances by health (starting, healthy, unhealthy, down).",
               [({"service": s, "health": h}, n) for (s, h), n in sorted(local.items())])
        metric("pico_restarts_total", "counter", "Container restarts by the supervisor (exits, kills, failed checks).",
               [({"service": s}, n) for s, n in sorted(restarts.items())])
        metric("pico_service_files_invalid", "gauge", "Service files that do not validate (left untouched).",
               [({}, spec_errors)])
        # A summary without quantiles (its sum and count: rate() of the two is the mean), and the
        # last pass as a gauge of its own: a quantile="1" sample was not the maximum it claimed.
        metric("pico_reconcile_duration_seconds", "summary", "Time of the reconcile passes.", [])
        lines.append(f"pico_reconcile_duration_seconds_sum {self.reconcile_seconds_sum:.6f}")
        lines.append(f"pico_reconcile_duration_seconds_count {self.reconcile_count}")
        metric("pico_reconcile_last_duration_seconds", "gauge", "Time of the last reconcile pass.",
               [({}, round(self.reconcile_seconds_last, 6))])
        metric("pico_peer_fetch_failures_total", "counter", "Failed fetches of a peer's catalog.",
               [({}, self.peer_fetch_failures)])
        metric("pico_serf_broadcasts_late_total", "counter",
               "Catalog tag changes whose gossip Serf had not finished within its broadcast timeout (a busy CPU).",
               [({}, self.serf_broadcasts_late)])
        metric("pico_dns_queries_total", "counter", "DNS queries answered.", [({}, self.dns_queries)])
        metric("pico_connections_waiting", "gauge", "TCP connections (API, DNS) that have not sent a whole request.",
               [({}, self.connections_waiting)])
        metric("pico_connections_evicted_total", "counter",
               "Waiting connections dropped to stay under the cap (a connection flood, or very slow clients).",
               [({}, self.connections_evicted)])
        metric("pico_failover_takeovers", "gauge", "Replicas this node runs for failed peers.",
               [({}, self.failover_takeovers)])
        metric("pico_failover_waiting", "gauge", "Slots of failed peers that fit on no surviving node.",
               [({}, self.failover_waiting)])
        metric("pico_failover_uncovered", "gauge", "Slots of failed peers no node serves yet, as this node sees them.",
               [({}, self.failover_uncovered)])
        if power:  # power.estimate_now(): boards the model covers (Pi Zero, Zero 2 W) only
            # No board label: Prometheus has it from the agents' service discovery, as node.
            metric("pico_power_estimate_watts", "gauge",
                   "ESTIMATED supply power of this board now, from its power settings and CPU load "
                   "(the model of docs/power.md; not a measurement).", [({}, power["watts"])])
            metric("pico_power_stock_watts", "gauge",
                   "ESTIMATED supply power of this board in the stock configuration at the same load.",
                   [({}, power["stock_watts"])])
        temperature = _read_number(thermal)
        if temperature is not None:
            metric("pico_node_temperature_celsius", "gauge", "SoC temperature.", [({}, temperature / 1000)])
        bits = _read_number(throttled, 16)
        if bits is not None:
            flags = {"under_voltage": 0, "frequency_capped": 1, "throttled": 2, "soft_temperature_limit": 3}
            metric("pico_node_throttled", "gauge", "Raspberry Pi firmware throttling flags, now.",
                   [({"reason": reason}, (bits >> bit) & 1) for reason, bit in flags.items()])
            metric("pico_node_throttled_since_boot", "gauge", "Raspberry Pi firmware throttling flags since boot.",
                   [({"reason": reason}, (bits >> (bit + 16)) & 1) for reason, bit in flags.items()])
        return "\n".join(lines) + "\n"
