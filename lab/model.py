"""The lab's model: the kinds of board it emulates, its nodes and its shape, checked. Pure: no
Docker, no files. cluster.py runs a LabSpec, images.py builds each NodeKind's image,
inventory.py writes the lab out for Ansible."""
from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass

from .shell import LabError

DEFAULT_MIX = "pizero=2,pizero2=1"
DEFAULT_SUBNET = "172.28.10.0/24"
FIRST_HOST_OFFSET = 11  # .1 is the bridge; nodes start at .11 so they are easy to tell apart
MAX_NODES = 32


@dataclass(frozen=True)
class NodeKind:
    name: str
    debian_arch: str
    docker_platform: str
    qemu_cpu: str | None  # QEMU_CPU for qemu-user: the exact CPU of the board
    binfmt: str | None  # binfmt_misc handler the host needs to run this architecture
    board: str  # what the node stands for; becomes pico_board in the inventory


KINDS: dict[str, NodeKind] = {
    # Pi Zero / Zero W: ARM1176JZF-S (ARMv6). armel is Debian's ARMv6-safe port; qemu's arm1176
    # CPU makes any ARMv7-only instruction crash, as it would on the board.
    "pizero": NodeKind("pizero", "armel", "linux/arm/v6", "arm1176", "qemu-arm", "pizero"),
    # Pi Zero 2 W: Cortex-A53, 64-bit.
    "pizero2": NodeKind("pizero2", "arm64", "linux/arm64", "cortex-a53", "qemu-aarch64", "pizero2"),
    # The build machine's own architecture, for fast tests of things that emulation cannot run.
    "native": NodeKind("native", "amd64", "linux/amd64", None, None, "native"),
}


def get_kind(name: str) -> NodeKind:
    try:
        return KINDS[name]
    except KeyError:
        raise LabError(f"unknown node kind {name!r}: choose from {', '.join(KINDS)}") from None


@dataclass(frozen=True)
class Node:
    name: str  # inventory hostname and the node's hostname
    kind: NodeKind
    address: str
    ssh_port: int  # published on 127.0.0.1

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind.name, "address": self.address, "ssh_port": self.ssh_port}

    @classmethod
    def from_json(cls, data: dict) -> Node:
        return cls(data["name"], get_kind(data["kind"]), data["address"], int(data["ssh_port"]))


@dataclass(frozen=True)
class LabSpec:
    name: str
    subnet: str
    nodes: tuple[Node, ...]

    @property
    def network(self) -> str:
        return f"{self.name}-lab"

    def container(self, node: Node) -> str:
        return f"{self.name}-lab-{node.name}"

    def kinds(self) -> list[NodeKind]:
        """Each kind of node the lab has, once, by name."""
        return sorted({node.kind for node in self.nodes}, key=lambda kind: kind.name)

    def to_json(self) -> dict[str, object]:
        """What the lab's state file holds (kinds by name)."""
        return {"name": self.name, "subnet": self.subnet, "nodes": [node.to_json() for node in self.nodes]}

    @classmethod
    def from_json(cls, data: dict) -> LabSpec:
        return cls(data["name"], data["subnet"], tuple(Node.from_json(n) for n in data["nodes"]))

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:12]


def parse_mix(text: str) -> list[tuple[NodeKind, int]]:
    """'pizero=2,pizero2=1' -> [(pizero, 2), (pizero2, 1)], validated."""
    mix: list[tuple[NodeKind, int]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, count = part.partition("=")
        kind = get_kind(name.strip())
        if not sep or not count.strip().isdigit():
            raise LabError(f"bad node mix entry {part!r}: write KIND=COUNT, e.g. --mix {DEFAULT_MIX}")
        mix.append((kind, int(count)))
    total = sum(count for _, count in mix)
    if not 1 <= total <= MAX_NODES:
        raise LabError(f"node mix {text!r} asks for {total} nodes: a lab has 1 to {MAX_NODES}")
    return mix


def plan(name: str, mix_text: str, subnet_text: str, ssh_port_base: int) -> LabSpec:
    if not name.replace("-", "").isalnum() or not name[:1].isalpha():
        raise LabError(f"bad lab name {name!r}: use letters, digits and '-', starting with a letter")
    try:
        subnet = ipaddress.IPv4Network(subnet_text)
    except ValueError as exc:
        raise LabError(f"bad subnet {subnet_text!r} ({exc}): give an IPv4 network such as {DEFAULT_SUBNET}") from None
    mix = parse_mix(mix_text)
    hosts = list(subnet.hosts())
    total = sum(count for _, count in mix)
    if len(hosts) < FIRST_HOST_OFFSET - 1 + total:
        raise LabError(f"subnet {subnet} is too small for {total} nodes: use a /24 such as {DEFAULT_SUBNET}")
    if not 1024 <= ssh_port_base <= 65535 - total:
        raise LabError(f"bad SSH port base {ssh_port_base}: choose a number between 1024 and {65535 - total}")
    nodes, index = [], 0
    for kind, count in mix:
        for n in range(1, count + 1):
            index += 1
            nodes.append(Node(f"{kind.name}-{n}", kind, str(hosts[FIRST_HOST_OFFSET - 2 + index]), ssh_port_base + index))
    return LabSpec(name, str(subnet), tuple(nodes))
