"""The fleet lab: six native boards of their own, with power switches (the lab's containers), for
what a fleet that is never all up does: boards powered down on purpose (test_energy.py), boards
that freeze or drop off the network during a run (test_fleet.py). The fixture that brings it up
is `fleet_lab` in conftest.py; the energy tests run first and leave two boards powered down."""
import json
import shlex
import socket
import subprocess
import time
from contextlib import contextmanager

from tests.integration.lab_access import address_in, inventory_nodes, node_exec, node_ok, playbook, playbook_pausing

LAB, MIX, SUBNET, PORT_BASE = "pico-en", "native=6", "172.28.72.0/24", 2850
BOARDS = tuple("native-%d" % i for i in range(1, 7))
CLIENT = "native-1"  # first in pack order: it stays on
# Each board gives services 200 MiB here, so two packed services fit two boards and a third needs more.
# The fleet lab's boards are native containers on this machine, which answer SSH within a second
# however busy it is: a board away is given up after 15 s here (connect timeout, and 3 missed
# keepalives of 5 s), not the 30 s ansible.cfg and the lab's inventory size for a Pi Zero on
# Wi-Fi. These tests check what a run does with boards away; bench/fleet.py measures what a board
# away costs with the project's own settings.
SETTINGS = {"pico_agent_services": [], "pico_node_capacity": {"memory": "200m", "cpus": 1},
            "mitogen_ssh_keepalive_interval": 5, "mitogen_ssh_keepalive_count": 3}
GIVE_UP_SOONER = {"ANSIBLE_TIMEOUT": "15"}


def service(name, port, replicas=2, memory="48m", strategy="pack", image="pico/demo:1.0.0", **more):
    return {"name": name, "image": image, "replicas": replicas, "port": port, "min_nodes": 2,
            "strategy": strategy, "resources": {"memory": memory, "cpu": 0.2},
            "health": {"type": "http", "path": "/healthz", "interval": 1, "timeout": 1, "retries": 2, "start_period": 30},
            "update": {"min_healthy_time": 2, "healthy_deadline": 90, "drain_time": 1}, **more}


def _extra(inventory, services, settings):
    extra = inventory.parent / "fleet-vars.json"
    extra.write_text(json.dumps({**SETTINGS, **(settings or {}), "pico_services": services}))
    return f"@{extra}"


def run(inventory, name, services, *args, settings=None):
    """A playbook run against the fleet lab with these services declared (and more settings)."""
    return playbook(inventory, name, "-e", _extra(inventory, services, settings), *args, env=GIVE_UP_SOONER)


def run_pausing(inventory, name, services, *args, pauses, settings=None):
    """run(), pausing boards as the run goes (lab_access.PauseWhen)."""
    return playbook_pausing(inventory, name, "-e", _extra(inventory, services, settings), *args, pauses=pauses,
                            env=GIVE_UP_SOONER)


def container(board):
    return f"{LAB}-lab-{board}"


def powered(board):
    out = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}}", container(board)],
                         capture_output=True, text=True, check=True).stdout
    return out.strip() == "true"


def on_board(board, *cmd):
    return node_exec(board, *cmd, lab=LAB)


def on_board_ok(board, *cmd):
    return node_ok(board, *cmd, lab=LAB)


def agent(board, path):
    script = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8500{path}').read().decode())"
    return json.loads(on_board(board, "python3", "-c", script))


def instances(service_name, board=CLIENT):
    return agent(board, f"/v1/services/{service_name}")["instances"]


@contextmanager
def tunnel_to_agent(inventory, board, agent_port=8500):
    """The board's agent API on a port of this machine, through SSH, the way the README opens a
    board's status page: yields its URL."""
    nodes = inventory_nodes(inventory)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()[1]
    ssh = subprocess.Popen(["ssh", "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                            *shlex.split(nodes["vars"]["ansible_ssh_common_args"]),
                            "-i", nodes["vars"]["ansible_ssh_private_key_file"],
                            "-L", f"127.0.0.1:{local}:127.0.0.1:{agent_port}", f"root@{address_in(nodes, board)}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", local), timeout=1).close()
                break
            except OSError:
                assert ssh.poll() is None and time.monotonic() < deadline, f"no SSH tunnel to {board}"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{local}/"
    finally:
        ssh.terminate()
        ssh.wait(10)
