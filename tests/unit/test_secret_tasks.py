"""Key material never reaches task output: every task of the collection that runs the key module
(it reads or writes a node's WireGuard private key) hides its result with no_log. The module
returns only the public key; no_log keeps a failure's message, an exception or -vvv's module
arguments out of the log as well (docs/wireguard.md)."""
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[2] / "collections/ansible_collections/pico/cloud/roles"
KEY_MODULES = {"pico.cloud.wireguard_keypair", "wireguard_keypair"}


def tasks(node):
    """Every task in a task list, blocks and rescue/always included."""
    for task in node or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from tasks(task.get(key))


def test_every_task_that_touches_a_private_key_hides_its_result():
    found = []
    for path in sorted(ROLES.glob("*/tasks/*.yml")):
        for task in tasks(yaml.safe_load(path.read_text())):
            if KEY_MODULES & set(task):
                found.append((path.relative_to(ROLES), task["name"], task.get("no_log")))
    assert len(found) >= 3, found  # keys.yml, preflight.yml's dry run, rotate_node.yml
    assert [f for f in found if f[2] is not True] == []


def test_every_task_that_writes_a_service_file_or_a_plan_shows_no_diff():
    """Service files and plans carry env (passwords): `--diff` printed them on the controller.
    A task writes one when its destination is a service file or the plan file."""
    found = []
    for path in sorted(ROLES.glob("*/tasks/*.yml")):
        for task in tasks(yaml.safe_load(path.read_text())):
            dest = str((task.get("ansible.builtin.copy") or task.get("ansible.builtin.template") or {}).get("dest", ""))
            if "services_dir" in dest or "plan" in dest:
                found.append((str(path.relative_to(ROLES)), task["name"], task.get("diff")))
    assert {f[0] for f in found} >= {"agent/tasks/services.yml", "deploy/tasks/batch.yml", "deploy/tasks/main.yml",
                                     "deploy/tasks/rollback.yml", "energy/tasks/main.yml"}, found
    assert [f for f in found if f[2] is not False] == []
