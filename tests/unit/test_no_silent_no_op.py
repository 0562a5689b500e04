"""A playbook run against an inventory that names no boards fails and says what to do, instead of
Ansible's "no hosts matched" and exit 0 (a deploy that did nothing looks like one that worked)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = ["site.yml", *sorted(str(p.relative_to(REPO)) for p in (REPO / "playbooks").glob("*.yml"))]


def run(playbook, inventory, *args):
    return subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), playbook, *args],
                          cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"})


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_an_inventory_without_boards_stops_the_run_and_names_the_way_out(playbook, tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    other:\n      hosts:\n        printer-1:\n")
    result = run(playbook, inventory, "-e", "node=pizero-1")
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, text
    assert f"No boards to work on: the inventory read ({inventory}) has no group pico_nodes." in text
    assert "make lab" in text and "inventories/example" in text and "pico.cloud.members" in text
    assert "printer-1" not in text.split("PLAY RECAP")[-1]  # nothing ran on a host of the inventory


def test_a_missing_inventory_file_is_named(tmp_path):
    result = run("playbooks/deploy.yml", tmp_path / "absent.yml")
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2
    assert f"the inventory read ({tmp_path / 'absent.yml'}) has no group pico_nodes" in text
