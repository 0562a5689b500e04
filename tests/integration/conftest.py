"""The labs the integration tests run on, brought up once per session and torn down after: a small
one (two native nodes, one emulated Pi Zero) and the fleet lab (six native boards, fleet_lab.py)."""
import pytest

from tests.integration import fleet_lab as fleet
from tests.integration.lab_access import LAB_MIX, LAB_NAME, LAB_PORT_BASE, LAB_SUBNET, NODES, lab_cli, playbook
from tests.playbook_run import expect_success


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


@pytest.fixture(scope="session")
def converged(lab_inventory):
    """The first site.yml run on the fresh lab, verbose and logged, as (result, ansible log text)."""
    log = lab_inventory.parent / "ansible.log"
    result = playbook(lab_inventory, "site.yml", "-vv", env={"ANSIBLE_LOG_PATH": str(log)})
    expect_success(result, NODES, changed=True)
    return result, log.read_text()


@pytest.fixture(scope="session")
def fleet_lab(tmp_path_factory):
    inventory = tmp_path_factory.mktemp("fleet") / "hosts.yml"
    lab_cli("down", "--name", fleet.LAB, "--inventory", str(inventory))
    up = lab_cli("up", "--name", fleet.LAB, "--mix", fleet.MIX, "--subnet", fleet.SUBNET,
                 "--ssh-port-base", str(fleet.PORT_BASE), "--inventory", str(inventory))
    assert up.returncode == 0, up.stderr
    expect_success(fleet.run(inventory, "site.yml", []), fleet.BOARDS, changed=True)
    yield inventory
    down = lab_cli("down", "--name", fleet.LAB, "--inventory", str(inventory))
    assert down.returncode == 0, down.stderr
