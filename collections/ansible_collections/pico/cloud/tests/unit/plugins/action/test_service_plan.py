"""pico.cloud.service_plan through the real ansible-playbook: it runs on the controller only, so a
play on localhost exercises it whole (only one service, drained nodes, members that are down,
the placement diff, check mode)."""
import pytest

from ansible_collections.pico.cloud.plugins.action.service_plan import _newest_held
from ansible_collections.pico.cloud.plugins.module_utils._plan_document import PlanDocumentError
from ansible_collections.pico.cloud.tests.unit.plugins.action.service_plan_play import (
    COLLECTIONS, NODES, ansible_galaxy, plan, service)


def test_a_first_plan_changes_and_shows_the_placement_as_its_diff(tmp_path):
    result, out = plan(tmp_path, services=[service("web")], nodes=NODES)
    assert result.returncode == 0, result.stdout
    assert out["changed"] is True and out["plan"]["generation"] == 1
    assert "+web: " in result.stdout  # the diff is the placement change
    assert [b["steps"][0]["action"] for r in out["rollouts"] for b in r["batches"]] == ["start"]


def test_only_one_service_changes_the_others_keep_their_placement(tmp_path):
    dummy, first = plan(tmp_path, services=[service("web"), service("api")], nodes=NODES)
    held = {n: {} for n in ("pz-1", "pz-2", "pz-3")}
    for node, files in first["node_files"].items():
        held[node] = files
    dummy, only = plan(tmp_path, services=[service("web", image="app:2", replicas=3), service("api", replicas=3)],
                       nodes=NODES, current=first["plan"], node_services=held, only="web")
    assert [r["service"] for r in only["rollouts"]] == ["web"]
    assert only["plan"]["services"]["api"] == first["plan"]["services"]["api"]
    assert len(only["plan"]["services"]["web"]["slots"]) == 3


def test_a_service_no_longer_declared_stops_everywhere_in_one_batch(tmp_path):
    dummy, first = plan(tmp_path, services=[service("web", replicas=3), service("api")], nodes=NODES)
    held = dict((node, first["node_files"].get(node, {})) for node in ("pz-1", "pz-2", "pz-3"))
    dummy, later = plan(tmp_path, services=[service("api")], nodes=NODES, current=first["plan"], node_services=held)
    assert later["removed"] == ["web"] and "web" not in later["plan"]["services"]
    (removal,) = later["rollouts"]
    assert [[(step["node"], step["action"]) for step in batch["steps"]] for batch in removal["batches"]] == [
        [("pz-1", "stop"), ("pz-2", "stop"), ("pz-3", "stop")]]


def test_a_drained_node_stays_drained_and_a_member_that_is_down_takes_nothing(tmp_path):
    dummy, first = plan(tmp_path, services=[service("web", replicas=3)], nodes=NODES, drain="pz-2")
    assert first["plan"]["drained"] == ["pz-2"] and "pz-2" not in first["plan"]["services"]["web"]["slots"]
    dummy, later = plan(tmp_path, services=[service("web", replicas=3)], nodes=NODES, current=first["plan"])
    assert later["plan"]["drained"] == ["pz-2"]
    dummy, back = plan(tmp_path, services=[service("web", replicas=3)], nodes=NODES, current=first["plan"], undrain="pz-2")
    assert back["plan"]["drained"] == [] and "pz-2" in back["plan"]["services"]["web"]["slots"]
    dummy, down = plan(tmp_path, services=[service("web", replicas=2)], nodes=NODES[:2] + ["pz-3"])
    assert "pz-3" not in down["plan"]["services"]["web"]["slots"]


def test_powered_down_boards_are_kept_as_they_were_and_woken_only_for_room(tmp_path):
    packed = [service("web", replicas=2, strategy="pack", min_nodes=2)]
    dummy, energy = plan(tmp_path, services=packed, nodes=NODES, consolidate=True)
    assert energy["plan"]["empty"] == ["pz-3"] and energy["wake"] == []
    asleep = dict(energy["plan"], powered_off={"pz-3": dict(NODES[2], alive=True)})
    # pz-3 asleep: left out of the play, found off at its switch; the plan keeps it as it was
    held = dict((n, energy["node_files"].get(n, {})) for n in ("pz-1", "pz-2"))
    dummy, quiet = plan(tmp_path, services=packed, nodes=NODES[:2] + ["pz-3"], current=asleep, standby=["pz-3"],
                        node_services=held)
    assert quiet["changed"] is False and quiet["wake"] == [] and list(quiet["plan"]["powered_off"]) == ["pz-3"]
    assert quiet["plan"]["services"]["web"]["failover"]["candidates"] == ["pz-1", "pz-2", "pz-3"]
    bigger = packed + [service("api", replicas=3, strategy="pack", min_nodes=3, resources={"memory": "300m"})]
    dummy, woken = plan(tmp_path, services=bigger, nodes=NODES[:2] + ["pz-3"], current=asleep, standby=["pz-3"],
                        node_services=held)
    assert woken["wake"] == ["pz-3"] and woken["plan"]["powered_off"] == {}
    assert "pz-3" in woken["plan"]["services"]["api"]["slots"] and "pz-3" in woken["node_files"]


