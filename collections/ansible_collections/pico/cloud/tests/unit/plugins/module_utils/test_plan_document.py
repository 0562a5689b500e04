"""The plan document's one writer and one reading of what the nodes hold: the planner, energy.yml
and status.yml all go through module_utils/_plan_document.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pico.cloud.plugins.module_utils._plan_document import (
    MAX_GENERATION, PlanDocumentError, document, newest, version, with_powered_off)

WEB = {"web": {"slots": ["pz-1", "pz-2"]}}


def plan(generation, services=None, **more):
    return dict({"generation": generation, "services": {} if services is None else services, "drained": [], "powered_off": {}}, **more)


def test_the_newest_plan_is_the_highest_generation_and_the_first_node_by_name_among_equals():
    held = {"pz-3": plan(4, cluster="c"), "pz-1": None, "pz-2": plan(7, WEB, cluster="b"), "pz-0": plan(7, WEB, cluster="a")}
    assert newest(held)["cluster"] == "a"
    assert newest({"pz-1": None}) == {}


def test_a_broken_plan_file_is_named_with_its_node_or_left_out_of_a_status_report():
    held = {"pz-1": plan(3), "pz-2": {"generation": "x", "services": {}}}
    with pytest.raises(PlanDocumentError, match=r"^pz-2: /etc/pico-agent/plan.json: generation = 'x' is not a whole "
                                                r"number from 0 to 2147483647\. Remove that file on the node"):
        newest(held)
    assert newest(held, skip_broken=True)["generation"] == 3
    for broken, said in [([], "not a plan"), (plan(1, services=[]), "services is not a mapping"),
                         (plan(1, {"web": {"slots": [1]}}), "services.web.slots"),
                         (plan(1, drained="pz-1"), "drained is not a list"),
                         (plan(1, powered_off=["pz-1"]), "powered_off is not a mapping"),
                         (plan(True), "generation = True"), (plan(MAX_GENERATION + 1), "generation = 2147483648")]:
        with pytest.raises(PlanDocumentError, match=said):
            newest({"pz-1": broken})


def test_the_generation_goes_up_only_when_what_agents_act_on_changes():
    current = plan(5, WEB, cluster="c")
    same, changed = document(current, {"services": WEB, "nodes": {}}, [], {}, "c")
    assert (same["generation"], changed, same["version"]) == (5, False, version(WEB))
    assert same["nodes"] == {}  # what else the planner reports is kept
    for args in [({"services": {"web": {"slots": ["pz-1"]}}}, [], {}), ({"services": WEB}, ["pz-2"], {}),
                 ({"services": WEB}, [], {"pz-3": {"arch": "armv6l"}})]:
        new, changed = document(current, *args)
        assert (new["generation"], changed) == (6, True), args


def test_no_plan_is_written_that_the_agents_would_refuse_as_past_the_last_generation():
    document(plan(MAX_GENERATION - 1, WEB), {"services": {}}, [], {})  # the last one is still written
    with pytest.raises(PlanDocumentError, match="would pass 2147483647, which no agent takes"):
        document(plan(MAX_GENERATION, WEB), {"services": {}}, [], {})


def test_boards_recorded_as_powered_down_keep_the_placement_and_raise_the_generation():
    current = plan(5, WEB, cluster="c", nodes={"pz-1": {}}, empty=["pz-3"], powered_off={"pz-4": {"arch": "armv6l", "since": 1}})
    new = with_powered_off(current, {"pz-3": {"name": "pz-3", "arch": "armv6l"}}, 1700000000.9)
    assert new["powered_off"] == {"pz-4": {"arch": "armv6l", "since": 1},
                                  "pz-3": {"name": "pz-3", "arch": "armv6l", "since": 1700000000}}
    assert (new["generation"], new["services"], new["cluster"], new["version"]) == (6, WEB, "c", version(WEB))
    assert current["powered_off"] == {"pz-4": {"arch": "armv6l", "since": 1}}  # the input is left as it was
    with pytest.raises(PlanDocumentError, match=r"boards = \['pz-3'\]: a mapping"):
        with_powered_off(current, ["pz-3"], 5)
