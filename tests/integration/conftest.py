"""A small lab of native nodes, brought up once for the integration tests and torn down after."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB_NAME = "pico-it"
LAB_SUBNET = "172.28.60.0/24"
LAB_PORT_BASE = 2400
# Two native nodes for speed, one emulated Pi Zero so the SSH path to ARMv6 is tested too.
LAB_MIX = "native=2,pizero=1"


def lab_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True,
                          check=False, env={**os.environ, **(env or {})})


def playbook(inventory, *args):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0",
           # a private fact cache: tests must not see facts of another lab
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(inventory.parent / "facts")}
    return subprocess.run(["ansible-playbook", "-i", str(inventory), *args], cwd=REPO, capture_output=True,
                          text=True, check=False, env=env)


@pytest.fixture(scope="session")
def lab_inventory(tmp_path_factory):
    inventory = tmp_path_factory.mktemp("lab") / "hosts.yml"
    lab_cli("down", "--name", LAB_NAME, "--inventory", str(inventory))
    up = lab_cli("up", "--name", LAB_NAME, "--mix", LAB_MIX, "--subnet", LAB_SUBNET,
                 "--ssh-port-base", str(LAB_PORT_BASE), "--inventory", str(inventory))
    assert up.returncode == 0, up.stderr
    yield inventory
    down = lab_cli("down", "--name", LAB_NAME, "--inventory", str(inventory))
    assert down.returncode == 0, down.stderr
