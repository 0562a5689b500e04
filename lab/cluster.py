"""Bringing a lab of node containers up and down on a Docker network with a fixed subnet.

Nodes are systemd containers reached over SSH at their own address on the lab network, exactly
as Ansible reaches real Pis on a LAN. Each node's SSH port is also published on 127.0.0.1 for
people who want to `ssh -p` in by hand.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

from . import host_limits, images, workloads
from .model import LabSpec, Node
from .inventory import render_inventory
from .shell import LabError, require_tools, run

LABEL = "pico.lab"
DEFAULT_SSH_PORT_BASE = 2220
BOOT_TIMEOUT_S = 240

# systemd as PID 1 without --privileged (which fails on machines lacking CAP_SYS_RESOURCE).
NODE_RUN_FLAGS = [
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "-e", "container=docker", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--device", "/dev/net/tun",
    "--stop-signal", "SIGRTMIN+3",
]


def _json_or_none(text: str) -> dict | None:
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _services_text(health: dict | None) -> str:
    """'demo:healthy web-1:starting' from an agent's /v1/health; '-' where no agent answers."""
    if health is None:
        return "-"
    parts = []
    for instance in health.get("instances", []):
        name = instance["service"] if instance.get("replica", 0) == 0 else f"{instance['service']}-{instance['replica']}"
        parts.append(f"{name}:{instance.get('health', '?')}")
    return " ".join(parts) or "(none)"


def _plain(line: str) -> str:
    """A console line without its colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", line).strip()


def _console_tail(container: str, lines: int = 3) -> str:
    """The last lines systemd wrote to a node's console (the lab gives each node a terminal)."""
    out = subprocess.run(["docker", "logs", "--tail", "20", container], capture_output=True, text=True, check=False)
    text = [_plain(line) for line in (out.stdout + out.stderr).splitlines() if _plain(line)]
    return " | ".join(text[-lines:]) or "(empty)"


def _all_healthy(services: str) -> bool:
    return services != "-" and all(part.endswith(":healthy") for part in services.split() if part != "(none)")


