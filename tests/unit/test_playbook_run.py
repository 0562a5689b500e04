"""tests/playbook_run.py: how every test judges a playbook run. Checks that used to pass on a run
with no recap at all, a failed re-run with changed=0, or one host of several unchanged must fail."""
import pytest

from tests.playbook_run import PlaybookRun, expect_away, expect_refused, expect_success, expect_unchanged

RECAP = """
PLAY RECAP *********************************************************************
node-a                     : ok=90   changed={a}    unreachable=0    failed={fa}    skipped=31   rescued=0    ignored=0
node-b                     : ok=87   changed={b}    unreachable=0    failed=0    skipped=31   rescued=0    ignored=0
"""


def run(returncode=0, a=0, b=0, fa=0, text=""):
    return PlaybookRun(("site.yml",), returncode, text + RECAP.format(a=a, b=b, fa=fa), "")


def test_an_unchanged_run_passes_only_with_every_host_unchanged():
    expect_unchanged(run(), ["node-a", "node-b"])
    with pytest.raises(AssertionError, match="node-b changed 2 things"):
        expect_unchanged(run(b=2), ["node-a", "node-b"])


def test_no_recap_or_a_missing_host_is_a_failure_not_a_pass():
    with pytest.raises(AssertionError, match="recap lists"):
        expect_unchanged(PlaybookRun(("site.yml",), 0, "ERROR! the playbook could not be parsed", ""), ["node-a"])
    with pytest.raises(AssertionError, match=r"recap lists \['node-a', 'node-b'\], expected \['node-a', 'node-b', 'node-c'\]"):
        expect_unchanged(run(), ["node-a", "node-b", "node-c"])


def test_a_failed_run_is_never_unchanged_success():
    with pytest.raises(AssertionError):
        expect_unchanged(run(returncode=2, fa=1), ["node-a", "node-b"])


def test_changed_true_asks_for_a_change_on_every_host():
    expect_success(run(a=3, b=1), ["node-a", "node-b"], changed=True)
    with pytest.raises(AssertionError, match="node-b changed nothing"):
        expect_success(run(a=3), ["node-a", "node-b"], changed=True)


def test_a_refused_run_fails_changes_nothing_and_says_why():
    refused = run(returncode=2, fa=1, text="fatal: [node-a]: FAILED! => msg: pico_base_timezone \"Mars\"\n   does not exist")
    expect_refused(refused, ["node-a", "node-b"], 'pico_base_timezone "Mars" does not exist')
    with pytest.raises(AssertionError, match="was expected to fail"):
        expect_refused(run(), ["node-a", "node-b"])
    with pytest.raises(AssertionError, match="node-a changed 1 things in a refused run"):
        expect_refused(run(returncode=2, a=1, fa=1), ["node-a", "node-b"])
    expect_refused(run(returncode=2, b=1, fa=1), ["node-a", "node-b"], unchanged=["node-a"])
    with pytest.raises(AssertionError, match="not in the output"):
        expect_refused(refused, ["node-a", "node-b"], "some other reason")


def test_the_inventory_check_on_localhost_is_left_out_of_the_recap_unless_it_failed():
    checked = PlaybookRun(("site.yml",), 0, "PLAY RECAP\nlocalhost                  : ok=2    changed=0    unreachable=0    failed=1"
                          "    skipped=0\n" + RECAP.format(a=0, b=0, fa=0), "")
    with pytest.raises(AssertionError, match="localhost"):
        expect_unchanged(checked, ["node-a", "node-b"])
    fine = PlaybookRun(("site.yml",), 0, "PLAY RECAP\nlocalhost                  : ok=2    changed=0    unreachable=0    failed=0"
                       "    skipped=0\n" + RECAP.format(a=0, b=0, fa=0), "")
    expect_unchanged(fine, ["node-a", "node-b"])


AWAY = """
TASK [pico.cloud.fleet : Name the boards this run did not converge] ************
ok: [node-a] =>
    msg:
    - 'Not reached: node-b did not answer when the run started; nothing of site.yml was done there.'

PLAY RECAP *********************************************************************
node-a                     : ok=90   changed=0    unreachable=0    failed=0    skipped=31   rescued=0    ignored=0
node-b                     : ok=1    changed=0    unreachable={u}    failed=0    skipped=0    rescued=0    ignored=0
"""


def test_a_run_with_a_board_away_exits_4_converges_the_others_and_names_it():
    expect_away(PlaybookRun(("site.yml",), 4, AWAY.format(u=1), ""), ["node-a"], ["node-b"], changed=False)
    with pytest.raises(AssertionError):  # exit 0 hides the board that was away
        expect_away(PlaybookRun(("site.yml",), 0, AWAY.format(u=1), ""), ["node-a"], ["node-b"])
    with pytest.raises(AssertionError, match="is not unreachable in the recap"):
        expect_away(PlaybookRun(("site.yml",), 4, AWAY.format(u=0), ""), ["node-a"], ["node-b"])
    with pytest.raises(AssertionError, match="node-b is not named in the summary"):
        expect_away(PlaybookRun(("site.yml",), 4, AWAY.format(u=1).replace("Not reached: node-b", "x"), ""),
                    ["node-a"], ["node-b"])
