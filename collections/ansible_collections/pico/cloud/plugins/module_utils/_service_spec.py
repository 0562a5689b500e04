# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""The service file: what an agent runs for one service on its node, the one copy of its rules,
and where the node keeps it. The agent reads every file with parse_spec
(runtime/src/pico_agent/_service_spec.py is a link to this file, and the agent bundle carries
it); the planner (module_utils/_placement.py)
checks every declaration with the same function, so a service an agent would refuse is refused
by the controller, with the agent's own message, before a rollout drains anything.

Standard library only, and Python 3.8 or later: it runs on the controller and on the nodes.
Messages never quote a value that could be a secret (env values, command lines).
"""

from __future__ import absolute_import, division, print_function
from __future__ import annotations

__metaclass__ = type

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

# Where a node keeps what the controller gives it: one service file per service it runs, and the
# plan (module_utils/_plan_document.py). The roles' vars name the same paths (a test holds them).
SERVICES_DIR = "/etc/pico-agent/services"
PLAN_FILE = "/etc/pico-agent/plan.json"
# Tags the planner and the agents put on a service in discovery: the spec's digest, and an
# agent's takeover of a failed node's slot (pico.failover:<owner>:<slot>).
SPEC_TAG = "pico.spec:"
FAILOVER_TAG = "pico.failover:"
# DNS labels: what a service or node name must look like to be resolvable.
NAME_RE = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")  # \Z: "$" would let "web\n" in
MAX_REPLICAS = 16
# More files than this in a node's services directory are reported, not read.
MAX_SERVICE_FILES = 256
# What one node may publish in discovery, and what its peers take from it: one set of limits,
# so a node never publishes what its peers refuse (a refused catalog freezes on every peer).
# A tag fits a takeover's own, pico.failover:<owner>:<slot>, for a 63-character owner; an id is
# <node>/<service>-<replica>; a node runs at most MAX_SERVICE_FILES x MAX_REPLICAS replicas of
# its own and MAX_TAKEOVERS for failed peers.
MAX_TAGS = 16
MAX_TAG_CHARS = 96
MAX_INSTANCE_ID_CHARS = 2 * 63 + 8
# Slots of failed peers one node takes at most, whatever the plan's requests leave room for: a
# plan of 400 slots without requests once had the survivors start 194 and 208 containers.
MAX_TAKEOVERS = 32
MAX_INSTANCES = MAX_SERVICE_FILES * MAX_REPLICAS + MAX_TAKEOVERS
# A declaration leaves room for the two tags added on its way: the planner's spec tag, and an
# agent's takeover tag.
MAX_DECLARED_TAGS = MAX_TAGS - 2
_MEMORY_RE = re.compile(r"\A([0-9]+)([kmg]?)b?\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_ENV_NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,127}\Z")


class SpecError(ValueError):
    """A service file that cannot be applied."""


@dataclass(frozen=True)
class HealthSpec:
    type: str = "none"  # http, tcp, command or none
    path: str = "/"
    command: tuple[str, ...] = ()
    interval: float = 10.0
    timeout: float = 2.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str | None = None
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    port: int | None = None
    network: str = "host"
    container_port: int | None = None
    memory: int | None = None
    cpus: float | None = None
    replicas: int = 1
    tags: tuple[str, ...] = ()
    health: HealthSpec = field(default_factory=HealthSpec)

    @property
    def external(self) -> bool:
        return self.image is None

    def replica_port(self, index: int) -> int | None:
        # Replicas on one node cannot share a host port: replica i listens on port + i.
        return None if self.port is None else self.port + index

    @property
    def digest(self) -> str:
        """Changes whenever a field that shapes a container changes. The replica count does not:
        scaling from 1 to 2 starts replica 1 and leaves replica 0 running."""
        shaped = asdict(self)
        del shaped["replicas"]
        blob = json.dumps(shaped, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _shown(value: Any) -> str:
    """A value for an error message: scalars cut short, lists and objects by size only. Error
    messages reach the log and the unauthenticated /v1/health, and a service file may hold secrets."""
    if isinstance(value, dict):
        return f"(an object of {len(value)} keys)"
    if isinstance(value, (list, tuple)):
        return f"(a list of {len(value)})"
    text = repr(value)
    return text if len(text) <= 48 else text[:45] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)} with {', '.join(sorted({type(item).__name__ for item in value}))}"
    return f"a {type(value).__name__}"


def _key(name: str) -> str:
    return name if len(name) <= 40 else name[:37] + "..."


def parse_memory(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _MEMORY_RE.match(str(value).strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise SpecError(f"memory = {_shown(value)}: use bytes or a size such as 64m")
    size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if size < 6 * 1024**2:
        raise SpecError(f"memory = {_shown(value)}: container runtimes refuse limits under 6 MiB")
    return size


def _port(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise SpecError(f"{key} = {_shown(value)}: a port is 1-65535")
    return value


def _seconds(key: str, value: Any, minimum: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not minimum <= value <= 3600:
        raise SpecError(f"health.{key} = {_shown(value)}: seconds, {minimum}-3600")
    return float(value)


def _strings(key: str, value: Any, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value) or len(value) > limit:
        # Never the value: command lines carry passwords as often as env does.
        raise SpecError(f"{key}: a list of at most {limit} strings, not {_kind(value)}")
    return tuple(value)


def _health(data: Any) -> HealthSpec:
    if not isinstance(data, dict):
        raise SpecError(f"health = {_shown(data)}: an object with type http, tcp, command or none")
    known = {"type", "path", "command", "interval", "timeout", "retries", "start_period"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"unknown key health.{_key(unknown[0])} (known: {', '.join(sorted(known))})")
    kind = data.get("type", "none")
    if kind not in ("http", "tcp", "command", "none"):
        raise SpecError(f"health.type = {_shown(kind)}: one of http, tcp, command, none")
    path = data.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/") or len(path) > 1024 or any(c in path for c in " \r\n"):
        # Not the value: a path may carry a token (/healthz?key=...).
        raise SpecError(f"health.path is {_kind(path)} of {len(path) if isinstance(path, str) else 0} characters: "
                        "an absolute URL path without spaces, at most 1024")
    command = _strings("health.command", data.get("command", []), 64)
    if kind == "command" and not command:
        raise SpecError("health.type = 'command' needs health.command, for example [\"pg_isready\"]")
    retries = data.get("retries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 1 <= retries <= 100:
        raise SpecError(f"health.retries = {_shown(retries)}: 1-100")
    interval = _seconds("interval", data.get("interval", 10), 0.5)
    timeout = _seconds("timeout", data.get("timeout", 2), 0.1)
    if timeout > interval:
        raise SpecError(f"health.timeout = {timeout}: must not exceed health.interval ({interval})")
    return HealthSpec(kind, path, command, interval, timeout, retries,
                      _seconds("start_period", data.get("start_period", 0), 0))


def _tags(value: Any) -> tuple[str, ...]:
    tags = _strings("tags", value, MAX_TAGS)
    if any(len(tag) > MAX_TAG_CHARS for tag in tags):
        raise SpecError(f"tags: each at most {MAX_TAG_CHARS} characters (peers refuse longer ones in discovery)")
    return tags


_KNOWN = {"name", "image", "command", "env", "port", "network", "container_port", "memory", "cpus",
          "replicas", "tags", "health"}


def parse_spec(data: Any, expected_name: str | None = None) -> ServiceSpec:
    if not isinstance(data, dict):
        raise SpecError("a service file holds one JSON object")
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise SpecError(f"unknown key {_key(unknown[0])} (known: {', '.join(sorted(_KNOWN))})")
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(f"name = {_shown(name)}: lower-case letters, digits and '-', at most 63 (a DNS label)")
    if expected_name is not None and name != expected_name:
        raise SpecError(f"name = {_shown(name)} but the file is named {expected_name}.json: they must match")
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not image or len(image) > 255 or " " in image):
        raise SpecError(f"image = {_shown(image)}: an image reference such as pico/demo:1.0.0")
    env = data.get("env", {})
    if not isinstance(env, dict) or len(env) > 128:
        # Never the value: "POSTGRES_PASSWORD=..." given as a string is a secret.
        raise SpecError(f"env is {_kind(env)}: an object of at most 128 NAME: value pairs")
    for key, value in env.items():
        if not _ENV_NAME_RE.match(key):
            # A name written NAME=value carries the value: only what is before the = is shown.
            name, equals, dummy = key.partition("=")
            raise SpecError(f"env.{_key(name)}{'=...' if equals else ''}: names are letters, digits and _ "
                            "(write NAME: value, not NAME=value)")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise SpecError(f"env.{_key(key)} is {_kind(value)}: values are strings or numbers")
    if "PORT" in env and data.get("port") is not None:
        raise SpecError("env.PORT is set by the agent from port (replica i gets port + i): remove it from env")
    network = data.get("network", "host")
    if network not in ("host", "bridge"):
        raise SpecError(f"network = {_shown(network)}: host or bridge")
    port = _port("port", data["port"]) if data.get("port") is not None else None
    container_port = _port("container_port", data["container_port"]) if data.get("container_port") is not None else None
    if container_port is not None and network == "host":
        raise SpecError("container_port applies to network bridge only; with network host the service listens on port")
    replicas = data.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= MAX_REPLICAS:
        raise SpecError(f"replicas = {_shown(replicas)}: 0-{MAX_REPLICAS} on one node")
    if port is not None and port + max(replicas - 1, 0) > 65535:
        raise SpecError(f"port = {port} with {replicas} replicas runs past 65535 (replica i listens on port + i)")
    cpus = data.get("cpus")
    if cpus is not None and (not isinstance(cpus, (int, float)) or isinstance(cpus, bool) or not 0 < cpus <= 64):  # NaN fails too
        raise SpecError(f"cpus = {_shown(cpus)}: a number of cores such as 0.5")
    health = _health(data.get("health", {}))
    if image is None:
        if data.get("command") or env or data.get("memory") or cpus or container_port:
            raise SpecError("a service without image is run by the node itself: command, env, memory, cpus "
                            "and container_port apply to containers only")
        if replicas > 1:
            raise SpecError("a service without image has one instance per node (replicas 0 or 1)")
        if health.type == "command":
            raise SpecError("health.type command runs inside the container: use http or tcp for a service without image")
    if health.type in ("http", "tcp") and port is None:
        raise SpecError(f"health.type = {_shown(health.type)} needs port")
    return ServiceSpec(
        name=name,
        image=image,
        command=_strings("command", data.get("command", []), 256),
        env=tuple(sorted((k, str(v)) for k, v in env.items())),
        port=port,
        network=network,
        container_port=container_port,
        memory=parse_memory(data["memory"]) if data.get("memory") is not None else None,
        cpus=float(cpus) if cpus is not None else None,
        replicas=replicas,
        tags=_tags(data.get("tags", [])),
        health=health,
    )
