#!/usr/bin/env python3
"""The agent under floods, and its units' sandbox, printed as JSON.

    .venv/bin/python bench/agent_hardening.py [--floods 1000,2500,5000,10000] [--queries 20000]

Everything is real and on loopback: a `serf agent` and a pico-agent from the sources, with the
unit's LimitNOFILE (16384); a second Serf member that publishes 50 instances of one service (its
catalog served over HTTP, as an agent's is), so SRV answers carry 50 records.
- half-open connections: for each count, that many connections (2/3 idle, 1/3 a partial request
  head) opened as fast as one client can, then held. A separate prober process asks /v1/health
  every 50 ms throughout: the worst answer while the burst is being accepted and while it is held
  (target: within 1 s with 10,000 held), and the agent's RSS peak (its unit allows 64 MB);
- DNS: a burst of 20,000 queries, A and then SRV (50 instances, EDNS 1232), and then SRV for a
  made-up name each (a flood that misses every cache), from one client that keeps 100 in flight
  (dnsperf's way): p50/p99 latency, queries per second, and any lost;
- `systemd-analyze security --offline` of both units as the agent role renders them, and of the
  same units without their sandbox block (what the role installed before).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO

from agentlab import AgentLab, RSSPeak, accept_queue, free_ports, parse_metrics, wait_for  # noqa: E402
from dnslib import DNSRecord, EDNS0  # noqa: E402
from pico_agent.catalog import served_version  # noqa: E402

ROLE = REPO / "collections/ansible_collections/pico/cloud/roles/agent"
UNIT_OPEN_FILES = 16384


# -- a peer with 50 instances ----------------------------------------------------------------------
def catalog_peer(lab: AgentLab, root: Path, instances: int) -> tuple[subprocess.Popen, ThreadingHTTPServer]:
    """A second Serf member whose catalog (served over HTTP like an agent's) holds `instances`
    instances of the service `web`."""
    serf_port, rpc_port, http_port = free_ports(3)
    # As an agent serves them: its node and address in each, and the version (its Serf tag) their hash.
    served = [{"service": "web", "node": "peer", "address": "127.0.0.1", "port": 20000 + i, "id": f"peer/web-{i}",
               "tags": []} for i in range(instances)]
    version = served_version(served)
    catalog = json.dumps({"node": "peer", "version": version, "instances": served}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Length", str(len(catalog)))
            self.end_headers()
            self.wfile.write(catalog)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", http_port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    serf = subprocess.Popen(
        ["serf", "agent", "-node=peer", f"-bind=127.0.0.1:{serf_port}", f"-rpc-addr=127.0.0.1:{rpc_port}",
         f"-keyring-file={lab.keyring}", "-log-level=warn", f"-join=127.0.0.1:{lab.nodes[0].serf_port}",
         "-tag", f"api={http_port}", "-tag", f"cv={version}"],
        stdout=open(root / "peer-serf.log", "ab"), stderr=subprocess.STDOUT)
    return serf, server


# -- half-open connections -------------------------------------------------------------------------
def prober(port: int, stop, results) -> None:
    """Runs in its own process, so the flood's client never delays its requests."""
    while not stop.is_set():
        started = time.time()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.settimeout(5)
                sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: bench\r\n\r\n")
                ok = sock.recv(16).startswith(b"HTTP/1.1 ")
            results.append((started, time.time() - started if ok else None))
        except OSError:
            results.append((started, None))
        time.sleep(0.05)


def half_open_flood(node, count: int) -> dict:
    evicted_before = parse_metrics(node.get("/metrics")[1])["pico_connections_evicted_total"][""]
    manager = multiprocessing.Manager()
    results, stop = manager.list(), manager.Event()
    probe = multiprocessing.Process(target=prober, args=(node.http_port, stop, results))
    probe.start()
    time.sleep(0.3)
    with RSSPeak(node) as rss:
        sockets, burst_start = [], time.time()
        for index in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", node.http_port))
            sockets.append(sock)
            if index % 3 == 1:
                try:
                    sock.send(b"GET /v1/health HTTP/1.1\r\nX-Slow: ")
                except OSError:
                    pass
        opened = time.time()
        deadline = time.time() + 30
        while accept_queue(node.http_port) and time.time() < deadline:
            time.sleep(0.01)
        accepted = time.time()
        time.sleep(3)  # held
        stop.set()
        probe.join()
        evicted = parse_metrics(node.get("/metrics")[1])["pico_connections_evicted_total"][""]
        for sock in sockets:
            sock.close()
        time.sleep(1)
    samples = list(results)
    during = [latency for started, latency in samples if burst_start <= started < accepted]
    held = [latency for started, latency in samples if started >= accepted]
    worst = lambda values: None if not values else (None if None in values else round(max(values), 3))  # noqa: E731
    return {
        "connections": count, "opened_in_s": round(opened - burst_start, 2),
        "accepted_in_s": round(accepted - burst_start, 2),
        "health_worst_while_accepting_s": worst(during), "health_failures_while_accepting": during.count(None),
        "health_worst_while_held_s": worst(held), "health_probes_while_held": len(held),
        "health_failures_while_held": held.count(None),
        "evicted": int(evicted - evicted_before),
        "rss_peak_kib": rss.peak, "agent_alive": node.agent.poll() is None,
    }


# -- DNS burst -------------------------------------------------------------------------------------
def made_up_srv_query(index: int) -> bytearray:
    """An SRV query (EDNS, 1232 bytes) for a service nobody runs, a new name each time: what a flood
    that misses every cache sends. Written by hand: packing each with dnslib would load the client
    more than the agent."""
    name = f"x{index}".encode()
    return bytearray(b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01" + bytes([len(name)]) + name
                     + b"\x07service\x04pico\x00\x00\x21\x00\x01" + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00")


def dns_burst(port: int, name: str | None, qtype: str, queries: int, outstanding: int = 100) -> dict:
    """`queries` queries from one client keeping `outstanding` of them in flight (dnsperf's way of
    loading a server); a query unanswered after 1 s counts as lost. `name` None: a made-up SRV name
    for each query (made_up_srv_query)."""
    template = DNSRecord.question(name or "x.service.pico", qtype)
    if qtype == "SRV":
        template.add_ar(EDNS0(udp_len=1232))
    packed = bytearray(template.pack())
    in_flight: dict[int, float] = {}
    latencies: list[float] = []
    sizes: list[int] = []
    lost = sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        start = time.perf_counter()
        while sent < queries or in_flight:
            now = time.perf_counter()
            while sent < queries and len(in_flight) < outstanding:
                ident = sent % 65536
                if name is None:
                    packed = made_up_srv_query(sent)
                packed[0:2] = ident.to_bytes(2, "big")
                in_flight[ident] = time.perf_counter()
                sock.sendto(packed, ("127.0.0.1", port))
                sent += 1
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                for ident in [i for i, at in in_flight.items() if now - at > 1.0]:
                    del in_flight[ident]
                    lost += 1
                continue
            ident = int.from_bytes(data[:2], "big")
            if ident in in_flight:
                latencies.append(time.perf_counter() - in_flight.pop(ident))
                sizes.append(len(data))
        took = time.perf_counter() - start
    latencies.sort()
    return {
        "queries": queries, "outstanding": outstanding, "answered": len(latencies), "lost": lost,
        "queries_per_s": round(len(latencies) / took),
        "p50_ms": round(statistics.median(latencies) * 1000, 3) if latencies else None,
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 3) if latencies else None,
        "answer_bytes": max(sizes) if sizes else None,
    }


# -- systemd-analyze security ------------------------------------------------------------------------
def render_units(root: Path, sandboxed: bool) -> None:
    """The agent role's unit and Serf's drop-in, rendered with the role's values, in a root for
    `systemd-analyze --root`; Debian's own serf.service beside them."""
    import jinja2
    import yaml

    values = {**yaml.safe_load((ROLE / "defaults/main.yml").read_text()),
              **yaml.safe_load((ROLE / "vars/main.yml").read_text()), "ansible_managed": "Ansible managed"}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"))
    env.filters["comment"] = lambda text: f"#\n# {text}\n#"
    units = root / "etc/systemd/system"
    (units / "serf.service.d").mkdir(parents=True, exist_ok=True)
    (root / "lib/systemd/system").mkdir(parents=True, exist_ok=True)
    shutil.copy("/lib/systemd/system/serf.service", root / "lib/systemd/system/serf.service")
    for template, target in (("pico-agent.service.j2", units / "pico-agent.service"),
                             ("serf-override.conf.j2", units / "serf.service.d/pico.conf")):
        text = env.get_template(template).render(values)
        if not sandboxed:  # the block starts at its comment and runs to the section's end
            text = re.sub(r"# Sandboxed the way.*?(?=\n\[|\Z)", "", text, flags=re.S)
            text = text.replace("ExecStartPre=\n", "")
        target.write_text(text)


def exposure(root: Path) -> dict[str, float]:
    out = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={root}", "--no-pager",
                          "pico-agent.service", "serf.service"], capture_output=True, text=True).stdout
    return {unit: float(score) for unit, score in
            re.findall(r"Overall exposure level for (\S+): ([\d.]+)", out)}


