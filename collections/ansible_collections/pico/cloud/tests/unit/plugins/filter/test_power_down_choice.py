"""Which empty boards energy.yml powers down, and the reason each other one stays on."""
import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.filter.power_down_choice import _power_down_choice

LAB_SWITCH = {"driver": "lab", "container": "x"}


def board(name, switch="lab", pinned=(), ssh_args="", address=None, connection="ssh"):
    return {"name": name, "switch": LAB_SWITCH if switch == "lab" else switch, "pinned": list(pinned), "ssh_args": ssh_args, "address": address or name,
            "connection": connection}


def test_empty_boards_with_a_switch_go_down():
    boards = [board("a"), board("b"), board("c")]
    assert _power_down_choice(["b", "c"], boards) == {"power_down": ["b", "c"], "kept_on": {}}


def test_every_reason_to_stay_on_is_named():
    boards = [
        board("runs"),
        board("no-switch", switch=None),
        board("pinned", pinned=["camera"]),
        board("hub-host"),
        board("sleepy", switch={"driver": "uhubctl", "host": "hub-host", "location": "1-1", "port": 2}),
        board("bastion", address="10.0.0.9"),
        board("behind", ssh_args="-o ProxyJump=pi@10.0.0.9:22"),
        board("kept"),
        board("controller", connection="local"),
    ]
    choice = _power_down_choice(["no-switch", "pinned", "hub-host", "bastion", "kept", "sleepy", "controller"], boards,
                                ["kept"])
    assert choice["power_down"] == ["sleepy"]
    assert choice["kept_on"] == {
        "no-switch": "no power switch (pico_power_switch)",
        "pinned": "runs camera, pinned to it (pico_agent_services)",
        "hub-host": "switches the power of sleepy",
        "bastion": "the playbook reaches behind through it",
        "kept": "listed in pico_energy_keep_on",
        "controller": "the playbook runs on it",
    }


def test_the_last_board_stays_on():
    assert _power_down_choice(["a", "b"], [board("a"), board("b")]) == {
        "power_down": ["a"], "kept_on": {"b": "the last board on: the cluster keeps one"}}


def test_boards_not_in_the_play_are_ignored_and_bad_input_is_refused():
    assert _power_down_choice(["gone"], [board("a")]) == {"power_down": [], "kept_on": {}}
    with pytest.raises(AnsibleFilterError, match="boards must be a list of dicts with a name"):
        _power_down_choice(["a"], [{"switch": None}])
