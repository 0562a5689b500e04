"""What a run says of the boards it did not converge."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pico.cloud.plugins.filter import fleet_summary as summary_plugin

fleet_summary = summary_plugin.FilterModule().filters()["fleet_summary"]
GROUP = ["n1", "n2", "n3", "n4", "n5"]


def test_every_board_took_part_and_nothing_is_said():
    assert fleet_summary({"group": GROUP, "powered_down": [], "reached": GROUP}, GROUP, "site.yml") == []


def test_boards_away_lost_and_powered_down_are_each_named_with_what_to_do():
    fleet = {"group": GROUP, "powered_down": ["n5"], "reached": ["n1", "n2", "n3"], "switch_problems": {}}
    lines = fleet_summary(fleet, ["n1", "n2"], "site.yml", "its roles were not applied", {"n4": "it keeps its old key."})
    assert lines == [
        "Not reached: n4 did not answer when the run started; nothing of site.yml was done there: its roles were not applied.",
        "Lost during the run: n3 became unreachable or failed (see above); site.yml is incomplete there.",
        "n4: it keeps its old key.",
        # A board with a note is told what to do there; the generic advice is for the others, and a
        # board lost during the run may have failed, so coming back alone is not enough.
        "When it is back, or the failure above is fixed, run site.yml again: it converges that board and changes nothing on the others.",
        "Powered down, left out on purpose: n5 (energy.yml; deploy.yml powers boards up when it needs their room).",
    ]


def test_one_board_away_reads_as_one_and_a_switch_that_could_not_be_read_is_said():
    fleet = {"group": GROUP, "powered_down": [], "reached": ["n1", "n2", "n3", "n5"], "switch_problems": {"n4": "exit 1"}}
    lines = fleet_summary(fleet, ["n1", "n2", "n3", "n5"], "deploy.yml")
    assert lines == [
        "Not reached: n4 did not answer when the run started; nothing of deploy.yml was done there.",
        "When it is back, run deploy.yml again: it converges that board and changes nothing on the others.",
        "The power switch of n4 could not be read (exit 1); it was tried over SSH.",
    ]


def test_boards_lost_during_the_run_are_told_what_to_fix_in_the_plural():
    fleet = {"group": GROUP, "powered_down": [], "reached": GROUP}
    assert fleet_summary(fleet, ["n1", "n2", "n3"], "site.yml")[-1] == (
        "When they are back, or the failures above are fixed, run site.yml again: it converges those boards and "
        "changes nothing on the others.")


def test_names_are_listed_in_the_group_order():
    fleet = {"group": GROUP, "powered_down": ["n4", "n2"], "reached": ["n1", "n3", "n5"]}
    assert fleet_summary(fleet, ["n1", "n3", "n5"], "site.yml") == [
        "Powered down, left out on purpose: n2 and n4 (energy.yml; deploy.yml powers boards up when it needs their room)."]


def test_a_note_on_a_powered_down_board_is_said_after_it_is_named():
    fleet = {"group": GROUP, "powered_down": ["n4"], "reached": ["n1", "n2", "n3", "n5"]}
    assert fleet_summary(fleet, ["n1", "n2", "n3", "n5"], "rotate.yml", "", {"n4": "it holds old keys."}) == [
        "Powered down, left out on purpose: n4 (energy.yml; deploy.yml powers boards up when it needs their room).",
        "n4: it holds old keys."]


def test_bad_input_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="pico_fleet fact"):
        fleet_summary(["n1"], [], "site.yml")
    with pytest.raises(AnsibleFilterError, match="reached must be a list of board names"):
        fleet_summary({"group": GROUP, "reached": "n1"}, [], "site.yml")


def test_after_a_run_that_failed_on_the_others_a_rerun_is_not_called_a_no_op_there():
    fleet = {"group": GROUP, "powered_down": [], "reached": ["n1", "n2", "n3"]}
    assert fleet_summary(fleet, ["n1", "n2"], "deploy.yml", "", {}, True)[-1] == (
        "When they are back and the failure above is fixed, run deploy.yml again: it converges those boards and "
        "retries what failed on the others.")
    with pytest.raises(AnsibleFilterError, match="run_failed must be true or false, got 'yes'"):
        fleet_summary(fleet, ["n1", "n2"], "deploy.yml", "", {}, "yes")


def test_a_playbook_that_takes_a_limit_also_names_the_run_over_the_boards_away_alone():
    fleet = {"group": GROUP, "powered_down": ["n5"], "reached": ["n1", "n2", "n3"]}
    lines = fleet_summary(fleet, ["n1", "n2"], "site.yml", "", {}, False, True)
    # The boards named: the ones away and lost, not the one powered down on purpose.
    assert lines[2] == (
        "When they are back, or the failures above are fixed, run site.yml again: it converges those boards and "
        "changes nothing on the others; ansible-playbook site.yml --limit n4,n3 converges them alone, quicker "
        "on a large fleet.")
    one = {"group": GROUP, "powered_down": [], "reached": ["n1", "n2", "n3", "n5"]}
    assert fleet_summary(one, ["n1", "n2", "n3", "n5"], "site.yml", "", {}, False, True)[-1].endswith(
        "; ansible-playbook site.yml --limit n4 converges it alone, quicker on a large fleet.")
    with pytest.raises(AnsibleFilterError, match="limit_rerun must be true or false, got 'yes'"):
        fleet_summary(one, ["n1"], "site.yml", "", {}, False, "yes")
