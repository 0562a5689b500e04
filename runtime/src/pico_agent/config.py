"""Agent configuration: one TOML file, loaded into frozen dataclasses.

Every error names the file, the key and the value, so a typo never reaches a running agent.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("/etc/pico-agent/agent.toml")
# DNS labels: what a service or node name must look like to be resolvable.
NAME_RE = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")  # \Z: "$" would let "web\n" in


class ConfigError(ValueError):
    """A configuration file that the agent cannot run with."""


@dataclass(frozen=True)
class SerfConfig:
    rpc_address: str = "127.0.0.1:7373"
    # A JSON file with the key "rpc_auth" (the Serf agent reads the same file), or none.
    rpc_auth_file: Path | None = None
    # How often to compare every peer's catalog version with ours (anti-entropy).
    sync_interval: float = 30.0

    @property
    def rpc_host_port(self) -> tuple[str, int]:
        host, _, port = self.rpc_address.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class SupervisorConfig:
    docker_socket: Path = Path("/run/docker.sock")
    # Full reconcile period; container events and spec changes trigger one sooner.
    interval: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    # A container that stays up this long has its back-off reset.
    backoff_reset: float = 60.0
    stop_timeout: int = 10


@dataclass(frozen=True)
class FailoverConfig:
    # A takeover is given up once its slot is covered by someone else this long without a break
    # (hysteresis: a flapping node does not start and stop replicas in a storm) ...
    hold_down: float = 10.0
    # ... and after this long out of discovery.
    drain_time: float = 3.0


@dataclass(frozen=True)
class AgentConfig:
    node_name: str
    # HTTP API and DNS listen here only: loopback and the mesh address.
    bind_addresses: tuple[str, ...] = ("127.0.0.1",)
    # The address peers reach this node's instances at; the Serf member address by default.
    advertise_address: str | None = None
    http_port: int = 8500
    dns_port: int = 8600
    domain: str = "pico"
    dns_ttl: int = 0
    services_dir: Path = Path("/etc/pico-agent/services")
    state_dir: Path = Path("/var/lib/pico-agent")
    # Bearer token for state-changing API calls; generated (0600) on first start if missing.
    token_file: Path = Path("/var/lib/pico-agent/api-token")
    # The cluster-wide plan deploy.yml writes to every node, read for failover, and the id a plan
    # must carry to be taken (none: any cluster's).
    plan_file: Path = Path("/etc/pico-agent/plan.json")
    cluster_id: str | None = None
    log_level: str = "info"
    serf: SerfConfig = field(default_factory=SerfConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    failover: FailoverConfig = field(default_factory=FailoverConfig)


def _problem(path: Path, key: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"{path}: {key} = {value!r}: {why}")


def _take(table: dict[str, Any], path: Path, prefix: str, allowed: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"{path}: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(allowed))})")
    out = {}
    for key, value in table.items():
        expected = allowed[key]
        if isinstance(value, bool) and expected is not bool:
            raise _problem(path, prefix + key, value, "wrong type")
        if not isinstance(value, expected):
            raise _problem(path, prefix + key, value, f"must be {getattr(expected, '__name__', expected)}")
        out[key] = value
    return out


def _positive(path: Path, key: str, value: float) -> float:
    if not 0 < value < math.inf:  # TOML has nan and inf; both fail here
        raise _problem(path, key, value, "must be a finite number greater than 0")
    return float(value)


def _port(path: Path, key: str, value: int) -> int:
    if not 1 <= value <= 65535:
        raise _problem(path, key, value, "a port is 1-65535")
    return value


def _address(path: Path, key: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise _problem(path, key, value, "not an IP address") from None


def parse_config(data: dict[str, Any], path: Path) -> AgentConfig:
    number = (int, float)
    top = _take(data, path, "", {
        "node_name": str, "bind_addresses": list, "advertise_address": str, "http_port": int,
        "dns_port": int, "domain": str, "dns_ttl": int, "services_dir": str, "state_dir": str,
        "token_file": str, "plan_file": str, "cluster_id": str, "log_level": str, "serf": dict, "supervisor": dict, "failover": dict,
    })
    serf = _take(top.pop("serf", {}), path, "serf.", {"rpc_address": str, "rpc_auth_file": str, "sync_interval": number})
    fail = _take(top.pop("failover", {}), path, "failover.", {"hold_down": number, "drain_time": number})
    sup = _take(top.pop("supervisor", {}), path, "supervisor.", {
        "docker_socket": str, "interval": number, "backoff_initial": number, "backoff_max": number,
        "backoff_reset": number, "stop_timeout": int,
    })

    node_name = top.get("node_name", socket.gethostname().split(".")[0].lower())
    if not NAME_RE.match(node_name):
        raise _problem(path, "node_name", node_name, "use lower-case letters, digits and '-' (a DNS label)")
    binds = tuple(_address(path, "bind_addresses", str(a)) for a in top.get("bind_addresses", ["127.0.0.1"]))
    if not binds:
        raise _problem(path, "bind_addresses", [], "list at least one address (127.0.0.1 and the mesh address)")
    domain = top.get("domain", "pico").strip(".").lower()
    if not all(NAME_RE.match(label) for label in domain.split(".")):
        raise _problem(path, "domain", domain, "not a DNS domain")
    if top.get("log_level", "info") not in ("debug", "info", "warning", "error"):
        raise _problem(path, "log_level", top["log_level"], "one of debug, info, warning, error")
    rpc = serf.get("rpc_address", "127.0.0.1:7373")
    host, sep, port = rpc.rpartition(":")
    if not sep or not port.isdigit():
        raise _problem(path, "serf.rpc_address", rpc, "use host:port")
    _address(path, "serf.rpc_address", host.strip("[]"))
    _port(path, "serf.rpc_address", int(port))
    backoff_initial = _positive(path, "supervisor.backoff_initial", sup.get("backoff_initial", 1.0))
    backoff_max = _positive(path, "supervisor.backoff_max", sup.get("backoff_max", 60.0))
    if backoff_max < backoff_initial:
        raise _problem(path, "supervisor.backoff_max", backoff_max, "must be at least supervisor.backoff_initial")
    if not 0 <= top.get("dns_ttl", 0) <= 86400:
        raise _problem(path, "dns_ttl", top["dns_ttl"], "0-86400 seconds")
    advertise = top.get("advertise_address")
    return AgentConfig(
        node_name=node_name,
        bind_addresses=binds,
        advertise_address=_address(path, "advertise_address", advertise) if advertise else None,
        http_port=_port(path, "http_port", top.get("http_port", 8500)),
        dns_port=_port(path, "dns_port", top.get("dns_port", 8600)),
        domain=domain,
        dns_ttl=top.get("dns_ttl", 0),
        services_dir=Path(top.get("services_dir", "/etc/pico-agent/services")),
        state_dir=Path(top.get("state_dir", "/var/lib/pico-agent")),
        token_file=Path(top.get("token_file", "/var/lib/pico-agent/api-token")),
        plan_file=Path(top.get("plan_file", "/etc/pico-agent/plan.json")),
        cluster_id=top.get("cluster_id") or None,
        log_level=top.get("log_level", "info"),
        serf=SerfConfig(
            rpc_address=rpc,
            rpc_auth_file=Path(serf["rpc_auth_file"]) if "rpc_auth_file" in serf else None,
            sync_interval=_positive(path, "serf.sync_interval", serf.get("sync_interval", 30.0)),
        ),
        supervisor=SupervisorConfig(
            docker_socket=Path(sup.get("docker_socket", "/run/docker.sock")),
            interval=_positive(path, "supervisor.interval", sup.get("interval", 10.0)),
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            backoff_reset=_positive(path, "supervisor.backoff_reset", sup.get("backoff_reset", 60.0)),
            stop_timeout=int(_positive(path, "supervisor.stop_timeout", sup.get("stop_timeout", 10))),
        ),
        failover=FailoverConfig(
            hold_down=_positive(path, "failover.hold_down", fail.get("hold_down", 10.0)),
            drain_time=_positive(path, "failover.drain_time", fail.get("drain_time", 3.0)),
        ),
    )


def load_config(path: Path) -> AgentConfig:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (pass --config PATH)") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_config(data, path)
