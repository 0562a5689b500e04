"""The lab as a user drives it: real containers, real SSH, real ansible-playbook runs."""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.lab_access import (LAB_MIX, LAB_NAME, LAB_PORT_BASE, LAB_SUBNET, NATIVE, NODES, lab_cli, playbook,
                                          ssh_connections_to)
from tests.playbook_run import expect_refused, expect_unchanged
from lab import cluster, images, model
from lab.shell import LabError


def test_site_converges_over_ssh_and_second_run_changes_nothing(lab_inventory, converged):
    # The fixture checked the first run: exit 0, every node in the recap, each changed, none failed.
    again = playbook(lab_inventory, "site.yml", "-v")
    expect_unchanged(again, NODES)
    # The images are on the boards already: no 2x MB archive went anywhere (container_runtime).
    assert "transferred_bytes: 0" in again.stdout and "transferred_bytes: 2" not in again.stdout


def test_emulated_node_is_an_armv6_pi_zero_over_ssh(lab_inventory):
    result = subprocess.run(["ansible", "-i", str(lab_inventory), "pizero", "-m", "ansible.builtin.setup",
                             "-a", "filter=ansible_architecture"], capture_output=True, text=True, check=False,
                            env={**os.environ, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"})
    assert result.returncode == 0, result.stdout
    assert '"ansible_architecture": "armv6l"' in result.stdout


def test_lab_nodes_are_systemd_containers_with_their_own_host_keys(lab_inventory):
    status = lab_cli("status", "--name", LAB_NAME, "--inventory", str(lab_inventory))
    assert status.returncode == 0
    assert status.stdout.count("running") == 3
    assert "armv6l" in status.stdout
    keys = {
        subprocess.run(["docker", "exec", f"{LAB_NAME}-lab-{node}", "cat", "/etc/ssh/ssh_host_ed25519_key.pub"],
                       capture_output=True, text=True, check=True).stdout.split()[1]
        for node in ("native-1", "native-2")
    }
    assert len(keys) == 2


def test_ready_waits_for_the_services_and_says_how_to_look_at_them(lab_inventory, converged):
    ready = lab_cli("ready", "--name", LAB_NAME, "--inventory", str(lab_inventory), "--timeout", "180")
    assert ready.returncode == 0, ready.stderr
    rows = [line.split() for line in ready.stdout.splitlines() if line.startswith(("native-", "pizero-"))]
    assert [(row[0], row[-1]) for row in rows] == [
        ("native-1", "demo:healthy"), ("native-2", "demo:healthy"), ("pizero-1", "demo:healthy")]
    assert "dig @127.0.0.1 -p 8600 demo.service.pico" in ready.stdout
    assert "curl -s http://10.99." in ready.stdout


def test_up_again_with_the_same_shape_is_a_no_op(lab_inventory):
    again = lab_cli("up", "--name", LAB_NAME, "--mix", LAB_MIX, "--subnet", LAB_SUBNET,
                    "--ssh-port-base", str(LAB_PORT_BASE), "--inventory", str(lab_inventory))
    assert again.returncode == 0, again.stderr
    assert "already up with this shape; nothing to do" in again.stdout


def test_up_restarts_stopped_nodes_of_the_same_lab(lab_inventory):
    subprocess.run(["docker", "stop", "-t", "1", f"{LAB_NAME}-lab-native-2"], capture_output=True, check=True)
    again = lab_cli("up", "--name", LAB_NAME, "--mix", LAB_MIX, "--subnet", LAB_SUBNET,
                    "--ssh-port-base", str(LAB_PORT_BASE), "--inventory", str(lab_inventory))
    assert again.returncode == 0, again.stderr
    assert "restarted 1 stopped nodes" in again.stdout
    ping = subprocess.run(["ansible", "-i", str(lab_inventory), "native-2", "-m", "ansible.builtin.ping"],
                          capture_output=True, text=True, check=False)
    assert ping.returncode == 0, ping.stdout


def test_running_lab_with_another_shape_is_refused(lab_inventory):
    other = lab_cli("up", "--name", LAB_NAME, "--mix", "native=3", "--subnet", LAB_SUBNET,
                    "--ssh-port-base", str(LAB_PORT_BASE), "--inventory", str(lab_inventory))
    assert other.returncode == 2
    assert other.stderr.strip().splitlines() == [
        f"lab: error: lab '{LAB_NAME}' is already running with a different shape (3 containers): "
        "run `make lab-down` first, or give this one another --name and --subnet"]


def test_subnet_in_use_is_refused_and_nothing_is_created(lab_inventory, tmp_path):
    result = lab_cli("up", "--name", "pico-it2", "--mix", "native=1", "--subnet", "172.28.60.128/25",
                     "--ssh-port-base", "2500", "--inventory", str(tmp_path / "hosts.yml"))
    assert result.returncode == 2
    assert f"overlaps docker network '{LAB_NAME}-lab'" in result.stderr
    assert _lab_resources("pico-it2") == ("", "")


def test_port_in_use_is_refused_and_nothing_is_created(lab_inventory, tmp_path):
    result = lab_cli("up", "--name", "pico-it2", "--mix", "native=1", "--subnet", "172.28.61.0/24",
                     "--ssh-port-base", str(LAB_PORT_BASE), "--inventory", str(tmp_path / "hosts.yml"))
    assert result.returncode == 2
    assert f"port 127.0.0.1:{LAB_PORT_BASE + 1} (SSH of native-1) is in use" in result.stderr
    assert _lab_resources("pico-it2") == ("", "")


def _lab_resources(name):
    containers = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=pico.lab={name}"],
                                capture_output=True, text=True, check=True).stdout.strip()
    networks = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"name={name}-lab"],
                              capture_output=True, text=True, check=True).stdout.strip()
    return containers, networks


