"""Start real `serf agent` and `pico-agent` processes on loopback, each node on its own ports
(AgentLab), or each node in a network namespace of its own with its own address (NetnsLab).

Shared by the integration tests and the agent and failover benches.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import platform
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
NETDELAY = Path(__file__).resolve().parent / "netdelay.py"
# The demo service's native image, built by `make images`, and this machine's dockerd.
DEMO_ARCHIVE = Path("/var/cache/pico-lab/workloads/pico-demo_1.0.0_amd64.tar")
DEMO_IMAGE = "pico/demo:1.0.0"
DOCKER_SOCKET = "/var/run/docker.sock"
MB = 1024 * 1024
# The plan deploy.yml writes holds this cluster id; the failover tests and benches use their own.
CLUSTER_ID = "0123456789abcdef"
WORKER_TAG = "pico.spec:abc"
# Serf settings the agent role gives every node beyond the command line's (roles/agent/vars).
ROLE_SERF_SETTINGS = {"reconnect_interval": "5s"}
# The agent events a failed test prints as its timeline, beside every warning and error.
TIMELINE_EVENTS = frozenset({"agent_started", "serf_connected", "member_status", "failover_changed",
                             "container_started", "container_removed", "local_catalog", "docker_reachable"})


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


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition", explain=None):
    """`explain`, if given, is called on a timeout; what it returns goes into the error (say, what
    the agents did meanwhile), so a failure in CI can be read from its log alone."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    detail = f"\n{explain()}" if explain else ""
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r}){detail}")


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
    # Where Serf, the API and DNS listen; a node in a network namespace of its own (NetnsLab)
    # has an address of its own there and runs its processes inside it.
    address: str = "127.0.0.1"
    netns: str | None = None
    serf_profile: str | None = None

    @property
    def gossip_address(self) -> str:
        return f"{self.address}:{self.serf_port}"

    def _inside(self) -> list[str]:
        """The command prefix that runs a process in this node's network namespace."""
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    @property
    def services_dir(self) -> Path:
        return self.root / "services"

    @property
    def token(self) -> str:
        return (self.root / "state" / "api-token").read_text().strip()

    def write_config(self) -> None:
        self.services_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f'node_name = "{self.name}"', f'bind_addresses = ["{self.address}"]',
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

    def start_serf(self, keyring: Path, join: list[str]) -> None:
        """`join`: gossip addresses (host:port) of members to join."""
        command = [*self._inside(), "serf", "agent", f"-node={self.name}", f"-bind={self.gossip_address}",
                   f"-rpc-addr=127.0.0.1:{self.rpc_port}", f"-config-file={self.root / 'serf-rpc.json'}",
                   f"-keyring-file={keyring}", "-log-level=warn"]
        command += [f"-profile={self.serf_profile}"] if self.serf_profile else []
        command += [f"-retry-join={address}" for address in join] + ["-retry-interval=1s"] if join else []
        self.serf = subprocess.Popen(command, stdout=open(self.root / "serf.log", "ab"), stderr=subprocess.STDOUT)

    def start_agent(self, bundle: Path | None = None, open_files: int | None = None,
                    sockets: list[socket.socket] = (), memory: "MemoryLimit | None" = None) -> None:
        """From the sources, or from the zipapp the agent role installs on nodes. `open_files`: the
        process's descriptor limit (a unit's LimitNOFILE). `sockets`: bound sockets handed over
        the way systemd's socket activation does (descriptors 3, 4, ..., LISTEN_FDS and a
        LISTEN_PID that is the agent's own: the shell that sets it execs the agent). `memory`: a
        cgroup with the unit's MemoryMax the agent runs in from its first page on."""
        env = dict(os.environ, PYTHONPATH=str(SRC))
        command = [str(bundle)] if bundle else ["-m", "pico_agent"]
        passed = range(3, 3 + len(sockets))

        def prepare() -> None:
            if memory:
                memory.enter()
            if open_files:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
            # Out of the way first, so that placing one cannot overwrite another not yet placed.
            parked = [fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD, 100) for sock in sockets]
            for target, fd in zip(passed, parked):
                os.dup2(fd, target)

        launcher = ["sh", "-c", f'LISTEN_PID=$$ LISTEN_FDS={len(sockets)} exec "$@"', "sh"] if sockets else []
        self.agent = subprocess.Popen([*self._inside(), *launcher, sys.executable, *command,
                                       "--config", str(self.root / "agent.toml")],
                                      env=env, stdout=open(self.root / "agent.log", "ab"), stderr=subprocess.STDOUT,
                                      preexec_fn=prepare, pass_fds=tuple(passed))

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
        request = urllib.request.Request(f"http://{self.address}:{self.http_port}{path}", method=method, data=body)
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
            sock.sendto(query.pack(), (self.address, self.dns_port))
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

    def events_since(self, since: float) -> list[tuple[float, str]]:
        """This node's agent log from `since` (wall clock) on: (seconds after it, a short line) per
        timeline event."""
        lines = []
        try:
            raw = (self.root / "agent.log").read_text(errors="replace").splitlines()
        except OSError:
            return lines
        for line in raw:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            wanted = event.get("event") in TIMELINE_EVENTS or event.get("level") in ("warning", "error")
            if event.get("ts", 0) >= since and wanted:
                rest = {k: v for k, v in event.items() if k not in ("ts", "level", "event")}
                offset = event["ts"] - since
                lines.append((offset, f"+{offset:6.2f}s {self.name} {event['event']} {json.dumps(rest)[:160]}"))
        return lines