def test_a_bad_declaration_fails_the_task_with_the_reason(tmp_path):
    result, dummy = plan(tmp_path, services=[{"name": "web", "image": "app:1", "replicas": 9, "resources": {"memory": "300m"}}],
                         nodes=NODES)
    assert result.returncode != 0
    assert "service web: 3 of 9 replicas fit" in " ".join(result.stdout.split())
    result, dummy = plan(tmp_path, services=[service("web")], nodes=NODES, drain="pz-9")
    assert "cannot drain pz-9: not a node of this cluster" in " ".join(result.stdout.split())


def test_a_broken_plan_on_a_node_is_named_with_its_node_and_file_and_the_newest_good_one_is_used(tmp_path):
    dummy, first = plan(tmp_path, services=[service("web")], nodes=NODES, cluster_id="0123456789abcdef")
    held = {"pz-1": first["plan"], "pz-2": dict(first["plan"], generation=0), "pz-3": None}
    dummy, again = plan(tmp_path, services=[service("web")], nodes=NODES, held=held, plan_file="/etc/pico-agent/plan.json")
    assert again["plan"]["generation"] == first["plan"]["generation"]  # built on pz-1's, the newest
    held["pz-3"] = dict(first["plan"], generation="x")
    result, dummy = plan(tmp_path, services=[service("web")], nodes=NODES, held=held, plan_file="/etc/pico-agent/plan.json")
    text = " ".join(result.stdout.split())
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert "pz-3: /etc/pico-agent/plan.json: generation = 'x' is not a whole number from 0 to 2147483647. Remove that file on the node" in text


BROKEN_PLANS = [({"services": []}, "services is not a mapping"),
                ({"generation": "x"}, "generation = 'x' is not a whole number"),
                ({"powered_off": [0]}, "powered_off is not a mapping"),
                ({"services": {"web": {"slots": 3}}}, "services.web.slots is not a list"),
                ({"drained": "pz-1"}, "drained is not a list"),
                ([], None)]
BAD_INPUT = [({"services": [service("web", tags=5)]}, "service web: tags = 5: a list of strings"),
             ({"nodes": [dict(NODES[0], cpus="one")]}, "node pz-1: cpus = 'one': a number of cores"),
             ({"nodes": [dict(NODES[0], images=0)]}, "node pz-1: images = 0: a list of image names"),
             ({"nodes": [dict(NODES[0], memory="lots")]}, "node pz-1: memory (pico_node_capacity.memory) = 'lots'"),
             ({"nodes": "pz-1"}, "nodes = 'pz-1': a list of node entries"),
             ({"drain": 1}, "drain = 1: a node name or a list of node names"),
             ({"node_services": {"pz-1": 3}}, "node_services: a mapping of node name"),
             ({"held": [1]}, "held = [1]: a mapping of node name")]


@pytest.mark.parametrize("broken, message", BROKEN_PLANS)
def test_a_plan_held_that_is_not_a_plan_is_refused_with_what_is_wrong(broken, message):
    with pytest.raises(PlanDocumentError) as refused:
        _newest_held({"held": {"pz-2": {"generation": 1, "services": {}}, "pz-1": broken}, "plan_file": "/etc/plan.json"})
    assert str(refused.value).startswith("pz-1: /etc/plan.json: " + (message or "not a plan"))
    assert "Nothing was changed" in str(refused.value)


@pytest.mark.parametrize("args, message", BAD_INPUT)
def test_bad_controller_input_fails_the_task_with_the_field_and_never_a_traceback(tmp_path, args, message):
    result, dummy = plan(tmp_path, **dict({"services": [service("web")], "nodes": NODES}, **args))
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr, result.stdout
    assert message in " ".join(result.stdout.split()), result.stdout


def test_the_planner_works_from_an_installed_collection(tmp_path):
    """Sites install the built collection, not this checkout: the action and its module_utils
    must travel in the archive."""
    installed = tmp_path / "installed"
    ansible_galaxy("collection", "build", str(COLLECTIONS / "pico/cloud"),
                   "--output-path", str(tmp_path), cwd=tmp_path, collections=installed)
    archive = next(tmp_path.glob("pico-cloud-*.tar.gz"))
    ansible_galaxy("collection", "install", str(archive), "-p", str(installed), cwd=tmp_path, collections=installed)
    assert (installed / "ansible_collections/pico/cloud/plugins/module_utils/_placement.py").is_file()
    result, out = plan(tmp_path, services=[service("web")], nodes=NODES, collections=installed)
    assert result.returncode == 0, result.stdout
    dummy, from_checkout = plan(tmp_path, services=[service("web")], nodes=NODES)
    assert len(out["plan"]["services"]["web"]["slots"]) == 2
    assert out["plan"] == from_checkout["plan"]  # one planner: the same inputs give the same plan
