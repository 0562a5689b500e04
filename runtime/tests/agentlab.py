"""Start real `serf agent` and `pico-agent` processes on loopback, each node on its own ports.

Shared by the integration tests and bench/agent.py.
"""

from __future__ import annotations

import base64
import json
import os
import random
import resource
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from dnslib import QTYPE, DNSRecord

SRC = Path(__file__).resolve().parents[1] / "src"
# The demo service's native image, built by `make images`, and this machine's dockerd.
DEMO_ARCHIVE = Path("/var/cache/pico-lab/workloads/pico-demo_1.0.0_amd64.tar")
DEMO_IMAGE = "pico/demo:1.0.0"
DOCKER_SOCKET = "/var/run/docker.sock"


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check).stdout.strip()


def load_demo_image() -> str:
    """The demo image in this machine's dockerd; an AssertionError names the missing set-up step."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise AssertionError("dockerd is not running: run scripts/bootstrap.sh (make bootstrap)")
    if not DEMO_ARCHIVE.exists():
        raise AssertionError(f"{DEMO_ARCHIVE} missing: build it with `make images`")
    docker("load", "-q", "-i", str(DEMO_ARCHIVE))
    return DEMO_IMAGE


def free_ports(count: int) -> list[int]:
    """Ports free for both TCP and UDP right now (DNS uses UDP on the HTTP API's neighbour).

    Drawn below the kernel's ephemeral range: a port from bind(0) could be taken by a Serf
    agent's outgoing connection before the node meant to listen on it starts."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    found: list[int] = []
    while len(found) < count:
        port = random.randrange(20000, low)
        if port in found:
            continue
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
    return found


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """{family: {'{labels}': value}} from Prometheus text; a family without samples maps to {}."""
    families: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.setdefault(line.split()[2], {})
        elif line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            name, _, labels = name_labels.partition("{")
            family = name if name in families else next((f for f in families if name.startswith(f + "_")), name)
            families.setdefault(family, {})[name[len(family):] + "{" + labels if labels else name[len(family):]] = float(value)
    return families


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")


@dataclass
class Node:
    name: str
    root: Path
    serf_port: int
    rpc_port: int
    http_port: int
    dns_port: int
    docker_socket: str
    interval: float
    serf: subprocess.Popen | None = None
    agent: subprocess.Popen | None = None
    extra_config: dict = field(default_factory=dict)
    # [supervisor] settings: short back-off for tests, unless a test asks for others.
    supervisor_config: dict = field(default_factory=lambda: {"backoff_initial": 0.5, "backoff_max": 4,
                                                              "backoff_reset": 30, "stop_timeout": 2})
    # [failover] settings, if a test sets any.
    failover_config: dict = field(default_factory=dict)

    @property
    def services_dir(self) -> Path:
        return self.root / "services"

    @property
    def token(self) -> str:
        return (self.root / "state" / "api-token").read_text().strip()

    def write_config(self) -> None:
        self.services_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f'node_name = "{self.name}"', 'bind_addresses = ["127.0.0.1"]',
            f"http_port = {self.http_port}", f"dns_port = {self.dns_port}",
            f'services_dir = "{self.services_dir}"', f'state_dir = "{self.root / "state"}"',
            f'token_file = "{self.root / "state" / "api-token"}"', 'log_level = "debug"',
        ]
        lines += [f"{k} = {json.dumps(v)}" for k, v in self.extra_config.items()]
        lines += ["[serf]", f'rpc_address = "127.0.0.1:{self.rpc_port}"',
                  f'rpc_auth_file = "{self.root / "serf-rpc.json"}"', "sync_interval = 5",
                  "[supervisor]", f'docker_socket = "{self.docker_socket}"', f"interval = {self.interval}"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in self.supervisor_config.items()]
        if self.failover_config:
            lines += ["[failover]"] + [f"{k} = {json.dumps(v)}" for k, v in self.failover_config.items()]
        (self.root / "agent.toml").write_text("\n".join(lines) + "\n")

    def start_serf(self, keyring: Path, join: list[int]) -> None:
        command = ["serf", "agent", f"-node={self.name}", f"-bind=127.0.0.1:{self.serf_port}",
                   f"-rpc-addr=127.0.0.1:{self.rpc_port}", f"-config-file={self.root / 'serf-rpc.json'}",
                   f"-keyring-file={keyring}", "-log-level=warn"]
        command += [f"-retry-join=127.0.0.1:{port}" for port in join] + ["-retry-interval=1s"] if join else []
        self.serf = subprocess.Popen(command, stdout=open(self.root / "serf.log", "ab"), stderr=subprocess.STDOUT)

    def start_agent(self, bundle: Path | None = None, open_files: int | None = None) -> None:
        """From the sources, or from the zipapp the agent role installs on nodes. `open_files`: the
        process's descriptor limit (a unit's LimitNOFILE)."""
        env = dict(os.environ, PYTHONPATH=str(SRC))
        command = [str(bundle)] if bundle else ["-m", "pico_agent"]

        def limit() -> None:
            if open_files:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.agent = subprocess.Popen([sys.executable, *command, "--config", str(self.root / "agent.toml")],
                                      env=env, stdout=open(self.root / "agent.log", "ab"), stderr=subprocess.STDOUT,
                                      preexec_fn=limit)

    def rss_kib(self) -> int:
        """The agent's resident memory now (0 once it has exited)."""
        try:
            status = Path(f"/proc/{self.agent.pid}/status").read_text()
        except (OSError, AttributeError):
            return 0
        return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)

    def running(self) -> bool:
        return all(proc is not None and proc.poll() is None for proc in (self.serf, self.agent))

    def kill(self) -> None:
        """A node dying: no goodbye to anyone."""
        for proc in (self.agent, self.serf):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()

    def stop_agent(self, timeout: float = 20) -> int:
        assert self.agent is not None
        self.agent.send_signal(signal.SIGTERM)
        return self.agent.wait(timeout)

    def get(self, path: str, token: str | None = None, method: str = "GET", body: bytes | None = None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", method=method, data=body)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode()

    def dns(self, name: str, qtype: str = "A") -> DNSRecord | None:
        query = DNSRecord.question(name, qtype)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.sendto(query.pack(), ("127.0.0.1", self.dns_port))
            try:
                data, _ = sock.recvfrom(65535)
            except (TimeoutError, ConnectionRefusedError):
                return None
        return DNSRecord.parse(data)

    def resolve(self, name: str) -> list[str]:
        reply = self.dns(name)
        return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A) if reply else []

    def add_service(self, spec: dict) -> None:
        path = self.services_dir / f"{spec['name']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec))
        tmp.rename(path)

    def remove_service(self, name: str) -> None:
        (self.services_dir / f"{name}.json").unlink()

    def instances(self, service: str) -> list[dict]:
        status, body = self.get(f"/v1/services/{service}")
        return body["instances"] if status == 200 else []

    def members(self) -> dict[str, str]:
        status, body = self.get("/v1/members")
        return {m["name"]: m["status"] for m in body["members"]} if status == 200 else {}


