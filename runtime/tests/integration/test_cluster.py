"""Five real Serf agents and five pico-agents on loopback: membership, discovery, failure, security."""

import json
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager

import pytest
from agentlab import AgentLab, PortListener, free_ports, parse_metrics, raw_http, wait_for
from dnslib import RCODE

NODES = 5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    lab = AgentLab(tmp_path_factory.mktemp("cluster"), NODES)
    lab.start()
    try:
        wait_for(lambda: lab.all_see(NODES), 30, what=f"every agent seeing {NODES} alive members")
        yield lab
    finally:
        lab.stop()


def tcp_service(name, port, **extra):
    return {"name": name, "port": port, "health": {"type": "tcp", "interval": 0.5, "timeout": 0.4, "retries": 1},
            **extra}


@contextmanager
def published(node, name, **extra):
    """A port that `node` runs and its agent checks and publishes as `name`, while in the block."""
    listener = PortListener(free_ports(1)[0])
    listener.open()
    node.add_service(tcp_service(name, listener.port, **extra))
    try:
        yield listener
    finally:
        listener.close()
        node.remove_service(name)


def test_every_agent_sees_every_member_alive(cluster):
    for node in cluster.nodes:
        assert node.members() == {n.name: "alive" for n in cluster.nodes}


def test_a_healthy_service_is_found_from_every_node_by_dns_and_http(cluster):
    owner = cluster.nodes[1]
    with published(owner, "web", tags=["v1"]) as listener:
        for node in cluster.nodes:
            wait_for(lambda: node.resolve("web.service.pico") == ["127.0.0.1"], 15, what=f"{node.name} resolving web")
            instances = node.instances("web")
            assert [(i["node"], i["port"], i["tags"]) for i in instances] == [(owner.name, listener.port, ["v1"])]
        srv = cluster.nodes[3].dns("_web._tcp.service.pico", "SRV")
        assert [(rr.rdata.port, str(rr.rdata.target)) for rr in srv.rr] == [(listener.port, f"{owner.name}.node.pico.")]
        assert [str(rr.rdata) for rr in srv.ar] == ["127.0.0.1"]
        status, services = cluster.nodes[4].get("/v1/services")
        assert status == 200 and services["services"]["web"] == 1

        # Only healthy instances: when the port closes, the service leaves discovery everywhere.
        listener.close()
        for node in cluster.nodes:
            wait_for(lambda: node.dns("web.service.pico").header.rcode == RCODE.NXDOMAIN, 15,
                     what=f"{node.name} dropping unhealthy web")
            assert node.instances("web") == []


def test_twenty_services_on_one_node_fit_serf_tags(cluster):
    owner = cluster.nodes[2]
    ports = free_ports(20)
    listeners = [PortListener(p) for p in ports]
    names = [f"service-with-a-rather-long-name-number-{i:02d}" for i in range(20)]
    try:
        for listener, name in zip(listeners, names):
            listener.open()
            owner.add_service(tcp_service(name, listener.port))
        for node in cluster.nodes:
            wait_for(lambda: all(node.resolve(f"{n}.service.pico") for n in names), 20,
                     what=f"{node.name} resolving all 20 services")
        tags = {m["name"]: m["tags"] for m in cluster.nodes[0].get("/v1/members")[1]["members"]}[owner.name]
        assert len(json.dumps(tags)) < 512 // 4, tags  # the list itself travels over HTTP, not in tags
    finally:
        for listener, name in zip(listeners, names):
            listener.close()
            owner.remove_service(name)


