"""The filters over the plan document (module_utils/_plan_document.py): status.yml's and the
deploy role's newest plan, energy.yml's record of the boards it powers down."""
import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.filter.newest_plan import _newest_plan
from ansible_collections.pico.cloud.plugins.filter.plan_powered_off import _plan_powered_off


def test_newest_plan_names_a_broken_file_or_leaves_it_out_of_a_status_report():
    held = {"pz-1": {"generation": 3, "services": {}}, "pz-2": {"generation": "x"}, "pz-3": None}
    with pytest.raises(AnsibleFilterError, match=r"newest_plan: pz-2: /etc/pico-agent/plan.json: generation = 'x'"):
        _newest_plan(held)
    assert _newest_plan(held, skip_broken=True) == {"generation": 3, "services": {}}


def test_plan_powered_off_records_the_boards_and_refuses_what_is_not_a_mapping():
    plan = {"generation": 2, "services": {}, "drained": [], "powered_off": {}}
    assert _plan_powered_off(plan, {"pz-3": {"name": "pz-3"}}, 5)["powered_off"] == {"pz-3": {"name": "pz-3", "since": 5}}
    with pytest.raises(AnsibleFilterError, match=r"plan_powered_off: boards = \['pz-3'\]: a mapping"):
        _plan_powered_off(plan, ["pz-3"], 5)
