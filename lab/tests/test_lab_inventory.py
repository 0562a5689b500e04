"""The generated inventory is valid for Ansible and uses the real-Pi group layout."""
import json
import subprocess
import sys

import yaml

from lab import model
from lab.inventory import render_inventory


def test_inventory_groups_nodes_by_board(tmp_path):
    spec = model.plan("pico", "pizero=2,pizero2=1", model.DEFAULT_SUBNET, 2220)
    text = render_inventory(spec, "/state/it's key", ["-o", "UserKnownHostsFile=/state/known hosts"])
    data = yaml.safe_load(text)
    nodes = data["all"]["children"]["pico_nodes"]
    assert nodes["vars"]["ansible_ssh_private_key_file"] == "/state/it's key"
    assert nodes["vars"]["ansible_ssh_common_args"] == "-o UserKnownHostsFile=/state/known hosts"
    assert nodes["children"]["pizero"]["vars"]["pico_board"] == "pizero"
    assert nodes["children"]["pizero"]["hosts"]["pizero-2"]["ansible_host"] == "172.28.10.12"
    assert list(nodes["children"]["pizero2"]["hosts"]) == ["pizero2-1"]

    # Ansible itself reads it the same way
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    out = subprocess.run([sys.executable, "-m", "ansible", "inventory", "-i", str(path), "--list"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:  # older ansible has no `python -m ansible inventory`
        out = subprocess.run(["ansible-inventory", "-i", str(path), "--list"], capture_output=True, text=True, check=True)
    listed = json.loads(out.stdout)
    assert sorted(listed["pico_nodes"]["children"]) == ["pizero", "pizero2"]
    assert listed["_meta"]["hostvars"]["pizero2-1"]["pico_board"] == "pizero2"


def test_each_board_group_gets_its_architectures_demo_images():
    from pathlib import Path

    from lab.workloads import Workload

    spec = model.plan("pico", "pizero=1,native=1", model.DEFAULT_SUBNET, 2220)
    demo = {
        "pizero": [Workload("pico/demo:1.0.0", "1.0.0", "armel", Path("/cache/pico-demo_1.0.0_armel.tar"), "sha256:" + "a" * 64)],
        "native": [Workload("pico/demo:1.0.0", "1.0.0", "amd64", Path("/cache/pico-demo_1.0.0_amd64.tar"), "sha256:" + "b" * 64)],
    }
    nodes = yaml.safe_load(render_inventory(spec, "/k", [], demo))["all"]["children"]["pico_nodes"]
    assert nodes["children"]["pizero"]["vars"]["pico_container_runtime_images"] == [
        {"name": "pico/demo:1.0.0", "archive": "/cache/pico-demo_1.0.0_armel.tar", "digest": "sha256:" + "a" * 64}]
    assert nodes["children"]["native"]["vars"]["pico_container_runtime_images"][0]["archive"].endswith("amd64.tar")
    assert nodes["vars"]["pico_container_runtime_docker_options"] == {"bridge": "none", "iptables": False}


def test_the_gossip_key_is_looked_up_from_its_file_not_written_into_the_inventory(tmp_path):
    key = tmp_path / "lab's gossip.key"
    key.write_text("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMw==\n")
    spec = model.plan("pico", "pizero=1", model.DEFAULT_SUBNET, 2220)
    text = render_inventory(spec, "/k", [], gossip_key_path=str(key))
    assert "c2VjcmV0" not in text
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    out = subprocess.run(["ansible", "-i", str(path), "pizero-1", "-c", "local", "-m", "ansible.builtin.debug",
                          "-a", "msg={{ pico_agent_gossip_key }}"], capture_output=True, text=True, check=True)
    assert "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMw==" in out.stdout


def test_a_lab_with_workloads_runs_the_demo_service_on_every_node():
    from pathlib import Path

    from lab.inventory import DEMO_SERVICE
    from lab.workloads import Workload

    spec = model.plan("pico", "pizero=1", model.DEFAULT_SUBNET, 2220)
    demo = {"pizero": [Workload("pico/demo:1.0.0", "1.0.0", "armel", Path("/c/a.tar"), "sha256:" + "a" * 64)]}
    nodes = yaml.safe_load(render_inventory(spec, "/k", [], demo))["all"]["children"]["pico_nodes"]
    assert nodes["vars"]["pico_agent_services"] == [DEMO_SERVICE]
    assert DEMO_SERVICE["image"] == "pico/demo:1.0.0" and DEMO_SERVICE["health"]["path"] == "/healthz"
    bare = yaml.safe_load(render_inventory(spec, "/k", []))["all"]["children"]["pico_nodes"]
    assert "pico_agent_services" not in bare["vars"]  # no images, nothing to run


def test_every_board_names_its_container_as_its_power_switch():
    import yaml
    spec = model.plan("pico", "pizero=1,native=1", model.DEFAULT_SUBNET, 2220)
    hosts = {}
    for group in yaml.safe_load(render_inventory(spec, "/k", []))["all"]["children"]["pico_nodes"]["children"].values():
        hosts.update(group["hosts"])
    assert {name: host["pico_power_switch"] for name, host in hosts.items()} == {
        node.name: {"driver": "lab", "container": spec.container(node), "become": False} for node in spec.nodes}