def test_a_killed_node_leaves_discovery_and_comes_back(cluster):
    victim, watcher = cluster.nodes[4], cluster.nodes[0]
    try:
        with published(victim, "cache"):
            wait_for(lambda: watcher.resolve("cache.service.pico"), 15, what="cache resolvable")
            killed_at = time.time()
            victim.kill()
            wait_for(lambda: watcher.members().get(victim.name) == "failed", 30, what="Serf declaring the node failed")
            # Since when it is failed, as the watcher saw it happen (status.yml shows it).
            since = {m["name"]: m["since"] for m in watcher.get("/v1/members")[1]["members"]}[victim.name]
            assert killed_at <= since + 1 <= time.time() + 1, (killed_at, since)
            for node in cluster.nodes[:4]:  # each learns of the failure by gossip, a moment apart
                wait_for(lambda: node.members().get(victim.name) == "failed", 10, what=f"{node.name} seeing the failure")
                assert node.instances("cache") == []
                assert node.dns("cache.service.pico").header.rcode == RCODE.NXDOMAIN
                assert node.dns(f"{victim.name}.node.pico").header.rcode == RCODE.NXDOMAIN

            cluster.start([victim])
            for node in cluster.nodes:
                wait_for(lambda: node.resolve("cache.service.pico") == ["127.0.0.1"], 30,
                         what=f"{node.name} seeing the returned node's service")
            assert watcher.members()[victim.name] == "alive"
    finally:
        if victim.agent.poll() is not None:  # leave five nodes for the next test
            cluster.start([victim])
            wait_for(lambda: cluster.all_see(NODES), 30, what="node back")


def test_sigterm_leaves_the_cluster_and_exits_zero(cluster):
    node = cluster.nodes[3]
    try:
        with published(node, "queue"):
            wait_for(lambda: cluster.nodes[0].resolve("queue.service.pico"), 15, what="queue resolvable")
            assert node.stop_agent() == 0
            # A graceful leave, not a failure: peers see "left" and drop the instances at once.
            wait_for(lambda: cluster.nodes[0].members().get(node.name) == "left", 15, what="node left")
            assert cluster.nodes[0].instances("queue") == []
            assert node.get("/v1/health") == (None, None)  # no longer serving
            assert '"event":"serf_left"' in (node.root / "agent.log").read_text()
    finally:
        node.kill()
        cluster.start([node])
        wait_for(lambda: cluster.all_see(NODES), 30, what="node back")


