"""rollout_lock as Ansible runs it, including many runs racing for one lock file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time
from concurrent.futures import ThreadPoolExecutor


def test_one_run_takes_the_lock_another_is_refused_until_it_is_released(run_module, tmp_path):
    path = str(tmp_path / "rollout.json")
    first = run_module("rollout_lock", path=path, owner="ctl-a:1", service="web", lease=600)
    assert first["changed"] is True and first["holder"]["owner"] == "ctl-a:1"
    assert run_module("rollout_lock", path=path, owner="ctl-a:1", service="web")["changed"] is False
    other = run_module("rollout_lock", path=path, owner="ctl-b:2", service="api")
    assert other.get("failed") is True
    assert "a rollout of web by ctl-a:1 holds the rollout lock until" in other["msg"]
    # Releasing is the owner's: another run's release leaves the lock where it is.
    assert run_module("rollout_lock", path=path, owner="ctl-b:2", state="absent")["changed"] is False
    assert json.loads((tmp_path / "rollout.json").read_text())["owner"] == "ctl-a:1"
    released = run_module("rollout_lock", path=path, owner="ctl-a:1", state="absent")
    assert released["changed"] is True and released["holder"] is None
    # The released lock stays, saying who held it and when it ended: a later run learns that run ended.
    kept = json.loads((tmp_path / "rollout.json").read_text())
    assert kept["owner"] == "ctl-a:1" and kept["released"] >= kept["expires"] - 600
    assert run_module("rollout_lock", path=path, owner="ctl-a:1", state="absent")["changed"] is False
    assert run_module("rollout_lock", path=path, owner="ctl-b:2")["changed"] is True


def test_an_expired_lease_stops_nobody(run_module, tmp_path):
    lock = tmp_path / "rollout.json"
    lock.write_text(json.dumps({"owner": "crashed:x", "service": "web", "expires": int(time.time()) - 1}))
    result = run_module("rollout_lock", path=str(lock), owner="ctl-a:1", lease=60)
    assert result["changed"] is True
    held = json.loads(lock.read_text())
    assert held["owner"] == "ctl-a:1" and 55 <= held["expires"] - time.time() <= 60


def test_check_mode_writes_nothing(run_module, tmp_path):
    result = run_module("rollout_lock", check=True, path=str(tmp_path / "rollout.json"), owner="ctl-a:1")
    assert result["changed"] is True and not (tmp_path / "rollout.json").exists()


def test_of_runs_that_start_together_exactly_one_gets_the_lock(run_module, tmp_path):
    path = str(tmp_path / "rollout.json")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: run_module("rollout_lock", path=path, owner=f"ctl:{n}"), range(8)))
    winners = [r["holder"]["owner"] for r in results if not r.get("failed")]
    assert len(winners) == 1, [r.get("msg") for r in results]
    assert json.loads((tmp_path / "rollout.json").read_text())["owner"] == winners[0]


def test_a_lease_that_is_not_positive_is_refused(run_module, tmp_path):
    result = run_module("rollout_lock", path=str(tmp_path / "rollout.json"), owner="ctl-a:1", lease=0)
    assert result.get("failed") is True and "lease must be a positive number" in result["msg"]
    assert not (tmp_path / "rollout.json").exists()


def test_a_lock_left_on_a_board_that_was_away_is_taken_over_once_its_run_is_known_to_have_ended(run_module, tmp_path):
    """The board was away when run ctl-a:1 released its lock everywhere else; that run's lease still runs."""
    lock = tmp_path / "rollout.json"
    lock.write_text(json.dumps({"owner": "ctl-a:1", "service": "web", "expires": int(time.time()) + 900}))
    refused = run_module("rollout_lock", path=str(lock), owner="ctl-b:2")
    assert refused.get("failed") is True and "ctl-a:1 holds the rollout lock" in refused["msg"]
    taken = run_module("rollout_lock", path=str(lock), owner="ctl-b:2", ended=["ctl-a:1"])
    assert taken["changed"] is True and json.loads(lock.read_text())["owner"] == "ctl-b:2"
    # A run that has not ended is never taken over.
    assert run_module("rollout_lock", path=str(lock), owner="ctl-c:3", ended=["ctl-a:1"]).get("failed") is True
