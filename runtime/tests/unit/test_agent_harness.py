"""The cluster test harness itself (runtime/tests/agentlab.py): a readiness check must fail when a
participant is dead, not skip it."""
import subprocess
import sys

from agentlab import AgentLab


def test_readiness_fails_while_no_agent_runs(tmp_path):
    lab = AgentLab(tmp_path, 3)
    assert lab.all_see(3) is False  # nothing started: nobody can see anybody


def test_readiness_fails_when_one_participant_died(tmp_path, monkeypatch):
    lab = AgentLab(tmp_path, 2)
    for node in lab.nodes:  # stand-in processes: both run, then one agent dies
        node.serf = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        node.agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    # Both list both as alive; the survivor goes on doing so (gossip has not noticed yet).
    for node in lab.nodes:
        monkeypatch.setattr(node, "members", lambda: {"n1": "alive", "n2": "alive"})
    try:
        assert lab.all_see(2) is True
        lab.nodes[1].agent.kill()
        lab.nodes[1].agent.wait()
        assert lab.nodes[0].running() and not lab.nodes[1].running()
        assert lab.all_see(2) is False
    finally:
        lab.stop()
