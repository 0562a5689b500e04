"""Agent configuration: one TOML file, loaded into frozen dataclasses.

Every error names the file, the key and the value, so a typo never reaches a running agent.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What a service or node name must look like (a DNS label) and where the node keeps its service
# files and plan: the contract's one copy, shared with the collection.
from ._service_spec import NAME_RE, PLAN_FILE, SERVICES_DIR

DEFAULT_CONFIG_PATH = Path("/etc/pico-agent/agent.toml")


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
        host, _sep, port = self.rpc_address.rpartition(":")
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
    # A slot of a failed node that its taker does not serve this long is taken by the next
    # candidate as well (failover.py): longer than a takeover takes to start and pass its check.
    escalate_after: float = 20.0


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
    services_dir: Path = Path(SERVICES_DIR)
    state_dir: Path = Path("/var/lib/pico-agent")
    # Bearer token for state-changing API calls; generated (0600) on first start if missing.
    token_file: Path = Path("/var/lib/pico-agent/api-token")
    # The cluster-wide plan deploy.yml writes to every node, read for failover, and the id a plan
    # must carry to be taken (none: any cluster's).
    plan_file: Path = Path(PLAN_FILE)
    cluster_id: str | None = None
    # The board's model (pico_board: pizero, pizero2, ...) and the power role's record on it: the
    # power estimate in /metrics (none for a board the model does not cover).
    board: str = ""
    power_record_file: Path = Path("/etc/ansible/facts.d/pico_power.fact")
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
        "token_file": str, "plan_file": str, "cluster_id": str, "board": str, "power_record_file": str,
        "log_level": str, "serf": dict, "supervisor": dict, "failover": dict,
    })
    serf = _take(top.pop("serf", {}), path, "serf.", {"rpc_address": str, "rpc_auth_file": str, "sync_interval": number})
    fail = _take(top.pop("failover", {}), path, "failover.",
                 {"hold_down": number, "drain_time": number, "escalate_after": number})
    sup = _take(top.pop("supervisor", {}), path, "supervisor.", {
        "docker_socket": str, "interval": number, "backoff_initial": number, "backoff_max": number,
        "backoff_reset": number, "stop_timeout": int,
    })

    # Defaults live in the dataclasses above, once: only what the file gives is checked and passed.
    node_name = top.get("node_name", socket.gethostname().split(".")[0].lower())
    if not NAME_RE.match(node_name):
        raise _problem(path, "node_name", node_name, "use lower-case letters, digits and '-' (a DNS label)")
    given: dict[str, Any] = {}
    if "bind_addresses" in top:
        given["bind_addresses"] = tuple(_address(path, "bind_addresses", str(a)) for a in top["bind_addresses"])
        if not given["bind_addresses"]:
            raise _problem(path, "bind_addresses", [], "list at least one address (127.0.0.1 and the mesh address)")
    if "domain" in top:
        given["domain"] = top["domain"].strip(".").lower()
        if not all(NAME_RE.match(label) for label in given["domain"].split(".")):
            raise _problem(path, "domain", given["domain"], "not a DNS domain")
    if "log_level" in top:
        if top["log_level"] not in ("debug", "info", "warning", "error"):
            raise _problem(path, "log_level", top["log_level"], "one of debug, info, warning, error")
        given["log_level"] = top["log_level"]
    if "dns_ttl" in top:
        if not 0 <= top["dns_ttl"] <= 86400:
            raise _problem(path, "dns_ttl", top["dns_ttl"], "0-86400 seconds")
        given["dns_ttl"] = top["dns_ttl"]
    if "advertise_address" in top:
        given["advertise_address"] = _address(path, "advertise_address", top["advertise_address"])
    given.update({key: _port(path, key, top[key]) for key in ("http_port", "dns_port") if key in top})
    given.update({key: Path(top[key]) for key in ("services_dir", "state_dir", "token_file", "plan_file",
                                                  "power_record_file") if key in top})
    if "board" in top:
        given["board"] = top["board"]
    if top.get("cluster_id"):
        given["cluster_id"] = top["cluster_id"]

    serf_given: dict[str, Any] = {}
    if "rpc_address" in serf:
        host, sep, port = serf["rpc_address"].rpartition(":")
        if not sep or not port.isdigit():
            raise _problem(path, "serf.rpc_address", serf["rpc_address"], "use host:port")
        _address(path, "serf.rpc_address", host.strip("[]"))
        _port(path, "serf.rpc_address", int(port))
        serf_given["rpc_address"] = serf["rpc_address"]
    if "rpc_auth_file" in serf:
        serf_given["rpc_auth_file"] = Path(serf["rpc_auth_file"])
    if "sync_interval" in serf:
        serf_given["sync_interval"] = _positive(path, "serf.sync_interval", serf["sync_interval"])

    sup_given: dict[str, Any] = {key: _positive(path, f"supervisor.{key}", value)
                                 for key, value in sup.items() if key != "docker_socket"}
    if "stop_timeout" in sup_given:
        sup_given["stop_timeout"] = int(sup_given["stop_timeout"])
    if "docker_socket" in sup:
        sup_given["docker_socket"] = Path(sup["docker_socket"])
    supervisor = SupervisorConfig(**sup_given)
    if supervisor.backoff_max < supervisor.backoff_initial:
        raise _problem(path, "supervisor.backoff_max", supervisor.backoff_max, "must be at least supervisor.backoff_initial")

    return AgentConfig(
        node_name=node_name,
        serf=SerfConfig(**serf_given),
        supervisor=supervisor,
        failover=FailoverConfig(**{key: _positive(path, f"failover.{key}", value) for key, value in fail.items()}),
        **given,
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