def test_failed_image_build_leaves_no_image_and_no_rootfs(tmp_path, monkeypatch):
    """debootstrap against a mirror that refuses connections fails; nothing is tagged or left in /var/tmp."""
    monkeypatch.setenv("PICO_LAB_MIRROR", "http://127.0.0.1:9/debian")
    kind = model.KINDS["native"]
    ref = "pico-lab/native:failed-build-test"
    before = set(_var_tmp_builds())
    with pytest.raises(LabError, match="debootstrap of the native root file system failed"):
        images._build(kind, ref, tmp_path)
    assert not images.image_exists(ref)
    assert set(_var_tmp_builds()) == before


def _var_tmp_builds():
    return [p.name for p in Path("/var/tmp").glob("pico-lab-*")]


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"pico_base_supported_architectures": ["armv6l"]}, "is x86_64; supported are armv6l"),
        ({"pico_base_timezone": "Mars/Olympus_Mons"}, "\"Mars/Olympus_Mons\" does not exist in /usr/share/zoneinfo"),
        ({"pico_base_hostname": "Bad_Name"}, "is not a valid hostname"),
        ({"pico_base_supported_distributions": {"Debian": ["13"]}}, "which pico.cloud does not support"),
    ],
)
def test_bad_input_fails_in_preflight_before_any_change(lab_inventory, extra_vars, message):
    result = playbook(lab_inventory, "site.yml", "--limit", "native", "-e", json.dumps(extra_vars))
    expect_refused(result, NATIVE, message)
    assert "TASK [pico.cloud.base : Install missing packages]" not in result.stdout


def test_node_without_python_gets_a_clear_message(lab_inventory):
    container = f"{LAB_NAME}-lab-native-2"
    subprocess.run(["docker", "exec", container, "mv", "/usr/bin/python3", "/usr/bin/python3.hidden"], check=True)
    try:
        result = playbook(lab_inventory, "site.yml", "--limit", "native-2")
    finally:
        subprocess.run(["docker", "exec", container, "mv", "/usr/bin/python3.hidden", "/usr/bin/python3"], check=True)
    expect_refused(result, ["native-2"], "native-2 has no python3, which Ansible needs. Install it first")