class AgentLab:
    def __init__(self, root: Path, count: int, docker_socket: str = "/run/docker.sock", interval: float = 2.0,
                 prefix: str = "n"):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.keyring = root / "keyring.json"
        self.keyring.write_text(json.dumps([base64.b64encode(secrets.token_bytes(32)).decode()]))
        ports = free_ports(4 * count)
        self.nodes = []
        for index in range(count):
            node_root = root / f"{prefix}{index + 1}"
            node_root.mkdir(parents=True)
            (node_root / "serf-rpc.json").write_text(json.dumps({"rpc_auth": secrets.token_urlsafe(16)}))
            self.nodes.append(Node(f"{prefix}{index + 1}", node_root, *ports[4 * index: 4 * index + 4],
                                   docker_socket=docker_socket, interval=interval))

    def start(self, nodes: list[Node] | None = None, bundle: Path | None = None) -> None:
        first = self.nodes[0].serf_port
        for node in nodes or self.nodes:
            node.write_config()
            node.start_serf(self.keyring, [] if node.serf_port == first else [first])
            node.start_agent(bundle)

    def stop(self) -> None:
        # Agents first (they make Serf leave), then whatever Serf is still up.
        for kind in ("agent", "serf"):
            procs = [getattr(node, kind) for node in self.nodes]
            for proc in procs:
                if proc and proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                if proc:
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()

    def all_see(self, count: int, status: str = "alive") -> bool:
        """Every node's agent runs and sees `count` members in `status`. A node whose agent or Serf
        is not running makes this False: readiness must not pass because nobody is there to ask."""
        for node in self.nodes:
            if not node.running():
                return False
            seen = node.members()
            if sum(1 for s in seen.values() if s == status) != count:
                return False
        return True


def raw_http(port: int, payload: bytes) -> bytes:
    """Send bytes to 127.0.0.1:port, close the sending side, and return all that comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def accept_queue(port: int) -> int:
    """Connections the kernel holds for the listening socket on 127.0.0.1:`port`, not accepted yet."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on {port}")


class RSSPeak:
    """The agent's peak RSS (KiB) while the block runs, sampled every 20 ms: `with RSSPeak(node) as rss`."""

    def __init__(self, node: "Node"):
        self.node, self.peak, self._stop = node, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.node.rss_kib())
            self._stop.wait(0.02)

    def __enter__(self) -> "RSSPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class PortListener:
    """A TCP service the node already runs (the kind a service file without an image publishes)."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None

    def open(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)

    def close(self) -> None:
        if self.sock:
            self.sock.close()
            self.sock = None
