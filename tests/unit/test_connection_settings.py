"""The README's "Connections sized for a Pi Zero" table is what the repository sets.

Users copy that table's lines into their own ansible.cfg and group variables, so each row must
hold in ansible.cfg, in the example inventory and in the lab's (the lab runs every test with them).
"""
from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
import yaml

from lab.inventory import render_inventory
from lab.model import plan

REPO = Path(__file__).resolve().parents[2]


def table_rows() -> list[tuple[str, str]]:
    """(setting, value) of each row of the README's table, the setting cell as written."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Connections sized for a Pi Zero", 1)[1].split("\n#", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    return [(setting.strip(), value.strip()) for setting, value in rows]


def ansible_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "ansible.cfg")
    return config


def lab_group_vars() -> dict:
    """The variables the lab's generated inventory gives every board."""
    text = render_inventory(plan("pico", "pizero=1", "172.28.10.0/24", 2222), "/key", [])
    return yaml.safe_load(text)["all"]["children"]["pico_nodes"]["vars"]


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, str]]:
    found = table_rows()
    assert len(found) >= 6, f"the README's connection table was not found or lost rows: {found}"
    return found


def test_each_ansible_cfg_row_is_what_ansible_cfg_sets(rows):
    config = ansible_cfg()
    checked = 0
    for setting, value in rows:
        if "`ssh_args`" in setting:
            ssh_args = config.get("ssh_connection", "ssh_args").split()
            for option in re.match(r"`([^`]+)`", setting).group(1).split():
                assert option in ssh_args, f"README says ssh_args has -o {option}; ansible.cfg: {ssh_args}"
        elif "(ansible.cfg" in setting:
            section = "ssh_connection" if "`[ssh_connection]`" in setting else "defaults"
            key = re.match(r"`(\w+)`", setting).group(1)
            assert config.get(section, key, fallback=None) == value, f"README says [{section}] {key} = {value}"
        else:
            continue
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("inventory", ["example", "lab"])
def test_each_inventory_row_is_what_the_inventories_set(rows, inventory):
    if inventory == "example":
        variables = yaml.safe_load((REPO / "inventories/example/group_vars/pico_nodes.yml").read_text())
    else:
        variables = lab_group_vars()
    checked = 0
    for setting, _ in rows:
        if "(inventory)" not in setting:
            continue
        for key, value in re.findall(r"`(\w+): ([^`]+)`", setting):
            assert str(variables.get(key)) == value, f"README says {key}: {value}; {inventory} inventory: {variables.get(key)}"
            checked += 1
    assert checked >= 3