def test_gossip_from_a_node_without_the_key_is_refused(cluster, tmp_path):
    keyring = tmp_path / "other.json"
    keyring.write_text(json.dumps(["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]))
    bind, rpc = free_ports(2)
    result = subprocess.run(
        ["serf", "agent", "-node=intruder", f"-bind=127.0.0.1:{bind}", f"-rpc-addr=127.0.0.1:{rpc}",
         f"-keyring-file={keyring}", f"-join=127.0.0.1:{cluster.nodes[0].serf_port}"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "intruder" not in cluster.nodes[0].members()


def test_state_changes_need_the_token(cluster):
    node = cluster.nodes[0]
    assert node.get("/v1/reconcile", method="POST", body=b"")[0] == 401
    assert node.get("/v1/reconcile", token="wrong", method="POST", body=b"")[0] == 403
    assert node.get("/v1/reconcile", token=node.token, method="POST", body=b"") == (202, {"reconcile": "started"})
    assert node.get("/v1/services/nothing-here/restart", token=node.token, method="POST", body=b"")[0] == 404
    assert node.get("/v1/services", method="POST", body=b"")[0] == 405
    assert node.get("/v1/reconcile", token=node.token, method="POST", body=b"{}")[0] == 413  # no route takes a body
    assert (node.root / "state" / "api-token").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("payload, status", [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET /v1/services/Bad_Name HTTP/1.1\r\n\r\n", b"400"),
    (b"GET /v1/services/" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", b"400"),
    (b"GET /nope HTTP/1.1\r\n\r\n", b"404"),
    (b"POST /v1/reconcile HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", b"413"),
    (b"POST /v1/reconcile HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
    (b"GET /v1/services HTTP/1.1\r\nX: " + b"y" * 20000 + b"\r\n\r\n", b"431"),
    (b"GET /v1/services HTTP/1.1\r\n\xff\xfe\r\n\r\n", b"400"),
])
def test_bad_requests_get_4xx_and_the_agent_keeps_serving(cluster, payload, status):
    node = cluster.nodes[0]
    assert raw_http(node.http_port, payload).split(b" ")[1] == status
    assert node.get("/v1/health")[0] in (200, 503)


def test_dns_answers_only_its_domain_and_survives_garbage(cluster):
    node = cluster.nodes[0]
    assert node.dns("example.com").header.rcode == RCODE.REFUSED
    assert node.dns("nothing.service.pico").header.rcode == RCODE.NXDOMAIN
    assert node.resolve(f"{cluster.nodes[1].name}.node.pico") == ["127.0.0.1"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x00\x01garbage", ("127.0.0.1", node.dns_port))
    reply = node.dns("nothing.service.pico")
    assert reply is not None and reply.header.rcode == RCODE.NXDOMAIN


def test_api_and_dns_listen_on_the_configured_addresses_only(cluster):
    node = cluster.nodes[0]
    listening = subprocess.run(["ss", "-Hlntu"], capture_output=True, text=True, check=True).stdout
    mine = [line.split()[4] for line in listening.splitlines()
            if line.split()[4].endswith((f":{node.http_port}", f":{node.dns_port}"))]
    # DNS on UDP and TCP (for truncated answers), the API on TCP.
    assert sorted(mine) == sorted([f"127.0.0.1:{node.http_port}", f"127.0.0.1:{node.dns_port}", f"127.0.0.1:{node.dns_port}"])


def test_metrics_count_members_and_services(cluster):
    status, text = cluster.nodes[0].get("/metrics")
    assert status == 200
    assert f'pico_members{{status="alive"}} {NODES}' in text
    assert "pico_serf_connected 1" in text
    assert "pico_reconcile_duration_seconds_count" in text


def test_every_metric_family_reports_what_the_node_sees(cluster):
    """Each family /metrics serves, against a state the test sets up (the Pi-only temperature and
    throttling families are tested against fake sysfs files in the unit tests)."""
    node = cluster.nodes[0]

    def metrics():
        status, text = node.get("/metrics")
        assert status == 200
        return parse_metrics(text)

    broken = node.services_dir / "broken.json"
    with published(node, "metered"):
        wait_for(lambda: node.resolve("metered.service.pico") == ["127.0.0.1"], 15, what="metered resolvable")
        broken.write_text("{not json")
        try:
            wait_for(lambda: metrics()["pico_service_files_invalid"] == {"": 1}, 15, what="the invalid file counted")
            before = metrics()["pico_dns_queries_total"][""]
            for _ in range(3):
                node.dns("metered.service.pico")
            m = metrics()
        finally:
            broken.unlink()
    assert m["pico_dns_queries_total"] == {"": before + 3}
    assert m["pico_members"] == {'{status="alive"}': NODES, '{status="leaving"}': 0, '{status="left"}': 0,
                                 '{status="failed"}': 0}
    assert m["pico_serf_connected"] == {"": 1}
    assert m["pico_services"] == {"": 1}
    assert m["pico_service_instances"] == {'{service="metered"}': 1}
    assert m["pico_local_instances"] == {'{service="metered",health="healthy"}': 1}
    assert m["pico_restarts_total"] == {}  # no container service here: see test_supervisor for counts
    assert m["pico_reconcile_duration_seconds"]["_count"] > 0
    assert 0 <= m["pico_reconcile_last_duration_seconds"][""] < 1
    assert m["pico_peer_fetch_failures_total"] == {"": 0}
    assert "pico_node_temperature_celsius" not in m  # no Pi firmware on this machine


def test_any_agent_lists_every_members_metrics_for_prometheus(cluster):
    """What Prometheus' http_sd_configs reads: every node's /metrics address, from any one agent,
    and each of those addresses really serves metrics."""
    expected = sorted(f"127.0.0.1:{node.http_port}" for node in cluster.nodes)
    for node in cluster.nodes:
        # Each member's API port reaches the others with its Serf tags, within a sync or two.
        targets = wait_for(lambda: (lambda reply: reply[0] == 200 and len(reply[1]) == len(expected) and reply[1])(
            node.get("/v1/prometheus/targets")), 30, what=f"{node.name} lists every member")
        assert sorted(t["targets"][0] for t in targets) == expected
        assert {t["labels"]["node"] for t in targets} == {n.name for n in cluster.nodes}
    for target in expected:
        with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as response:
            assert b"pico_build_info{" in response.read()
