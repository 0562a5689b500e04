"""A small lab of native nodes, brought up once for the integration tests and torn down after."""
import pytest

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