def security_scores() -> dict:
    if not Path("/lib/systemd/system/serf.service").exists() or not shutil.which("systemd-analyze"):
        return {"skipped": "needs systemd-analyze and the serf package (make bootstrap)"}
    scores = {}
    for label, sandboxed in (("before", False), ("after", True)):
        with tempfile.TemporaryDirectory() as root:
            render_units(Path(root), sandboxed)
            scores[label] = exposure(Path(root))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--floods", default="1000,2500,5000,10000")
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--instances", type=int, default=50)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    report: dict = {"unit_limits": {"LimitNOFILE": UNIT_OPEN_FILES, "MemoryMax_kib": 64 * 1024}}
    with tempfile.TemporaryDirectory(prefix="pico-bench-hardening-") as tmp:
        root = Path(tmp)
        lab = AgentLab(root, 1, prefix="hard")
        node = lab.nodes[0]
        node.write_config()
        node.start_serf(lab.keyring, [])
        node.start_agent(open_files=UNIT_OPEN_FILES)
        peer_serf, peer_http = catalog_peer(lab, root, args.instances)
        try:
            wait_for(lambda: len(node.instances("web")) == args.instances, 30, what="the peer's instances")
            report["rss_idle_kib"] = node.rss_kib()
            report["half_open"] = [half_open_flood(node, int(n)) for n in args.floods.split(",")]
            held = [f for f in report["half_open"] if f["agent_alive"] and f["health_failures_while_held"] == 0
                    and f["health_worst_while_held_s"] is not None and f["health_worst_while_held_s"] < 1.0]
            report["half_open_survived_with_health_within_1s"] = max((f["connections"] for f in held), default=0)
            report["rss_peak_kib"] = max(f["rss_peak_kib"] for f in report["half_open"])
            report["dns_burst"] = {
                "A": dns_burst(node.dns_port, "web.service.pico", "A", args.queries),
                f"SRV_{args.instances}_instances": dns_burst(node.dns_port, "web.service.pico", "SRV", args.queries),
                "SRV_made_up_names": dns_burst(node.dns_port, None, "SRV", args.queries),
            }
            report["agent_alive_at_end"] = node.agent.poll() is None
        finally:
            peer_serf.terminate()
            peer_serf.wait(10)
            peer_http.shutdown()
            lab.stop()
    report["systemd_analyze_security"] = security_scores()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
