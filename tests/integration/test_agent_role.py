"""The agent role on the lab: one Serf cluster, services placed through the role and found by name
on other nodes, and bad input refused before anything changes."""
import json
import subprocess

import pytest
from tests.integration.lab_access import LAB_NAME, file_digest, node_exec, playbook, wait_for
from lab.inventory import DEMO_SERVICE
from tests.playbook_run import expect_refused, expect_success, expect_unchanged

NATIVE = ("native-1", "native-2")  # the lifecycle runs skip the emulated node: each task costs seconds there
WEB = {"name": "web", "image": "pico/demo:1.0.0", "port": 8190,
       "health": {"type": "http", "path": "/healthz", "interval": 2, "start_period": 30}}


def agent_get(node, path):
    script = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8500{path}', timeout=10).read().decode())"
    return json.loads(node_exec(node, "python3", "-c", script))


def resolve(node, name):
    script = ("from dnslib import DNSRecord; "
              f"r = DNSRecord.parse(DNSRecord.question('{name}').send('127.0.0.1', 8600, timeout=5)); "
              "print(' '.join(sorted(str(x.rdata) for x in r.rr)))")
    return node_exec(node, "python3", "-c", script).split()


def agent_run(inventory, tmp_path, services, *args):
    """Run the agent role on the native nodes with `services` ({node: [spec, ...]}) beside the
    lab's own demo service, which every node keeps, as the inventory gives it."""
    extra = tmp_path / "services.json"
    extra.write_text(json.dumps({"it_services": {node: [DEMO_SERVICE, *services.get(node, [])]
                                                 for node in NATIVE}}))
    return playbook(inventory, "site.yml", "--tags", "agent", "--limit", ",".join(NATIVE), "-e", f"@{extra}",
                    "-e", "pico_agent_services={{ it_services[inventory_hostname] | default([]) }}", *args)


def members_seen_by(node):
    """The membership a node's agent reports, or None while its API does not answer yet."""
    try:
        return {m["name"]: m["status"] for m in agent_get(node, "/v1/members")["members"]}
    except subprocess.CalledProcessError:
        return None


def test_every_node_runs_serf_and_the_agent_in_one_cluster(converged):
    everyone = {"native-1": "alive", "native-2": "alive", "pizero-1": "alive"}
    for node in ("native-1", "native-2", "pizero-1"):
        assert node_exec(node, "systemctl", "is-active", "serf", "pico-agent").split() == ["active", "active"]
        # The role has just started the agent: on an emulated board its Python takes a few seconds
        # before it listens, more on a busy machine.
        wait_for(lambda: members_seen_by(node) == everyone, 60, f"all three alive, seen by {node}'s agent")


def test_a_service_placed_by_the_role_is_found_by_name_and_removed_with_it(lab_inventory, converged, tmp_path):
    expect_success(agent_run(lab_inventory, tmp_path, {"native-1": [WEB]}), NATIVE)
    owner = agent_get("native-2", "/v1/members")["members"]
    address = next(m["address"] for m in owner if m["name"] == "native-1")
    wait_for(lambda: resolve("native-2", "web.service.pico") == [address], 90, "web resolvable on native-2")
    script = f"import urllib.request, json; print(json.load(urllib.request.urlopen('http://{address}:8190/version'))['version'])"
    assert node_exec("native-2", "python3", "-c", script).strip() == "1.0.0"

    expect_unchanged(agent_run(lab_inventory, tmp_path, {"native-1": [WEB]}), NATIVE)

    expect_success(agent_run(lab_inventory, tmp_path, {}), NATIVE)
    assert node_exec("native-1", "ls", "/etc/pico-agent/services").split() == ["demo.json"]
    wait_for(lambda: "pico-web-0" not in node_exec("native-1", "podman", "ps", "-a", "--format", "{{.Names}}"),
             60, "container removed")
    wait_for(lambda: resolve("native-2", "web.service.pico") == [], 30, "web gone from DNS")
    assert "pico-demo-0" in node_exec("native-1", "podman", "ps", "--format", "{{.Names}}")  # the other one stays


