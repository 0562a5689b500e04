"""pico.cloud.members: the live cluster, from a seed node's agent over SSH, as an inventory."""
import json
import os
import subprocess

import yaml
from tests.integration.lab_access import NODES, REPO, node_exec


def inventory_list(lab_inventory, tmp_path, **options):
    lab = yaml.safe_load(lab_inventory.read_text())["all"]["children"]["pico_nodes"]["vars"]
    source = tmp_path / "live.members.yml"
    source.write_text(yaml.safe_dump({
        "plugin": "pico.cloud.members", "seeds": ["172.28.60.13", "172.28.60.11"], "ssh_user": "root",
        "ssh_private_key_file": lab["ansible_ssh_private_key_file"],
        "ssh_args": lab["ansible_ssh_common_args"].split(),
        "keyed_groups": [{"key": "pico_member.tags.board", "prefix": "board"}], **options}))
    result = _inventory(source)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _plain(value):
    """ansible-core 2.19 lists remote (untrusted) strings as {"__ansible_unsafe": "..."}."""
    if isinstance(value, dict):
        return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, list) else value


def _inventory(source):
    return subprocess.run(["ansible-inventory", "-i", str(source), "--list"], capture_output=True, text=True,
                          cwd=REPO, check=False, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")})


def test_the_live_members_become_hosts_grouped_by_board(lab_inventory, converged, tmp_path):
    listed = inventory_list(lab_inventory, tmp_path)
    assert sorted(listed["pico_nodes"]["hosts"]) == sorted(NODES)
    hostvars = _plain(listed["_meta"]["hostvars"])
    assert hostvars["pizero-1"]["ansible_host"] == "172.28.60.13"  # its LAN address, from its lan tag
    assert hostvars["native-1"]["pico_board"] == "native" and hostvars["pizero-1"]["pico_member"]["status"] == "alive"
    assert sorted(listed["board_pizero"]["hosts"]) == ["pizero-1"]
    assert sorted(listed["board_native"]["hosts"]) == ["native-1", "native-2"]
    assert {vars_["ansible_user"] for vars_ in hostvars.values()} == {"root"}  # the user it reached them as
    # Members filtered by their tags as well as their status.
    emulated = inventory_list(lab_inventory, tmp_path, tags={"board": ["pizero", "pizero2"]})
    assert emulated["pico_nodes"]["hosts"] == ["pizero-1"]


def test_a_member_that_left_is_not_a_host(lab_inventory, converged, tmp_path):
    """The first seed answers; native-2's agent and Serf stop, so it leaves the cluster."""
    node_exec("native-2", "systemctl", "stop", "pico-agent.socket", "pico-agent", "serf")
    try:
        for _ in range(30):
            listed = inventory_list(lab_inventory, tmp_path)
            if "native-2" not in listed["pico_nodes"]["hosts"]:
                break
        assert sorted(listed["pico_nodes"]["hosts"]) == ["native-1", "pizero-1"]
        left = inventory_list(lab_inventory, tmp_path, status=["left"])
        assert left["pico_nodes"]["hosts"] == ["native-2"]
    finally:
        node_exec("native-2", "systemctl", "start", "serf", "pico-agent")


def test_no_seed_answering_is_a_clear_error(lab_inventory, tmp_path):
    source = tmp_path / "dead.members.yml"
    source.write_text(yaml.safe_dump({"plugin": "pico.cloud.members", "seeds": ["127.0.0.1"], "timeout": 3,
                                      "ssh_args": ["-p", "1"]}))
    result = _inventory(source)
    assert "no seed answered with the cluster's members" in result.stderr
    assert "127.0.0.1" in result.stderr
