"""One real agent (with its Serf, a demo container and a host service) under hostile input on
loopback: connection floods, random and crafted HTTP requests and DNS packets, and bad local files
of every kind. Throughout and afterwards it answers /v1/health, stays under its unit's memory
limit, and the good services keep running and published. How fast it answers is a benchmark's
question, not a test's (bench/agent_hardening.py: within 1 s with 10,000 connections held).

The agent runs with 1024 open files, the systemd default under which ~1,050 half-open connections
used to end it. The counts here are bounded to keep the suite fast; bench/agent_hardening.py goes
to 10,000 connections and a 20,000-query DNS burst."""

import http.server
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from agentlab import (DOCKER_SOCKET, AgentLab, MemoryLimit, PortListener, accept_queue, docker, free_ports,
                      load_demo_image, parse_metrics, raw_http, wait_for)
from dnslib import QTYPE, DNSRecord, EDNS0
from pico_agent.catalog import served_version
from pico_agent.serf import SerfClient, SerfError

REPO = Path(__file__).resolve().parents[3]
ROLE_DEFAULTS = REPO / "collections/ansible_collections/pico/cloud/roles/agent/defaults/main.yml"
SECRET = "hunter2-do-not-print"
# The systemd default, not the unit's 16384: a flood that fills the accept queue then runs the agent
# out of descriptors (asyncio accepts up to the backlog, 1024, in one go), the harder case.
AGENT_OPEN_FILES = 1024
# A read of /v1/health that gets no answer in this time means the agent is stuck, not slow.
ANSWER_DEADLINE = 10


def unit_memory_max() -> int:
    """pico_agent_memory_max, the unit's MemoryMax, in bytes, from the role's defaults."""
    value = re.search(r"^pico_agent_memory_max:\s*(\d+)M\s*$", ROLE_DEFAULTS.read_text(), re.M).group(1)
    return int(value) * 1024 * 1024


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    image = load_demo_image()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this process opens the flood's sockets
    root = tmp_path_factory.mktemp("hostile")
    lab = AgentLab(root, 1, docker_socket=DOCKER_SOCKET, interval=2, prefix="hostile")
    node = lab.nodes[0]
    demo_port, ssh_port = free_ports(2)
    node.write_config()
    node.add_service({"name": "demo", "image": image, "port": demo_port,
                      "health": {"type": "http", "path": "/healthz", "interval": 1, "timeout": 1, "retries": 2}})
    node.add_service({"name": "ssh", "port": ssh_port, "health": {"type": "tcp", "interval": 1, "timeout": 0.5}})
    listener = PortListener(ssh_port)
    listener.open()
    node.start_serf(lab.keyring, [])
    # The agent runs under its unit's MemoryMax, counted and enforced by the kernel as on a node.
    node.memory = MemoryLimit("hostile-agent", unit_memory_max())
    node.keyring = lab.keyring  # hostile peers join its gossip
    node.start_agent(open_files=AGENT_OPEN_FILES, memory=node.memory)
    wait_for(lambda: sorted(i["service"] for i in node.instances("demo") + node.instances("ssh")) == ["demo", "ssh"],
             60, what="demo and ssh published")
    node.demo_container = container_id(node)
    yield node
    lab.stop()
    node.memory.remove()
    listener.close()
    for cid in docker("ps", "-aq", "--filter", f"label=pico.node={node.name}").split():
        docker("rm", "-f", cid)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def container_id(node) -> str:
    return docker("ps", "-q", "--no-trunc", "--filter", f"label=pico.node={node.name}", "--filter", "status=running")