class Lab:
    """One lab on this machine: its state lives under state_dir, its inventory at inventory_path."""

    def __init__(self, name: str, state_root: Path, inventory_path: Path) -> None:
        self.name = name
        self.state_dir = state_root / name
        self.inventory_path = inventory_path
        self.key = self.state_dir / "id_ed25519"
        # Serf's gossip key for the lab's agents: a secret, so a file the inventory looks up, 0600.
        self.gossip_key = self.state_dir / "gossip.key"
        self.known_hosts = self.state_dir / "known_hosts"
        self.state_file = self.state_dir / "lab.json"
        self.log_dir = state_root / "logs"

    # -- what is running ---------------------------------------------------------------------
    def lab_containers(self) -> dict[str, dict[str, str]]:
        """Containers of this lab by name, with their state and the spec fingerprint they carry."""
        out = run(["docker", "ps", "-a", "--filter", f"label={LABEL}={self.name}",
                   "--format", '{{json .}}'], what="listing lab containers").stdout
        found = {}
        for line in out.splitlines():
            info = json.loads(line)
            labels = dict(item.partition("=")[::2] for item in info.get("Labels", "").split(",") if item)
            found[info["Names"]] = {"state": info["State"], "spec": labels.get(f"{LABEL}.spec", ""),
                                    "owner": labels.get(f"{LABEL}.owner", "")}
        return found

    def load_spec(self) -> LabSpec | None:
        if not self.state_file.exists():
            return None
        try:
            data = json.loads(self.state_file.read_text())
            return LabSpec.from_json(data)
        except (ValueError, KeyError, TypeError, LabError) as exc:
            raise LabError(f"lab state {self.state_file} is unreadable ({exc}): run `python3 -m lab down --name {self.name}`") from None

    # -- up ----------------------------------------------------------------------------------
    def up(self, spec: LabSpec) -> str:
        require_tools("docker", "ssh", "ssh-keygen")
        existing = self.lab_containers()
        if existing:
            owners = {c["owner"] for c in existing.values()} - {str(self.state_dir.resolve())}
            if owners:
                # Its nodes trust another checkout's SSH key: this one could not log in.
                raise LabError(f"lab {self.name!r} was started from another checkout ({', '.join(sorted(owners))}): "
                               f"run `make lab-down` to remove it, or give this one another --name and --subnet")
            if all(c["spec"] == spec.fingerprint() for c in existing.values()) and len(existing) == len(spec.nodes):
                return self._resume(spec, existing)
            raise LabError(
                f"lab {self.name!r} is already running with a different shape ({len(existing)} containers): "
                f"run `make lab-down` first, or give this one another --name and --subnet")
        kinds = spec.kinds()
        for kind in kinds:
            images.check_binfmt(kind)
            images.check_native_runtime(kind)
        self._remove(spec.network, [])  # a network this lab left behind (dockerd killed mid-way)
        self._check_subnet_free(spec)
        self._check_ports_free(spec)
        images.ensure_images(kinds, self.log_dir)
        workloads.ensure_workloads(kinds)
        self._make_key()
        self._make_host_room(len(spec.nodes))
        try:
            run(["docker", "network", "create", "--subnet", spec.subnet, "--label", f"{LABEL}={self.name}", spec.network],
                what=f"creating docker network {spec.network}")
            for node in spec.nodes:
                self._start_node(spec, node)
            self._wait_ready(spec, list(spec.nodes))
        except (LabError, KeyboardInterrupt):
            self._remove(spec.network)
            raise
        self.state_file.write_text(json.dumps(spec.to_json(), indent=2) + "\n")
        self._write_inventory(spec)
        return f"lab {self.name!r} is up: {len(spec.nodes)} nodes, inventory {self.inventory_path}"

    def _resume(self, spec: LabSpec, existing: dict[str, dict[str, str]]) -> str:
        """The same lab is there: start the nodes that stopped (dockerd restarted, host rebooted)."""
        stopped = [node for node in spec.nodes if existing[spec.container(node)]["state"] != "running"]
        if stopped:
            self._make_host_room(len(stopped))
            run(["docker", "start", *(spec.container(node) for node in stopped)], what="restarting stopped lab nodes")
        self._wait_ready(spec, stopped)
        self._write_inventory(spec)
        if stopped:
            return f"lab {self.name!r} was there with this shape; restarted {len(stopped)} stopped nodes"
        return f"lab {self.name!r} is already up with this shape; nothing to do"

    def _check_subnet_free(self, spec: LabSpec) -> None:
        wanted = ipaddress.IPv4Network(spec.subnet)
        names = run(["docker", "network", "ls", "--format", "{{.Name}}"], what="listing docker networks").stdout.split()
        if names:
            inspected = json.loads(run(["docker", "network", "inspect", *names], what="inspecting docker networks").stdout)
            for net in inspected:
                for cfg in (net.get("IPAM") or {}).get("Config") or []:
                    subnet = cfg.get("Subnet", "")
                    if ":" not in subnet and subnet and ipaddress.IPv4Network(subnet, strict=False).overlaps(wanted):
                        raise LabError(f"subnet {spec.subnet} overlaps docker network {net['Name']!r} ({subnet}): "
                                       f"pass another --subnet, or remove that network")
        routes = json.loads(run(["ip", "-j", "-4", "route", "show"], what="reading host routes").stdout or "[]")
        for route in routes:
            dst = route.get("dst", "default")
            if dst != "default" and ipaddress.IPv4Network(dst, strict=False).overlaps(wanted):
                raise LabError(f"subnet {spec.subnet} overlaps host route {dst} on {route.get('dev', '?')}: pass another --subnet")

    @staticmethod
    def _check_ports_free(spec: LabSpec) -> None:
        for node in spec.nodes:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", node.ssh_port))
                except OSError:
                    raise LabError(f"port 127.0.0.1:{node.ssh_port} (SSH of {node.name}) is in use: "
                                   f"pass another --ssh-port-base") from None

    def _make_key(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.known_hosts.unlink(missing_ok=True)  # new containers have new host keys
        if not self.key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"pico-lab-{self.name}", "-f", str(self.key)],
                what="generating the lab SSH key")

    @staticmethod
    def _make_host_room(nodes: int) -> None:
        raised = host_limits.make_room_for_nodes(nodes)
        if raised:
            print(f"lab: {raised}", flush=True)

    def _start_node(self, spec: LabSpec, node: Node) -> None:
        kind = node.kind
        env = ["-e", f"QEMU_CPU={kind.qemu_cpu}"] if kind.qemu_cpu else []
        run(["docker", "run", "-d", "--name", spec.container(node), "--hostname", node.name,
             "--network", spec.network, "--ip", node.address, "-p", f"127.0.0.1:{node.ssh_port}:22",
             "--label", f"{LABEL}={self.name}", "--label", f"{LABEL}.node={node.name}",
             "--label", f"{LABEL}.spec={spec.fingerprint()}", "--label", f"{LABEL}.owner={self.state_dir.resolve()}",
             *NODE_RUN_FLAGS, *env,
             # A terminal for systemd's console: a node that dies at boot says why in `docker logs`.
             "--tty",
             "-v", f"{self.key.resolve()}.pub:/root/.ssh/authorized_keys:ro",
             images.image_ref(kind)], what=f"starting node {node.name}")

    def _wait_ready(self, spec: LabSpec, nodes: list[Node]) -> None:
        """Nodes are ready when systemd finished booting and Ansible's SSH login works. A node
        that stops meanwhile is reported at once, with the end of its console."""
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        waiting = list(nodes)
        while waiting:
            self._check_running(spec, waiting)
            node = waiting[0]
            state = subprocess.run(["docker", "exec", spec.container(node), "systemctl", "is-system-running"],
                                   capture_output=True, text=True, check=False).stdout.strip()
            if state in ("running", "degraded") and self._ssh_ok(node):
                waiting.pop(0)
                continue
            if time.monotonic() > deadline:
                raise LabError(f"node {node.name} did not boot with SSH within {BOOT_TIMEOUT_S} s (systemd: "
                               f"{state or 'no answer'}); its console: {_console_tail(spec.container(node))}")
            time.sleep(1)

    @staticmethod
    def _check_running(spec: LabSpec, nodes: list[Node]) -> None:
        containers = [spec.container(node) for node in nodes]
        found = subprocess.run(["docker", "inspect", "--format", "{{.Name}} {{.State.Status}} {{.State.ExitCode}}",
                                *containers], capture_output=True, text=True, check=False).stdout.split("\n")
        for line in found:
            name, _, state = line.strip().lstrip("/").partition(" ")
            status, _, code = state.partition(" ")
            if status in ("exited", "dead"):
                node = next(n for n in nodes if spec.container(n) == name)
                raise LabError(f"node {node.name} stopped while booting (exit {code}); its console: "
                               f"{_console_tail(name)}")

    def _ssh_ok(self, node: Node) -> bool:
        return subprocess.run(["ssh", *self.ssh_options(), f"root@{node.address}", "true"],
                              capture_output=True, check=False, timeout=60).returncode == 0

    def ssh_common_args(self) -> list[str]:
        # Host keys are made at each node's first boot, so they are learned on first contact.
        return ["-o", f"UserKnownHostsFile={self.known_hosts.resolve()}", "-o", "StrictHostKeyChecking=accept-new"]

    def ssh_options(self) -> list[str]:
        return ["-i", str(self.key.resolve()), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", *self.ssh_common_args()]

    def _make_gossip_key(self) -> None:
        if not self.gossip_key.exists():
            fd = os.open(self.gossip_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")

    def _write_inventory(self, spec: LabSpec) -> None:
        self._make_gossip_key()
        demo = workloads.ensure_workloads(spec.kinds())
        self.inventory_path.parent.mkdir(parents=True, exist_ok=True)
        self.inventory_path.write_text(render_inventory(spec, str(self.key.resolve()), self.ssh_common_args(), demo,
                                                        gossip_key_path=str(self.gossip_key.resolve())))

    # -- status and down ----------------------------------------------------------------------
    def status(self) -> list[dict[str, str]]:
        """One row per node: what it is, where, and the services its agent runs (once provisioned)."""
        spec = self.load_spec()
        containers = self.lab_containers()
        if spec is None:
            return [{"node": name, "state": c["state"], "note": "not in lab state"} for name, c in containers.items()]
        rows, mesh = [], {}
        for node in spec.nodes:
            container = spec.container(node)
            state = containers.get(container, {}).get("state", "missing")
            machine, health, members = ("", None, None) if state != "running" else self._look_at(container)
            mesh.update(members or {})
            rows.append({"node": node.name, "kind": node.kind.name, "machine": machine, "address": node.address,
                         "mesh": "", "ssh": f"127.0.0.1:{node.ssh_port}", "state": state,
                         "services": _services_text(health)})
        for row in rows:
            row["mesh"] = mesh.get(row["node"], "")
        return rows

    @staticmethod
    def _look_at(container: str) -> tuple[str, dict | None, dict[str, str] | None]:
        """The node's CPU, its agent's health report and the members' mesh addresses, in one exec."""
        script = ("uname -m; echo '#'; curl -sf --max-time 5 http://127.0.0.1:8500/v1/health; echo '#'; "
                  "curl -sf --max-time 5 http://127.0.0.1:8500/v1/members")
        out = subprocess.run(["docker", "exec", container, "sh", "-c", script], capture_output=True,
                             text=True, check=False).stdout
        machine, health, members = (out.split("#\n") + ["", "", ""])[:3]
        return machine.strip(), _json_or_none(health), {
            m["name"]: m["address"] for m in (_json_or_none(members) or {}).get("members", [])}

    def wait_for_services(self, timeout_s: float) -> list[dict[str, str]]:
        """Rows as status() gives them, once every node's agent reports all its services healthy."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.status()
            if not rows:
                raise LabError(f"no lab named {self.name!r} is running: start one with `make lab`")
            if all(_all_healthy(r.get("services", "-")) for r in rows):
                return rows
            if time.monotonic() > deadline:
                waiting = ", ".join(f"{r['node']} ({r.get('services') or 'no agent'})" for r in rows)
                raise LabError(f"services not healthy after {timeout_s:.0f} s: {waiting}; look at "
                               f"`docker exec {self.name}-lab-NODE journalctl -u pico-agent`")
            time.sleep(2)

    def down(self) -> str:
        spec = self.load_spec()
        containers = self.lab_containers()
        self._remove(spec.network if spec else f"{self.name}-lab", list(containers))
        for path in (self.state_file, self.known_hosts, self.inventory_path):
            path.unlink(missing_ok=True)
        return f"lab {self.name!r} is down ({len(containers)} containers removed)"

    def _remove(self, network: str, containers: list[str] | None = None) -> None:
        if containers is None:
            containers = list(self.lab_containers())
        if containers:
            subprocess.run(["docker", "rm", "-f", *containers], capture_output=True, check=False)
        owner = subprocess.run(["docker", "network", "inspect", "-f", f'{{{{index .Labels "{LABEL}"}}}}', network],
                               capture_output=True, text=True, check=False).stdout.strip()
        if owner == self.name:  # never remove a network this lab did not create
            subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
