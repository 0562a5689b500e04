"""What pico.cloud.rotate_wireguard_keys tells the operator of each board away: the nodes rotated
meanwhile, whose old keys it still holds, never itself (a board lost right after its own switch
holds its own new key). The playbook's own expression, rendered by Ansible's templating. And the
order in which a peer takes a rotated key (the role's rotate_node.yml)."""
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

PLAYBOOK = Path(__file__).resolve().parents[2] / "collections/ansible_collections/pico/cloud/playbooks/rotate_wireguard_keys.yml"


def notes(missing, rotated):
    play = next(play for play in yaml.safe_load(PLAYBOOK.read_text()) if play["name"] == "Rotate WireGuard keys")
    expression = play["post_tasks"][0]["vars"]["pico_fleet_notes"]
    templar = Templar(loader=DataLoader(), variables={"_missing": missing, "_rotated": rotated})
    return templar.template(trust_as_template(expression))


def test_a_board_away_is_told_the_nodes_rotated_meanwhile_in_rotation_order():
    said = notes(["pizero-2"], ["pizero-1", "pizero2-1"])
    assert list(said) == ["pizero-2"]
    assert said["pizero-2"].startswith("it still holds the old public keys of pizero-1, pizero2-1, so its tunnels")
    assert "rotate_wireguard_keys -e pico_wireguard_rotate_nodes=pizero-2 (" in said["pizero-2"]


def test_a_board_lost_after_its_own_switch_is_not_told_of_its_own_key():
    said = notes(["pizero-2", "native-9"], ["pizero-1", "pizero-2", "pizero2-1"])
    assert "old public keys of pizero-1, pizero2-1, so" in said["pizero-2"]
    assert "old public keys of pizero-1, pizero-2, pizero2-1, so" in said["native-9"]


@pytest.mark.parametrize("missing, rotated", [([], ["pizero-1"]), (["pizero-2"], []), (["pizero-2"], ["pizero-2"])])
def test_no_note_where_no_other_key_changed(missing, rotated):
    assert notes(missing, rotated) == {}


ROTATE_NODE = PLAYBOOK.parents[1] / "roles/wireguard/tasks/rotate_node.yml"


def test_a_peer_applies_the_new_key_to_its_interface_before_it_keeps_the_file():
    """docs/wireguard.md: the running interface first, then the file. A peer lost between the two
    keeps its old file, which the next run's template finds changed, so the reload handler applies
    the key there; the other order left a new file over an old interface, which no run changed."""
    tasks = yaml.safe_load(ROTATE_NODE.read_text())
    applies = next(i for i, task in enumerate(tasks) if "pico.cloud.wireguard_peers" in task)
    keeps = next(i for i, task in enumerate(tasks) if ".next" in str(task.get("ansible.builtin.command", "")))
    assert tasks[applies]["pico.cloud.wireguard_peers"]["config"].endswith(".next")
    assert applies < keeps, [task["name"] for task in tasks]