def health(node):
    """(status, body) of /v1/health, or (None, reason) when it does not answer by ANSWER_DEADLINE."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/v1/health", timeout=ANSWER_DEADLINE) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
    except OSError as err:
        return None, repr(err)


def assert_unharmed(node):
    """The agent lives, answers, never came near its unit's MemoryMax (the kernel's count of
    everything it used since it started, in its own cgroup), and the good services run."""
    memory = node.memory
    assert node.agent.poll() is None, f"the agent exited: {memory_report(node)}"
    status, body = health(node)
    assert status in (200, 503), f"/v1/health did not answer within {ANSWER_DEADLINE} s: {body}"
    assert memory.peak < memory.limit and memory.oom_kills == 0, memory_report(node)
    assert container_id(node) == node.demo_container, "the demo container was replaced"
    assert sorted(i["service"] for i in node.instances("demo") + node.instances("ssh")) == ["demo", "ssh"]
    log = (node.root / "agent.log").read_text()
    assert "Traceback" not in log and SECRET not in log
    return status, body


def memory_report(node) -> str:
    memory = node.memory
    return (f"the agent used at most {memory.peak / 2**20:.1f} MiB of its unit's MemoryMax of "
            f"{memory.limit >> 20} MiB, and was killed there {memory.oom_kills} times")


def open_half_open(port: int, count: int) -> list[socket.socket]:
    """Connections that never finish a request: idle, a partial head, or a partial 64 KiB body."""
    sockets = []
    for index in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
        if index % 3 == 1:
            try_send(sock, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        elif index % 3 == 2:
            try_send(sock, b"POST /v1/reconcile HTTP/1.1\r\nContent-Length: 65536\r\n\r\n" + b"x" * 32768)
    return sockets


def try_send(sock, data):
    try:
        sock.send(data)
    except OSError:  # not connected yet, or already dropped by the agent: both are part of a flood
        pass


@contextmanager
def flood(port: int, count: int):
    sockets = open_half_open(port, count)
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_3000_half_open_connections_do_not_end_it_or_bloat_it(target):
    """While the flood's connections are held open the agent answers, and is healthy. A burst that
    ran it out of descriptors may fail the Docker and service-file reads of the reconcile under
    way (503) until the next one, every 2 s here."""
    with flood(target.http_port, 3000):
        wait_for(lambda: accept_queue(target.http_port) == 0, 10, what="the burst accepted")
        wait_for(lambda: health(target)[0] == 200, 10, what="healthy with the flood held")
        answers = [health(target)[0] for _ in range(5)]
        assert answers == [200] * 5, answers
        with flood(target.dns_port, 1500):  # DNS over TCP shares the cap
            wait_for(lambda: accept_queue(target.dns_port) == 0, 10, what="the DNS burst accepted")
            wait_for(lambda: health(target)[0] == 200, 10, what="healthy with both floods held")
            assert tcp_dns(target.dns_port, DNSRecord.question("demo.service.pico")).rr
            metrics = parse_metrics(target.get("/metrics")[1])
    # The cap held: a third of the HTTP flood sent whole (refused) requests, the rest waited.
    assert metrics["pico_connections_waiting"][""] <= 256
    assert metrics["pico_connections_evicted_total"][""] >= 2000 + 1500 - 2 * 256
    assert_unharmed(target)


def fuzzed(valid: bytes, count: int, seed: int):
    """`count` inputs, alternately random bytes and `valid` with a few bytes changed."""
    rng = random.Random(seed)
    for index in range(count):
        if index % 2:
            yield rng.randbytes(rng.randint(0, 2 * len(valid)))
            continue
        mutated = bytearray(valid)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        yield bytes(mutated)


CRAFTED_HTTP = [
    (b"GET /v1/health HTTP/2.0\r\n\r\n", 505),
    (b"GET /v1/health HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 400),
    (b"POST /v1/reconcile HTTP/1.1\r\nContent-Length: 65536\r\n\r\n" + b"x" * 1000, 413),
    (b"POST /v1/reconcile HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413),
    (b"GET /v1/health HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"GET /v1/health\r\n\r\n", 400),
    (b"\xff\xfe / HTTP/1.1\r\n\r\n", 400),
    (b"GET /v1/services/" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 400),
    (b"GET /v1/services/Demo HTTP/1.1\r\n\r\n", 400),
    (b"POST /v1/reconcile HTTP/1.1\r\nAuthorization: Bearer " + b"x" * 4000 + b"\r\n\r\n", 403),
    (b"POST /v1/services/demo/restart HTTP/1.1\r\n\r\n", 401),
    (b"GET /v1/health HTTP/1.1", 400),
    (b"", 400),
]


def test_random_and_crafted_http_requests(target):
    for data, status in CRAFTED_HTTP:
        answer = raw_http(target.http_port, data)
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), (data[:60], answer[:80])
    head = raw_http(target.http_port, b"HEAD /v1/health HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")  # headers, no body
    valid = b"GET /v1/services/demo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n\r\n"
    for data in fuzzed(valid, 400, seed=42):
        answer = raw_http(target.http_port, data)
        status = int(answer[9:12]) if answer.startswith(b"HTTP/1.1 ") else None
        assert status is not None and status != 500, (data, answer[:100])
    assert_unharmed(target)


def udp_exchange(port: int, data: bytes, timeout: float = 0.3) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recvfrom(65535)[0]
        except TimeoutError:
            return None


def test_random_and_crafted_dns_packets(target):
    query = DNSRecord.question("demo.service.pico")
    answer = udp_exchange(target.dns_port, query.pack())
    assert answer and DNSRecord.parse(answer).rr
    # An answer sent to the agent, as a spoofed packet between two agents would be: no reply.
    assert udp_exchange(target.dns_port, answer) is None
    srv = DNSRecord.question("_demo._tcp.service.pico", "SRV")
    srv.add_ar(EDNS0(udp_len=65000))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for packet in fuzzed(bytes(srv.pack()), 3000, seed=7):
            sock.sendto(packet, ("127.0.0.1", target.dns_port))
    assert_unharmed(target)
    assert target.resolve("demo.service.pico") == ["127.0.0.1"]
    # Unreadable packets are logged as a count now and then, not as a line (or a traceback) each.
    assert (target.root / "agent.log").read_text().count("dns_query_failed") < 10


def tcp_dns(port: int, query: DNSRecord) -> DNSRecord:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        data = query.pack()
        sock.sendall(len(data).to_bytes(2, "big") + data)
        size = int.from_bytes(sock.recv(2), "big")
        answer = b""
        while len(answer) < size:
            answer += sock.recv(size - len(answer))
    return DNSRecord.parse(answer)


def test_dns_over_tcp_on_the_same_port(target):
    answer = tcp_dns(target.dns_port, DNSRecord.question("_demo._tcp.service.pico", "SRV"))
    assert [rr.rtype for rr in answer.rr] == [QTYPE.SRV] and not answer.header.tc


class Pages:
    """HTTP servers on 127.0.0.1, one port each, that answer every request with a page of the
    given size: what a service's health check may be pointed at."""

    def __init__(self, sizes: list[int]):
        self.servers = []
        for size in sizes:
            page = b"x" * size

            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self, page=page):  # noqa: N802 (the stdlib's name)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    try:
                        self.wfile.write(page)
                    except OSError:
                        pass  # the check hung up once it had the status line

                def log_message(self, *args):
                    pass

            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
        self.ports = [server.server_address[1] for server in self.servers]

    def close(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()


class HostilePeer:
    """A member that joins the agent's gossip with a real Serf, announcing `version` as its
    catalog's, and serves `body` on its API port: a peer gone bad, or one with a large honest
    catalog. `requests` counts the catalog fetches it answered. Leaves the cluster on close."""

    def __init__(self, target, body: bytes, version: str):
        self.body, self.requests = body, 0
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                peer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(peer.body)))
                self.end_headers()
                try:
                    self.wfile.write(peer.body)
                except OSError:
                    pass  # refused before it was all read: the point

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        gossip, rpc = free_ports(2)
        self.log = target.root / "hostile-peer-serf.log"
        self.serf = subprocess.Popen(
            ["serf", "agent", "-node=hostile-peer", f"-bind=127.0.0.1:{gossip}", f"-rpc-addr=127.0.0.1:{rpc}",
             f"-keyring-file={target.keyring}", "-tag", f"api={self.server.server_address[1]}", "-tag",
             f"cv={version}", f"-join={target.gossip_address}", "-log-level=warn"],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.serf.send_signal(signal.SIGINT)  # Serf leaves the cluster on an interrupt
        try:
            self.serf.wait(15)
        except subprocess.TimeoutExpired:
            self.serf.kill()
            self.serf.wait()
        self.server.shutdown()
        self.server.server_close()


def logged(node, name: str) -> list[dict]:
    """The agent's log events called `name`."""
    events = []
    for line in (node.root / "agent.log").read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == name:
            events.append(event)
    return events


def catalog_of(instances: list[dict]) -> tuple[bytes, str]:
    """A /v1/catalog/local answer and the version a member announces for it."""
    version = served_version(instances)
    return json.dumps({"version": version, "instances": instances}).encode(), version


def test_a_peers_oversized_catalog_is_refused_before_it_is_read_whole(target):
    """A peer serving 8 MiB of `{},` as its catalog took the fetching agent to 241 MB and was asked
    again at the next pass: refused at 1 MiB now, asked again only after a growing wait."""
    body = b'{"version": "v-bad", "instances": [' + b"{}," * (8 * 1024 * 1024 // 3) + b"{}]}"
    with HostilePeer(target, body, "v-bad") as peer:
        wait_for(lambda: peer.requests >= 1, 30, what="the agent asked the peer for its catalog")
        time.sleep(4)
        assert 1 <= peer.requests <= 4, f"{peer.requests} fetches in 4 s"
        assert_unharmed(target)
    assert any("1048576" in event.get("error", "") for event in logged(target, "peer_fetch_failed")), \
        "the agent did not say why it refused the peer's catalog"


def test_dns_over_tcp_answers_nobody_reads_stay_bounded(target):
    """255 clients each pipeline 100 SRV queries for a service with 120 instances (about 8 KB an
    answer) and never read: 200 MB of answers, were they all kept. They once took an agent from
    22 to 97 MB, and it stayed there after the clients left."""
    instances = [{"service": "web", "node": "hostile-peer", "address": "127.0.0.1", "port": 20000 + index,
                  "id": f"hostile-peer/web-{index}", "tags": ["pico.spec:abc"]} for index in range(1000)]
    body, version = catalog_of(instances)
    with HostilePeer(target, body, version):
        wait_for(lambda: len(target.instances("web")) == 1000, 30, what="the peer's 1,000 instances published")
        query = DNSRecord.question("_web._tcp.service.pico", "SRV").pack()
        batch = (len(query).to_bytes(2, "big") + query) * 100
        clients = []
        try:
            for _ in range(255):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel keeps little for it
                sock.connect(("127.0.0.1", target.dns_port))
                sock.setblocking(False)
                try_send(sock, batch)
                clients.append(sock)

            counts = []

            def answered_what_it_will():  # the count of answers stopped rising
                status, text = target.get("/metrics")
                counts.append(parse_metrics(text)["pico_dns_queries_total"][""] if status == 200 else None)
                return len(counts) > 1 and counts[-1] is not None and counts[-1] == counts[-2]

            wait_for(answered_what_it_will, 30, interval=1, what="the agent done answering",
                     explain=lambda: memory_report(target))
            assert_unharmed(target)
        finally:
            for sock in clients:
                sock.close()
    assert_unharmed(target)
    assert tcp_dns(target.dns_port, DNSRecord.question("demo.service.pico")).rr


def test_http_checks_of_large_pages_read_the_status_never_the_page(target):
    """16 services whose check path serves a 7 MiB page took the agent from 24 to 163 MB, and a
    9 MiB page (a large index on `path: /`) failed a healthy service again and again."""
    pages = Pages([7 * 1024 * 1024] * 15 + [9 * 1024 * 1024])
    names = [f"page{index}" for index in range(len(pages.ports))]
    try:
        for name, port in zip(names, pages.ports):
            target.add_service({"name": name, "port": port,
                                "health": {"type": "http", "path": "/", "interval": 1, "timeout": 1, "retries": 1}})
        wait_for(lambda: all(target.instances(name) for name in names), 30, what="the 16 services healthy")
        time.sleep(4)  # four more rounds of checks, every one of them passing
        assert all(target.instances(name) for name in names)
        went_unhealthy = [event for event in logged(target, "health_changed")
                          if event.get("service") in names and event.get("level") == "warning"]
        assert not went_unhealthy, went_unhealthy
        assert_unharmed(target)
    finally:
        for name in names:
            target.remove_service(name)
        pages.close()


def test_serving_the_status_page_costs_under_a_megabyte(target):
    """The page is one constant string and its data (GET /v1/status) is drawn from what the agent
    holds anyway, with a bounded list of recent events: 200 loads grow the agent by under 1 MB."""
    for path in (b"/", b"/v1/status"):  # the first of each builds what the later ones reuse
        raw_http(target.http_port, b"GET " + path + b" HTTP/1.1\r\n\r\n")
    before = target.rss_kib()
    for _ in range(100):
        assert raw_http(target.http_port, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200 ")
        status = raw_http(target.http_port, b"GET /v1/status HTTP/1.1\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 200 ") and b'"demo"' in status
    assert target.rss_kib() - before < 1024, f"{target.rss_kib() - before} KiB more after 200 loads"
    assert_unharmed(target)


def test_bad_local_files_are_reported_and_nothing_else_changes(target):
    services = target.services_dir
    os.mkfifo(services / "fifo.json")
    (services / "zero.json").symlink_to("/dev/zero")
    with open(services / "huge.json", "wb") as handle:
        handle.truncate(300 * 1024 * 1024)  # sparse
    (services / "nested.json").write_text("[" * 30000 + "]" * 30000)
    (services / "nan.json").write_text('{"name": "nan", "image": "x", "port": 9, "health": {"type": "tcp", "interval": NaN}}')
    (services / "secret.json").write_text(json.dumps({"name": "secret", "image": "x", "port": 0,
                                                      "env": {"PASSWORD": SECRET}, "command": [f"--pw={SECRET}", 1]}))
    (services / "dir.json").mkdir()
    bad = {"fifo", "zero", "huge", "nested", "nan", "secret", "dir"}
    try:
        def all_reported():
            status, body = health(target)
            assert status is not None, f"/v1/health did not answer within {ANSWER_DEADLINE} s: {body}"
            reported = {p.split(":")[0].removeprefix("service file ") for p in body["problems"]}
            return status == 503 and bad <= reported and body
        body = wait_for(all_reported, 20, what="every bad file reported")
        assert SECRET not in json.dumps(body)
        status, _ = assert_unharmed(target)
        assert target.get("/metrics")[0] == 200
    finally:
        for name in bad:
            path = services / f"{name}.json"
            path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    wait_for(lambda: health(target)[0] == 200, 20, what="healthy again once the files are gone")


@pytest.mark.parametrize("content", ['{"restarts": [1, 2]}', '{"restarts": {"demo": "many"}}', "[" * 100000])
def test_a_state_file_of_the_wrong_shape_does_not_stop_it_starting(target, content):
    assert target.stop_agent() == 0
    state = target.root / "state" / "state.json"
    state.write_text(content)
    target.start_agent(open_files=AGENT_OPEN_FILES, memory=target.memory)
    try:
        def reported():
            status, body = health(target)
            return status == 503 and any("counters restart at 0" in p for p in body["problems"])
        wait_for(reported, 20, what="the state file reported")
        assert target.get("/metrics")[0] == 200
        assert container_id(target) == target.demo_container  # the restart left the container alone
    finally:
        for aside in state.parent.glob("state.json.corrupt-*"):
            aside.unlink()


def test_a_refused_serf_token_does_not_leak_connections(target):
    """Each failed authentication used to leave its RPC connection open."""
    import asyncio

    def rpc_connections() -> int:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
        port = f"{target.rpc_port:04X}"
        return sum(1 for line in table if line.split()[2].endswith(":" + port) and line.split()[3] == "01")

    async def refused_logins():
        for _ in range(20):
            client = SerfClient("127.0.0.1", target.rpc_port, "not-the-token")
            with pytest.raises(SerfError):
                await client.connect()

    before = rpc_connections()
    asyncio.run(refused_logins())
    time.sleep(0.2)
    assert rpc_connections() <= before
    os.kill(target.agent.pid, signal.SIGHUP)  # and the agent itself still reconciles on request
    assert_unharmed(target)


def _held(kind: socket.SocketKind, port: int) -> socket.socket:
    """A socket bound as pico-agent.socket binds it (systemd listens on stream sockets)."""
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", port))
    if kind == socket.SOCK_STREAM:
        sock.listen(128)
    return sock


def test_the_ports_systemd_holds_stay_the_agents_while_it_restarts(tmp_path):
    """An unprivileged local user could bind the API port while the agent restarted, and answer in
    its name (the agent then exited on "address in use"). On a node, pico-agent.socket binds the
    API and DNS ports as root and hands them to each start of the agent (socket activation); here
    the test holds them as systemd does. The agent serves on them, and while it is down nobody
    else can bind the port."""
    lab = AgentLab(tmp_path, 1)
    node = lab.nodes[0]
    held = [_held(socket.SOCK_STREAM, node.http_port), _held(socket.SOCK_STREAM, node.dns_port),
            _held(socket.SOCK_DGRAM, node.dns_port)]
    node.write_config()
    try:
        for start in (1, 2):
            node.start_serf(lab.keyring, [])  # a stopping agent makes its Serf leave, and Serf then exits
            node.start_agent(sockets=held)
            wait_for(lambda: node.get("/v1/health")[0] == 200 and node.dns("nothing.service.pico") is not None,
                     20, what=f"start {start}: the API and DNS answer on the sockets handed over",
                     explain=lambda: (node.root / "agent.log").read_text()[-2000:])
            query = DNSRecord.question("nothing.service.pico").pack()
            with socket.create_connection(("127.0.0.1", node.dns_port), timeout=5) as tcp:
                tcp.sendall(len(query).to_bytes(2, "big") + query)
                assert DNSRecord.parse(tcp.recv(65535)[2:]).header.rcode == 3  # NXDOMAIN, over TCP too
            assert node.stop_agent() == 0
            node.serf.wait(15)
            squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError, match="in use"):
                squatter.bind(("127.0.0.1", node.http_port))
            squatter.close()
        log = (node.root / "agent.log").read_text()
        assert "listener_not_configured" not in log and log.count('"agent_stopped"') == 2
    finally:
        lab.stop()
        for sock in held:
            sock.close()