def test_an_invalid_service_is_refused_on_the_node_and_the_running_one_kept(lab_inventory, converged, tmp_path):
    expect_success(agent_run(lab_inventory, tmp_path, {"native-1": [WEB]}), NATIVE)
    wait_for(lambda: resolve("native-1", "web.service.pico"), 90, "web healthy")
    before = file_digest("native-1", "/etc/pico-agent/services/web.json")
    bad = agent_run(lab_inventory, tmp_path, {"native-1": [{**WEB, "replicas": 99}]})
    expect_refused(bad, NATIVE, "replicas = 99: 0-16 on one node")
    assert file_digest("native-1", "/etc/pico-agent/services/web.json") == before
    assert resolve("native-1", "web.service.pico")  # still running and healthy
    expect_success(agent_run(lab_inventory, tmp_path, {}), NATIVE)


@pytest.mark.parametrize(("value", "message"), [
    ("", "pico_agent_gossip_key must be base64 of 16, 24 or 32 random bytes"),
    ("not-base64-at-all!", "pico_agent_gossip_key must be base64 of 16, 24 or 32 random bytes"),
], ids=["empty", "malformed"])
def test_a_bad_gossip_key_changes_nothing_and_is_not_shown(lab_inventory, converged, tmp_path, value, message):
    before = file_digest("native-1", "/var/lib/serf/keyring.json")
    result = agent_run(lab_inventory, tmp_path, {}, "-e", f"pico_agent_gossip_key={value}")
    expect_refused(result, NATIVE, message)
    if value:
        assert value not in result.stdout + result.stderr
    assert file_digest("native-1", "/var/lib/serf/keyring.json") == before


def test_a_service_name_that_is_no_dns_label_is_refused(lab_inventory, converged, tmp_path):
    result = agent_run(lab_inventory, tmp_path, {"native-1": [{**WEB, "name": "Bad_Name"}]})
    expect_refused(result, NATIVE, "needs a unique name made of lower-case letters, digits and '-'")


def test_the_labs_demo_runs_on_every_node_the_emulated_pi_zero_included(converged):
    """The lab inventory's workload: a demo container on each node, found by DNS from any of them."""
    members = {m["name"]: m["address"] for m in agent_get("native-1", "/v1/members")["members"]}
    assert sorted(members) == ["native-1", "native-2", "pizero-1"]
    wait_for(lambda: resolve("native-1", "demo.service.pico") == sorted(members.values()), 120,
             "every node's demo instance in DNS")
    # Inside the Pi Zero's container, ARMv6 (the board's CPU, through the lab's native crun).
    machine = node_exec("pizero-1", "podman", "exec", "pico-demo-0", "python3", "-c",
                        "import platform; print(platform.machine())")
    assert machine.strip() == "armv6l"
    script = ("import json, urllib.request; "
              f"print(json.load(urllib.request.urlopen('http://{members['pizero-1']}:8080/version', timeout=10))['version'])")
    assert node_exec("native-2", "python3", "-c", script).strip() == "1.0.0"


def test_while_the_agent_is_down_its_ports_stay_its_own(converged):
    """pico-agent.socket: systemd binds the API and DNS ports as root and holds them while the agent
    is stopped, so an unprivileged user cannot take the API port and answer in the agent's name;
    the next start serves on the same sockets. Serf runs as a user of its own, not root."""
    node = "native-2"
    node_exec(node, "systemctl", "stop", "pico-agent.service")
    try:
        assert node_exec(node, "systemctl", "is-active", "pico-agent.socket").strip() == "active"
        squat = ("import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                 "s.bind(('127.0.0.1', 8500)); s.listen(); print('bound')")
        tried = subprocess.run(["docker", "exec", "--user", "nobody", f"{LAB_NAME}-lab-{node}", "python3", "-c", squat],
                               capture_output=True, text=True)
        assert tried.returncode != 0 and "Address already in use" in tried.stderr, tried.stdout + tried.stderr
    finally:
        node_exec(node, "systemctl", "start", "pico-agent.service")
    wait_for(lambda: members_seen_by(node), 60, "the agent answers again on its sockets")
    serf_pid = node_exec(node, "systemctl", "show", "serf", "-p", "MainPID", "--value").strip()
    assert node_exec(node, "ps", "-o", "user=", "-p", serf_pid).strip() == "serf"