# native-2 freezes after the run reached it: the next task loses it, the one after does not try it
# again, and once it is back an explicit reset (as the reboot action does between its tries)
# connects to it again.
LOST_AND_RESET = """
- hosts: native-2
  gather_facts: false
  tasks:
    - name: Reach it
      ansible.builtin.ping:
    - name: Freeze it
      ansible.builtin.command: docker pause {container}
      delegate_to: localhost
      changed_when: false
    - name: Lose it
      ansible.builtin.command: "true"
      changed_when: false
      ignore_unreachable: true
    - name: Not tried again
      ansible.builtin.command: "true"
      changed_when: false
      ignore_unreachable: true
    - name: Back
      ansible.builtin.command: docker unpause {container}
      delegate_to: localhost
      changed_when: false
    - name: Reset the connection
      ansible.builtin.meta: reset_connection
    - name: Reached again after the reset
      ansible.builtin.command: "true"
      changed_when: false
"""


def test_a_node_lost_mid_run_is_not_connected_again_until_a_reset(lab_inventory, tmp_path):
    """README: a board that freezes mid-run is given up after its keepalives and is never retried
    task by task, each try another timeout (the project's strategy; Mitogen alone connected again
    at the next call); an explicit reset connects again."""
    container = f"{LAB_NAME}-lab-native-2"
    play = tmp_path / "lost.yml"
    play.write_text(LOST_AND_RESET.format(container=container))
    settings = ("-e", "mitogen_ssh_keepalive_interval=2", "-e", "mitogen_ssh_keepalive_count=3")
    try:
        with ssh_connections_to(lab_inventory, "native-2") as connections:
            result = playbook(lab_inventory, str(play), *settings, env={"ANSIBLE_TIMEOUT": "15"})
            tries = connections.count()
    finally:
        subprocess.run(["docker", "unpause", container], capture_output=True, check=False)
    assert result.returncode == 0, result.tail()
    lost, again, back = (result.stdout.split(f"TASK [{name}]", 1)[1].split("TASK [", 1)[0]
                         for name in ("Lose it", "Not tried again", "Reached again after the reset"))
    assert "fatal: [native-2]: UNREACHABLE!" in lost and "disconnected" in lost, result.tail()
    assert "fatal: [native-2]: UNREACHABLE!" in again and "was lost during this run, not connected again" in again, result.tail()
    assert "ok: [native-2]" in back, result.tail()
    assert tries == 2, f"{tries} SSH connections to native-2: one to reach it, one after the reset"


def test_a_node_that_dies_while_booting_is_reported_at_once_with_its_console(tmp_path):
    """systemd exiting at boot (as it does when the host's inotify limit is used up) is named with
    what it printed, at once, not after the boot timeout."""
    spec = model.plan("pico-it-dies", "native=1", "172.28.62.0/24", 2600)
    node = spec.nodes[0]
    subprocess.run(["docker", "rm", "-f", spec.container(node)], capture_output=True, check=False)
    subprocess.run(["docker", "run", "-d", "--tty", "--name", spec.container(node), images.image_ref(node.kind), "sh", "-c",
                    "echo 'Failed to allocate manager object: Too many open files'; exit 255"],
                   capture_output=True, check=True)
    lab = cluster.Lab("pico-it-dies", tmp_path, tmp_path / "hosts.yml")
    started = time.monotonic()
    try:
        with pytest.raises(LabError) as raised:
            lab._wait_ready(spec, [node])
    finally:
        subprocess.run(["docker", "rm", "-f", spec.container(node)], capture_output=True, check=False)
    assert time.monotonic() - started < 30
    assert str(raised.value) == ("node native-1 stopped while booting (exit 255); its console: "
                                 "Failed to allocate manager object: Too many open files")
