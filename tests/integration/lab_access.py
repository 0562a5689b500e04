"""How the integration tests reach their lab: its name and shape, the lab CLI, playbook runs
against it, and commands on its nodes. The fixtures that bring it up are in conftest.py."""
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.playbook_run import PlaybookRun, run_playbook, run_playbook_watching

REPO = Path(__file__).resolve().parents[2]
LAB_NAME = "pico-it"
LAB_SUBNET = "172.28.60.0/24"
LAB_PORT_BASE = 2400
# Two native nodes for speed, one emulated Pi Zero so the SSH path to ARMv6 is tested too.
LAB_MIX = "native=2,pizero=1"
NODES = ("native-1", "native-2", "pizero-1")
NATIVE = ("native-1", "native-2")


def lab_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True,
                          check=False, env={**os.environ, **(env or {})})


def playbook(inventory, *args, env=None) -> PlaybookRun:
    """A run against this lab; judge it with expect_success / expect_unchanged / expect_refused."""
    # a private fact cache: tests must not see facts of another lab
    return run_playbook(inventory, *args, env={"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(inventory.parent / "facts"),
                                               **(env or {})})


class PauseWhen:
    """Pause a board's container (a board that froze, or lost its network) the n-th time a line of a
    run's output matches `pattern`; `board` is a name, or a function of the output so far that
    names it (the board of a batch the run announced)."""

    def __init__(self, lab, pattern, board, nth=1):
        self.lab, self.pattern, self.board, self.nth = lab, re.compile(pattern), board, nth
        self.seen, self.paused = 0, None

    def __call__(self, line, output):
        if self.paused is None and self.pattern.search(line):
            self.seen += 1
            if self.seen == self.nth:
                board = self.board(output) if callable(self.board) else self.board
                subprocess.run(["docker", "pause", f"{self.lab}-lab-{board}"], check=True, capture_output=True)
                self.paused = board


def playbook_pausing(inventory, *args, pauses, env=None) -> PlaybookRun:
    """playbook(), pausing boards as the run goes (PauseWhen); each paused board is named in its .paused."""
    def on_line(line, output):
        for pause in pauses:
            pause(line, output)
    return run_playbook_watching(inventory, *args, on_line=on_line,
                                 env={"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(inventory.parent / "facts"), **(env or {})})


def inventory_nodes(inventory):
    """The pico_nodes group of a lab's generated inventory."""
    return yaml.safe_load(Path(inventory).read_text())["all"]["children"]["pico_nodes"]


def address_in(nodes, board):
    """The address the playbooks reach the board at (its ansible_host in inventory_nodes()), on or off."""
    return next(group["hosts"][board] for group in nodes["children"].values()
                if board in (group.get("hosts") or {}))["ansible_host"]


class SshConnections:
    """How many SSH connections this machine opens to a board while the block runs: a rule of the
    host's firewall that only counts new connections to the board's port 22 (iptables, OUTPUT
    chain), removed after. What README's "reached once, never retried task by task" is held to."""

    def __init__(self, address):
        self.address = address
        self._rule = ["OUTPUT", "-d", address, "-p", "tcp", "--dport", "22", "-m", "conntrack", "--ctstate", "NEW",
                      "-m", "comment", "--comment", f"pico-test-ssh-{os.getpid()}-{address}"]

    def __enter__(self):
        subprocess.run(["iptables", "-w", "-I", *self._rule], check=True, capture_output=True)
        return self

    def __exit__(self, *_):
        subprocess.run(["iptables", "-w", "-D", *self._rule], check=True, capture_output=True)

    def count(self) -> int:
        listing = subprocess.run(["iptables", "-w", "-L", "OUTPUT", "-v", "-x", "-n"], check=True, capture_output=True,
                                 text=True).stdout
        mine = [line for line in listing.splitlines() if f"/* {self._rule[-1]} */" in line]
        assert len(mine) == 1, listing
        # Packets of connections not yet answered: one SYN each, since a frozen (paused) board's
        # kernel still answers the handshake.
        return int(mine[0].split()[0])


def ssh_connections_to(inventory, board):
    """SshConnections to a board of a lab, by its name in the lab's inventory."""
    return SshConnections(address_in(inventory_nodes(inventory), board))


def node_run(node, *cmd, check=True, lab=LAB_NAME) -> subprocess.CompletedProcess:
    """A command on a node of a lab (this module's, unless `lab` names another), through docker
    exec (text output captured)."""
    return subprocess.run(["docker", "exec", f"{lab}-lab-{node}", *cmd], capture_output=True, text=True, check=check)


def node_exec(node, *cmd, lab=LAB_NAME):
    return node_run(node, *cmd, lab=lab).stdout


def node_ok(node, *cmd, lab=LAB_NAME):
    """Whether a command on a lab node exits 0 (node_exec raises when it does not)."""
    return node_run(node, *cmd, check=False, lab=lab).returncode == 0


def wait_for(check, timeout, what, show=lambda: ""):
    """Poll `check` every second until it is true, for at most `timeout` s; `show`: what a failed
    wait prints beside `what`."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, ": ".join(filter(None, [f"waited {timeout} s for {what}", show()]))
        time.sleep(1)


def file_digest(node, path):
    """SHA-256 of a file on a lab node: proof that a refused run left it as it was."""
    return hashlib.sha256(node_exec(node, "cat", path).encode()).hexdigest()
