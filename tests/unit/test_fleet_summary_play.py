"""The closing summary of a playbook whose run failed on the boards it reached (deploy.yml after a
failed rollout): a real ansible-playbook run of the fleet role's summary in a play shaped like
deploy.yml's (a run_once failure inside a block, the summary in its always), on local hosts."""
import sys

import pytest

from tests.playbook_run import expect_refused, expect_unchanged, run_playbook

REACHED = ["n1", "n2", "n3"]
INVENTORY = "pico_nodes:\n  hosts:\n" + "".join(
    f"    n{i}: {{ansible_connection: local, ansible_python_interpreter: '{sys.executable}'}}\n" for i in range(1, 5))
PLAY = """
- name: Shaped like deploy.yml
  hosts: pico_nodes
  gather_facts: false
  tasks:
    - name: The fleet as the run found it, where n4 did not answer
      ansible.builtin.set_fact:
        pico_fleet: {group: [n1, n2, n3, n4], reached: [n1, n2, n3], powered_down: []}
    - name: Roll out, then name the boards away
      block:
        - name: Fail once for the run, as a failed rollout does
          ansible.builtin.fail:
            msg: the rollout failed
          run_once: true
          when: rollout_fails | bool
      always:
        - name: Name the boards this run did not converge
          ansible.builtin.import_role:
            name: pico.cloud.fleet
            tasks_from: summary
          vars:
            pico_fleet_playbook: deploy.yml
            pico_fleet_remaining: "{{ pico_fleet.reached }}"
"""


@pytest.mark.parametrize("rollout_fails, rerun", [
    (False, "When it is back, run deploy.yml again: it converges that board and changes nothing on the others."),
    # The others did not converge either: a re-run is not a no-op on them, and the summary must not say it is.
    (True, "When it is back and the failure above is fixed, run deploy.yml again: it converges that board and "
           "retries what failed on the others."),
])
def test_the_rerun_advice_says_what_a_rerun_does_on_the_others(rollout_fails, rerun, tmp_path):
    (tmp_path / "hosts.yml").write_text(INVENTORY)
    (tmp_path / "play.yml").write_text(PLAY)
    result = run_playbook(tmp_path / "hosts.yml", str(tmp_path / "play.yml"), "-l", "n1,n2,n3",
                          "-e", f"rollout_fails={rollout_fails}", env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"})
    said = ("Not reached: n4 did not answer when the run started; nothing of deploy.yml was done there.", rerun)
    if rollout_fails:
        expect_refused(result, REACHED, "the rollout failed", *said)
    else:
        expect_unchanged(result, REACHED)
        assert all(line in result.text for line in said), result.tail()