class AgentLab:
    def __init__(self, root: Path, count: int, docker_socket: str = "/run/docker.sock", interval: float = 2.0,
                 prefix: str = "n"):
        self._make_root(root)
        ports = free_ports(4 * count)
        self.nodes = []
        for index in range(count):
            name = f"{prefix}{index + 1}"
            self.nodes.append(Node(name, self._node_root(name), *ports[4 * index: 4 * index + 4],
                                   docker_socket=docker_socket, interval=interval))

    def _make_root(self, root: Path) -> None:
        """The lab's directory and the gossip keyring its nodes share."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.keyring = root / "keyring.json"
        self.keyring.write_text(json.dumps([base64.b64encode(secrets.token_bytes(32)).decode()]))

    def _node_root(self, name: str, serf_settings: dict | None = None) -> Path:
        """A node's directory, with its Serf RPC token and settings."""
        node_root = self.root / name
        node_root.mkdir(parents=True)
        settings = {"rpc_auth": secrets.token_urlsafe(16), **(serf_settings or {})}
        (node_root / "serf-rpc.json").write_text(json.dumps(settings))
        return node_root

    def start(self, nodes: list[Node] | None = None, bundle: Path | None = None) -> None:
        first = self.nodes[0]
        for node in nodes or self.nodes:
            node.write_config()
            node.start_serf(self.keyring, [] if node is first else [first.gossip_address])
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


class MemoryLimit:
    """A memory cgroup of the process's own with a limit, as systemd's MemoryMax gives a unit: the
    kernel counts the process's memory (its pages and the page cache it reads) and reclaims, then
    kills, at the limit. cgroup v2 where the memory controller is there, else v1.

    `enter()` runs in the child between fork and exec (a preexec_fn), so every page the process
    ever touches is charged here."""

    def __init__(self, name: str, limit: int):
        self.limit = limit
        v2 = Path("/sys/fs/cgroup")
        self.v2 = "memory" in _read(v2 / "cgroup.controllers", "").split()
        if self.v2:
            # A child of the root (as root): a group that holds processes cannot hand controllers
            # on to children of its own, and the root is exempt.
            parent = v2
            if "memory" not in _read(v2 / "cgroup.subtree_control", "").split():
                (v2 / "cgroup.subtree_control").write_text("+memory")
        else:
            parent = Path("/sys/fs/cgroup/memory") / _own_cgroup("memory").lstrip("/")
        self.path = parent / f"{name}-{os.getpid()}-{secrets.token_hex(3)}"
        self.path.mkdir()
        (self.path / ("memory.max" if self.v2 else "memory.limit_in_bytes")).write_text(str(limit))
        if self.v2 and (self.path / "memory.swap.max").exists():
            (self.path / "memory.swap.max").write_text("0")  # no way around the limit

    def enter(self) -> None:
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    @property
    def peak(self) -> int:
        """The highest use in bytes since the process started."""
        return int(_read(self.path / ("memory.peak" if self.v2 else "memory.max_usage_in_bytes"), "0"))

    @property
    def oom_kills(self) -> int:
        name = "memory.events" if self.v2 else "memory.oom_control"
        fields = dict(line.split() for line in _read(self.path / name, "").splitlines() if line.strip())
        return int(fields.get("oom_kill", 0))

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass  # a process is still in it; the test that left it says so


def _read(path: Path, default: str) -> str:
    try:
        return path.read_text()
    except OSError:
        return default


