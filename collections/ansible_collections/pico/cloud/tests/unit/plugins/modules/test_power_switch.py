"""power_switch as Ansible runs it, with the lab driver on this machine's dockerd: a container
stands for a board, as in the lab (the hardware drivers' parsing is tested in module_utils)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import subprocess
import uuid

import pytest

IMAGE = "pico-lab/native:latest"  # built by `make images`, which `make test` runs first


@pytest.fixture
def board():
    name = "pico-unit-switch-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["docker", "create", "--name", name, "--stop-signal", "SIGKILL", "--entrypoint", "sleep", IMAGE, "600"],
                   check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True)


def running(name):
    return subprocess.run(["docker", "inspect", "--format", "{{.State.Running}}", name],
                          check=True, capture_output=True, text=True).stdout.strip() == "true"


def test_the_switch_from_the_inventory_turns_a_board_on_and_off_once(run_module, board):
    switch = {"driver": "lab", "container": board, "host": "localhost", "become": False}
    query = run_module("power_switch", switch=switch)  # state: query, the default
    assert (query["changed"], query["before"], query["power"]) == (False, "off", "off")
    check = run_module("power_switch", check=True, switch=switch, state="on")
    assert check["changed"] is True and check["power"] == "on" and not running(board)
    on = run_module("power_switch", switch=switch, state="on")
    assert on["changed"] is True and on["before"] == "off" and on["power"] == "on" and running(board)
    assert run_module("power_switch", switch=switch, state="on")["changed"] is False
    off = run_module("power_switch", switch=switch, state="off")
    assert off["changed"] is True and off["power"] == "off" and not running(board)


@pytest.mark.parametrize(("args", "message"), [
    ({"switch": {"driver": "lab", "container": "x", "prot": 2}}, "pico_power_switch has unknown key prot"),
    ({"switch": {"driver": "uhubctl", "port": "two", "location": "1-1"}}, "pico_power_switch port 'two': a whole number"),
    ({"switch": {"container": "x"}}, "power switch driver None: choose one of clusterctrl, lab, uhubctl"),
    ({"switch": {"driver": "lab", "container": "pico-unit-no-such-board"}, "state": "off"}, "No such object"),
])
def test_a_switch_declared_wrong_changes_nothing_and_says_why(run_module, args, message):
    result = run_module("power_switch", **args)
    assert result.get("failed") is True and message in result["msg"], result
