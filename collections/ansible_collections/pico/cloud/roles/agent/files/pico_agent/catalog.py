"""The service catalog: this node's healthy instances plus every alive peer's, learned over Serf.

Peers announce a catalog version in their Serf tags (tags are capped at 512 bytes, so the list
itself is fetched from the peer's HTTP API when the version changes).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from ._service_spec import MAX_INSTANCE_ID_CHARS, MAX_INSTANCES, MAX_TAG_CHARS, MAX_TAGS
from .config import NAME_RE
from .files import loads_json
from .serf import Member


@dataclass(frozen=True, order=True)
class Instance:
    service: str
    node: str
    address: str
    port: int | None
    id: str
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        return data


def catalog_version(instances: list[Instance]) -> str:
    blob = json.dumps([i.to_json() for i in sorted(instances)], separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


# A peer's /v1/catalog/local answer is read up to this size, and its structure counted, before it
# is parsed: a real catalog of 1,024 instances is about 200 KB, while 8 MiB of `{},` parsed whole
# took a fetching agent to 241 MB.
MAX_CATALOG_BYTES = 1024 * 1024


def parse_remote_body(body: bytes, node: str, address: str) -> tuple[str, list[Instance]]:
    """A peer's answer as it came: its size and its count of objects and lists are checked before
    the JSON is parsed (each instance is one object with one list), then parse_remote."""
    if len(body) > MAX_CATALOG_BYTES:
        raise ValueError(f"{len(body)} bytes, more than {MAX_CATALOG_BYTES}")
    if body.count(b"{") > MAX_INSTANCES + 1 or body.count(b"[") > MAX_INSTANCES + 1:
        raise ValueError(f"more objects than {MAX_INSTANCES} instances need")
    return parse_remote(loads_json(body), node, address)


def served_version(raw_instances: list[dict[str, Any]]) -> str:
    """The catalog version of instances as a node serves them (its own node name and address), or
    "" for instances no agent serves (fields that do not sort: no version matches)."""
    try:
        return catalog_version([Instance(r.get("service"), r.get("node"), r.get("address"), r.get("port"), r.get("id"),
                                         tuple(r.get("tags") or ())) for r in raw_instances])
    except TypeError:
        return ""


def parse_remote(data: Any, node: str, address: str) -> tuple[str, list[Instance]]:
    """Validate a peer's /v1/catalog/local answer; its address is the one Serf knows, not its claim."""
    if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
        raise ValueError("expected {version, instances: [...]}")
    if len(data["instances"]) > MAX_INSTANCES:
        raise ValueError(f"more than {MAX_INSTANCES} instances")
    instances = []
    for raw in data["instances"]:
        if not isinstance(raw, dict):
            raise ValueError("instance is not an object")
        service, port, ident = raw.get("service"), raw.get("port"), raw.get("id")
        if not isinstance(service, str) or not NAME_RE.match(service):
            raise ValueError(f"bad service name {service!r}")
        if port is not None and (not isinstance(port, int) or not 1 <= port <= 65535):
            raise ValueError(f"bad port {port!r}")
        if not isinstance(ident, str) or len(ident) > MAX_INSTANCE_ID_CHARS:
            raise ValueError(f"bad instance id {ident!r}")
        tags = raw.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= MAX_TAG_CHARS for t in tags[:MAX_TAGS]):
            raise ValueError("bad tags")
        instances.append(Instance(service, node, address, port, ident, tuple(tags[:MAX_TAGS])))
    version = data.get("version")
    if not isinstance(version, str) or not version or len(version) > 64:
        raise ValueError("bad version")
    # The version is the hash of the instances: whatever answers on a member's port (another
    # process that took it while the agent restarted) cannot make up instances under a version
    # the member announced.
    if version != served_version(data["instances"]):
        raise ValueError("the version is not that of the instances served")
    return version, instances


class Catalog:
    def __init__(self, node: str):
        self.node = node
        self.local: list[Instance] = []
        self.local_version = catalog_version([])
        self.remote: dict[str, tuple[str, list[Instance]]] = {}
        self.members: dict[str, Member] = {}
        # When this agent saw each member take its current status (Unix time), where it saw it
        # happen: a member already failed or left when the agent started has none.
        self.member_since: dict[str, float] = {}
        # Bumped by every change a DNS answer could show: the resolver caches answers until then.
        self.generation = 0

    def set_local(self, instances: list[Instance]) -> bool:
        version = catalog_version(instances)
        if version == self.local_version:
            return False
        self.local, self.local_version = sorted(instances), version
        self.generation += 1
        return True

    def local_document(self) -> dict[str, Any]:
        """What peers fetch (/v1/catalog/local)."""
        return {"node": self.node, "version": self.local_version, "instances": [i.to_json() for i in self.local]}

    def set_remote(self, node: str, version: str, instances: list[Instance]) -> None:
        self.remote[node] = (version, instances)
        self.generation += 1

    def remote_version(self, node: str) -> str | None:
        entry = self.remote.get(node)
        return entry[0] if entry else None

    def update_member(self, member: Member, *, observed: bool = True) -> None:
        """observed: the status is news (an event, a later sync), not what the agent found at its start."""
        before = self.members.get(member.name)
        if before != member:
            self.generation += 1
        if before is None or before.status != member.status:
            if observed:
                self.member_since[member.name] = time.time()
            else:
                self.member_since.pop(member.name, None)
        self.members[member.name] = member
        if member.status != "alive":
            # A failed or departed node's instances leave discovery at once.
            if self.remote.pop(member.name, None) is not None:
                self.generation += 1

    def forget_member(self, name: str) -> None:
        self.members.pop(name, None)
        self.member_since.pop(name, None)
        self.remote.pop(name, None)
        self.generation += 1

    def instances(self, service: str | None = None) -> list[Instance]:
        """Every healthy instance in the cluster this node knows of."""
        found = list(self.local)
        for node, (_version, instances) in self.remote.items():
            member = self.members.get(node)
            if member is not None and member.status == "alive":
                found.extend(instances)
        if service is not None:
            found = [i for i in found if i.service == service]
        return sorted(found)

    def services(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for instance in self.instances():
            counts[instance.service] = counts.get(instance.service, 0) + 1
        return dict(sorted(counts.items()))

    def node_address(self, node: str) -> str | None:
        member = self.members.get(node)
        return member.address if member and member.status == "alive" else None