def _own_cgroup(controller: str) -> str:
    """This process's cgroup path in the cgroup v1 hierarchy of `controller`."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    raise RuntimeError(f"no {controller} cgroup in /proc/self/cgroup: the tests need one to hold the agent to its MemoryMax")


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


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


NEIGHBOUR_LIMITS = Path("/proc/sys/net/ipv4/neigh/default")


def _make_room_for_neighbours(entries: int) -> None:
    """Raise the host's ARP table limits to hold `entries` (never lower them). Every namespace
    keeps an entry per peer, and the limits are shared by all namespaces: at 50 nodes the default
    gc_thresh3 of 1024 overflows ("neighbor table overflow"), ARP fails, and joins time out."""
    if 2 * entries <= int((NEIGHBOUR_LIMITS / "gc_thresh3").read_text()):
        return  # room enough (up to about 20 nodes with the defaults): the host is left as it is
    for name, wanted in (("gc_thresh2", 2 * entries), ("gc_thresh3", 4 * entries)):
        path = NEIGHBOUR_LIMITS / name
        if int(path.read_text()) < wanted:
            path.write_text(str(wanted))


def _in_netns(netns: str, *command: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, *command], check=True, capture_output=True)


class NetnsLab(AgentLab):
    """Nodes in network namespaces of their own, on one bridge: like boards on a LAN, each with
    its own address and the role's default ports, and a link that faults can be put on (iptables
    in the node's namespace: a partition, packet loss). The bridge lives in a hub namespace of
    the lab's (the host's bridge netfilter settings do not reach it); this machine reaches the
    nodes over one veth pair, from `host_address`."""

    PORTS = (7946, 7373, 8500, 8600)  # serf, Serf RPC, HTTP, DNS: the agent role's defaults

    def __init__(self, root: Path, count: int, net: int, docker_socket: str = "/run/docker.sock",
                 interval: float = 2.0, prefix: str = "n", serf_profile: str | None = None,
                 serf_settings: dict | None = None):
        if len(f"{prefix}{count}-h") > 15:
            raise ValueError(f"prefix {prefix!r} too long for interface names")
        self._make_root(root)
        self.prefix = prefix
        self.subnet = f"10.251.{net}"
        self.host_address = f"{self.subnet}.254"
        self.hub = f"pico-{prefix}-hub"
        self._delayers: list[subprocess.Popen] = []
        self.nodes = []
        for index in range(count):
            name = f"{prefix}{index + 1}"
            node_root = self._node_root(name, {**ROLE_SERF_SETTINGS, **(serf_settings or {})})
            self.nodes.append(Node(name, node_root, *self.PORTS, docker_socket=docker_socket, interval=interval,
                                   address=f"{self.subnet}.{index + 1}", netns=f"pico-{name}",
                                   serf_profile=serf_profile))
        self._remove_network()  # what a killed earlier run may have left
        self._build_network()

    def _build_network(self) -> None:
        _make_room_for_neighbours((len(self.nodes) + 1) ** 2)
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        _ip("link", "add", f"{self.prefix}-up", "type", "veth", "peer", "name", "uplink", "netns", self.hub)
        _ip("addr", "add", f"{self.host_address}/24", "dev", f"{self.prefix}-up")
        _ip("link", "set", f"{self.prefix}-up", "up")
        _ip("-n", self.hub, "link", "set", "uplink", "master", "br0", "up")
        for node in self.nodes:
            hub_end = f"{node.name}-h"
            _ip("netns", "add", node.netns)
            _ip("-n", node.netns, "link", "set", "lo", "up")
            _ip("-n", self.hub, "link", "add", hub_end, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
            _ip("-n", self.hub, "link", "set", hub_end, "master", "br0", "up")
            _ip("-n", node.netns, "addr", "add", f"{node.address}/24", "dev", "eth0")
            _ip("-n", node.netns, "link", "set", "eth0", "up")

    def _remove_network(self) -> None:
        for netns in [node.netns for node in self.nodes] + [self.hub]:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", f"{self.prefix}-up"], capture_output=True, check=False)

    def stop(self) -> None:
        self._stop_delayers()
        super().stop()
        self._remove_network()

    # Faults drop packets where they arrive: a packet dropped on its way out fails the sender's
    # send call, which memberlist takes for a local error and not for a silent peer.
    def partition(self, *sides: list[Node]) -> None:
        """Cut every link between nodes on different sides, both ways."""
        for side in sides:
            for node in side:
                for peer in (peer for other in sides if other is not side for peer in other):
                    _in_netns(node.netns, "iptables", "-A", "INPUT", "-s", peer.address, "-j", "DROP")

    def lossy(self, node: Node, probability: float) -> None:
        """Lose this share of the packets on the node's link, each way: a weak Wi-Fi link."""
        drop = ["-m", "statistic", "--mode", "random", "--probability", str(probability), "-j", "DROP"]
        _in_netns(node.netns, "iptables", "-A", "INPUT", "-i", "eth0", *drop)
        for peer in self.nodes:
            if peer is not node:
                _in_netns(peer.netns, "iptables", "-A", "INPUT", "-s", node.address, *drop)

    def delayed(self, node: Node, seconds: float) -> None:
        """Hold every packet the node sends for this long, as netem's delay on a board's link does
        (this kernel has no netem): netdelay.py behind an NFQUEUE rule in the node's namespace.
        With no delayer bound, the kernel drops the queue's packets: a broken fault shows."""
        queue = str(len(self._delayers) + 1)
        delayer = subprocess.Popen(["ip", "netns", "exec", node.netns, sys.executable, str(NETDELAY), queue,
                                    str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if delayer.stdout.readline().strip() != "ready":
            raise AssertionError(f"netdelay did not start: {delayer.communicate(timeout=5)[1].strip()}")
        self._delayers.append(delayer)
        _in_netns(node.netns, "iptables", "-A", "OUTPUT", "-o", "eth0", "-j", "NFQUEUE", "--queue-num", queue)

    def heal(self) -> None:
        for node in self.nodes:
            _in_netns(node.netns, "iptables", "-F")
        held = self._stop_delayers()
        if any(count == 0 for count in held):
            raise AssertionError(f"a delayed link held no packet (netdelay counts: {held}): the delay was never applied")

    def _stop_delayers(self) -> list[int]:
        """Each delayer's count of the packets it held."""
        counts = []
        for delayer in self._delayers:
            delayer.terminate()
            report = delayer.communicate(timeout=10)[1]
            counts.append(int(report.split()[1]) if report.startswith("held ") else 0)
        self._delayers = []
        return counts


def worker_spec(image: str, name: str = "worker") -> dict:
    """A service with no port: its copies can share one address, as several nodes on loopback do."""
    return {"name": name, "image": image, "command": ["python3", "-c", "import time; time.sleep(10**6)"],
            "tags": [WORKER_TAG]}


def failover_plan(nodes: list[Node], image: str, slots: dict[str, list[str]]) -> dict:
    """The plan deploy.yml would write: for each service (a worker_spec), one slot per owner listed,
    every node a candidate with room for it. Nodes on one dockerd name their containers alike
    (pico-<service>-<index>), so each owner here owns a slot of a service of its own."""
    arch = platform.machine()
    owners = [owner for names in slots.values() for owner in names]
    services = {service: {"digest": "abc", "slots": list(names), "failover": {
        "candidates": [n.name for n in nodes], "requests": {"memory": 32 * MB, "cpu": 0.1},
        "specs": {arch: dict(worker_spec(image, service), replicas=1)}}} for service, names in slots.items()}
    return {
        "generation": 1, "cluster": CLUSTER_ID, "version": "v1", "drained": [],
        "nodes": {n.name: {"arch": arch, "memory": 1024 * MB, "cpus": 2.0,
                           "memory_requested": 32 * MB * owners.count(n.name),
                           "cpu_requested": 0.1 * owners.count(n.name)} for n in nodes},
        "services": services,
    }


def use_plan(nodes: list[Node], plan: dict, hold_down: float, drain_time: float) -> None:
    """Give every node the plan and the failover settings (before it starts)."""
    for node in nodes:
        node.extra_config = {"plan_file": str(node.root / "plan.json"), "cluster_id": plan["cluster"]}
        node.failover_config = {"hold_down": hold_down, "drain_time": drain_time}
        node.root.joinpath("plan.json").write_text(json.dumps(plan))


def timeline(nodes: list[Node], since: float) -> str:
    """What these agents logged of membership, failover and containers since `since`, in time order."""
    lines = sorted(entry for node in nodes for entry in node.events_since(since))
    return "\n".join(line for _, line in lines) or "(no events)"


def worker_copies(node: Node, service: str = "worker") -> list[tuple[str, str | None]]:
    """(node, failover tag or None) of each healthy copy of the service this node's agent knows of."""
    found = []
    for instance in node.instances(service):
        tag = next((t for t in instance["tags"] if t.startswith("pico.failover:")), None)
        found.append((instance["node"], tag))
    return sorted(found, key=repr)


def worker_containers(node: Node, service: str = "worker") -> list[str]:
    return docker("ps", "-q", "--filter", f"label=pico.node={node.name}",
                  "--filter", f"label=pico.service={service}").split()


def plan_restored(nodes: list[Node], owners: dict[str, Node]) -> bool:
    """One copy per slot, the owner's, in every agent's view and in the containers that run.
    `owners`: {service: the node that owns its one slot}."""
    return all(worker_copies(n, service) == [(owner.name, None)] for service, owner in owners.items() for n in nodes) \
        and all(sum(len(worker_containers(n, service)) for n in nodes) == 1 for service in owners)


def remove_containers(nodes: list[Node]) -> None:
    for node in nodes:
        for cid in docker("ps", "-aq", "--filter", f"label=pico.node={node.name}").split():
            docker("rm", "-f", cid)
