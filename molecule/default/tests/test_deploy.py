"""Orchestration through playbooks on the two emulated boards Molecule converged, a Pi Zero and a
Zero 2 W: the service `web` declared once for the cluster, placed and rolled out by
playbooks/deploy.yml, drained by playbooks/drain.yml, shown by playbooks/status.yml, with a client
on a board resolving through the agents' DNS while each rollout runs. Runs after test_default.py
(file order), on its nodes. Batches of several boards and boards lost mid-run are the fleet lab's
(tests/integration/test_fleet.py, six native boards)."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(REPO))
from lab.board_load import BoardLoad  # noqa: E402
from tests.playbook_run import expect_refused, expect_success, expect_unchanged, run_playbook  # noqa: E402

INVENTORY = Path(os.environ.get("MOLECULE_INVENTORY_FILE", "/nonexistent"))
BOARDS = ("molecule-pizero", "molecule-pizero2")
CLIENT = "molecule-pizero2"
VICTIM = "molecule-pizero"  # drained, and lost: never the client
PORT = 8090
# A refused rollout quotes the node's agent on the failing version: HTTP 500 once the app listens,
# or the refused connection before that (an emulated board under a loaded CI took over the 15 s
# deadline to start it once). That the agent reports HTTP 500 itself is test_supervisor's.
AGENT_ON_THE_FAILING_CHECK = re.compile(
    r"Its agent says: web-\d+ \w+: (HTTP 500|GET /healthz: \[Errno 111\] Connect call failed)")


def web(version="1.0.0", **extra):
    service = {"name": "web", "image": f"pico/demo:{version}", "replicas": 2, "port": PORT,
               "health": {"type": "http", "path": "/healthz", "interval": 1, "timeout": 1, "retries": 2,
                          "start_period": 60},
               "resources": {"memory": "48m", "cpu": 0.2},
               "update": {"min_healthy_time": 3, "healthy_deadline": 90, "drain_time": 2}}
    for key, value in extra.items():
        service[key] = {**service[key], **value} if isinstance(value, dict) and key in service else value
    return service


def deploy(tmp_path, services, *args, playbook="playbooks/deploy.yml", env=None):
    extra = tmp_path / "services.json"
    extra.write_text(json.dumps({"pico_services": services}))
    # Molecule reaches the boards as root already. Without the sudo hop Mitogen starts one Python
    # per board instead of two, under emulation a third of a run. The playbooks' become is
    # exercised by Molecule's converge on these boards and by the lab's deploys over SSH.
    return run_playbook(INVENTORY, playbook, "-e", f"@{extra}", "-e", "ansible_become=false", *args,
                        env={"ANSIBLE_CONFIG": os.environ["ANSIBLE_CONFIG"], **(env or {})})


def board(node, *cmd, check=True):
    return subprocess.run(["docker", "exec", node, *cmd], capture_output=True, text=True, check=check).stdout


def plan_on(node):
    return json.loads(board(node, "cat", "/etc/pico-agent/plan.json"))


def containers(node):
    out = board(node, "podman", "ps", "--filter", "label=pico.service=web", "--format", "{{.Names}} {{.ID}}")
    return dict(line.split() for line in out.splitlines())


def versions_in_discovery():
    script = ("import json, urllib.request; print(json.dumps([(i['node'], i['port'], i['tags']) for i in json.load("
              "urllib.request.urlopen('http://127.0.0.1:8500/v1/services/web'))['instances']]))")
    return json.loads(board(CLIENT, "python3", "-c", script))


def client_load():
    """A client on a board resolving web through its agent's DNS, counting what fails."""
    return BoardLoad(CLIENT, "web", PORT)


@pytest.fixture(scope="module")
def first_deploy(tmp_path_factory):
    result = deploy(tmp_path_factory.mktemp("deploy"), [web()])
    expect_success(result, BOARDS, changed="any")
    return result


def test_a_first_deploy_places_one_replica_on_each_board(first_deploy):
    plans = [plan_on(node) for node in BOARDS]
    assert all(p == plans[0] for p in plans)  # every node holds the same plan
    assert sorted(plans[0]["services"]["web"]["slots"]) == sorted(BOARDS)
    assert sorted(node for node, _, _ in versions_in_discovery()) == sorted(BOARDS)


def test_check_mode_shows_the_placement_change_and_does_nothing(first_deploy, tmp_path):
    before = {node: containers(node) for node in BOARDS}
    result = deploy(tmp_path, [web(replicas=3)], "--check", "--diff")
    expect_success(result, BOARDS)
    assert "+web: " in result.stdout and "-web: " in result.stdout
    assert {node: containers(node) for node in BOARDS} == before
    assert len(plan_on(BOARDS[0])["services"]["web"]["slots"]) == 2


def test_a_rolling_update_under_load_fails_no_request(first_deploy, tmp_path):
    """A canary first, then one board a batch. A failing canary stops the rollout as a failing
    batch does (the next test): the canary is the first batch, of one replacement
    (test_placement's test_a_new_version_replaces_node_by_node_with_the_canary_first)."""
    with client_load() as load:
        result = deploy(tmp_path, [web("2.0.0", update={"canary": 1})])
    expect_success(result, BOARDS, changed="any")
    assert "canary 1/2" in result.stdout and "batch 2/2" in result.stdout
    assert load.result["failed"] == 0, load.result
    assert load.result["ok"] > 20 and set(load.result["versions"]) == {"1.0.0", "2.0.0"}, load.result
    images = {node: board(node, "podman", "inspect", "--format", "{{.ImageName}}", "pico-web-0").strip()
              for node in BOARDS}
    assert all(image.endswith("pico/demo:2.0.0") for image in images.values()), images


def test_a_version_whose_health_fails_is_rolled_back_on_every_node_it_touched(first_deploy, tmp_path):
    """The first batch gets the failing version and goes back; the next is never touched. (A batch
    of two boards rolled back: test_fleet's test_a_rollback_waits_as_long_as_the_previous_...)"""
    before = {node: containers(node) for node in BOARDS}
    broken = web("2.0.0", env={"DEMO_FAIL_HEALTH": "1"}, update={"batch_size": 1, "healthy_deadline": 15})
    with client_load() as load:
        result = deploy(tmp_path, [broken])
    expect_refused(result, BOARDS, "Rollout of web to pico/demo:2.0.0 failed", "Rolled back:", unchanged=[])
    assert AGENT_ON_THE_FAILING_CHECK.search(result.text), result.tail()
    assert load.result["failed"] == 0, load.result
    after = {node: containers(node) for node in BOARDS}
    touched = [node for node in BOARDS if after[node] != before[node]]
    assert len(touched) == 1 and touched[0] in result.text
    untouched = next(node for node in BOARDS if node not in touched)
    assert after[untouched] == before[untouched]
    tags = {tuple(t) for _, _, t in versions_in_discovery()}
    assert len(tags) == 1 and len(versions_in_discovery()) == 2  # all back on one spec, all healthy


def test_draining_a_node_moves_its_replica_and_undraining_gives_it_one_back(first_deploy, tmp_path):
    with client_load() as load:
        result = deploy(tmp_path, [web("2.0.0")], "-e", f"node={VICTIM}", playbook="playbooks/drain.yml")
    expect_success(result, BOARDS, changed="any")
    assert load.result["failed"] == 0, load.result
    assert containers(VICTIM) == {}
    assert plan_on(CLIENT)["drained"] == [VICTIM]
    assert VICTIM not in {node for node, _, _ in versions_in_discovery()}
    assert len(versions_in_discovery()) == 2
    # Undraining gives it a replica back. (That a later deploy keeps a drained node drained is the
    # planner's unit test, test_a_drained_node_stays_drained...; that a deploy with nothing to do
    # changes nothing, the board-lost test's last run.)
    back = deploy(tmp_path, [web("2.0.0")], "-e", f"node={VICTIM}", "-e", "undrain=true", playbook="playbooks/drain.yml")
    expect_success(back, BOARDS, changed="any")
    assert sorted(node for node, _, _ in versions_in_discovery()) == sorted(BOARDS)


def test_status_shows_services_and_nodes(first_deploy, tmp_path):
    text = deploy(tmp_path, [web("2.0.0")], playbook="playbooks/status.yml")
    expect_unchanged(text, BOARDS)
    # Molecule's ansible.cfg prints results as JSON, as a stock one does: the table comes as a list
    # of lines, one row a line, not one string full of \n.
    assert re.search(r'^\s*"\s*web\s+2/2\s', text.stdout, re.M), text.tail()
    table = "\n".join(re.sub(r'^\s*"(.*?)",?$', r"\1", line) for line in text.stdout.splitlines())
    assert re.search(r"^\s*web\s+2/2\s+pico/demo:2\.0\.0\s+molecule-pizero:1 molecule-pizero2:1",
                     table, re.M), table[-2000:]
    assert re.search(r"^\s*molecule-pizero\s+up\s+armv6l\s+pizero\s+balanced\s+48/352 MiB\s+0\.2/1\s+web:1", table, re.M), table[-2000:]
    assert re.search(r"^\s*molecule-pizero2\s+up\s+aarch64\s+pizero2\s+balanced\s+48/352 MiB\s+0\.2/4\s+web:1", table, re.M)
    # For a program: the message is the status as JSON (read here through Ansible's json callback).
    as_json = deploy(tmp_path, [web("2.0.0")], "-e", "status_format=json", playbook="playbooks/status.yml",
                     # Molecule's environment enables profile_tasks, which would print around the JSON.
                     env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_CALLBACKS_ENABLED": None})
    assert as_json.returncode == 0, as_json.tail()
    tasks = [task for play in json.loads(as_json.stdout)["plays"] for task in play["tasks"]]
    shown = next(t for t in tasks if t["task"]["name"] == "Show the status")
    status = json.loads(next(iter(shown["hosts"].values()))["msg"])
    # Beside the plan's web, the services the agent role pins to nodes (pico_agent_services):
    # the demo on every board, console on molecule-pizero.
    services = {s["name"]: (s["desired"], s["healthy"], s["pinned"]) for s in status["services"]}
    assert services == {"web": (2, 2, False), "demo": (2, 2, True), "console": (1, 1, True)}, services
    assert {n["name"]: (n["arch"], n["power_profile"]) for n in status["nodes"]} == {
        "molecule-pizero": ("armv6l", "balanced"), "molecule-pizero2": ("aarch64", "balanced")}


def test_what_cannot_be_placed_changes_nothing(first_deploy, tmp_path):
    """Every other kind of bad declaration is refused the same way, before any task on a node
    changes anything (the planner's unit tests name each one)."""
    before = ({node: containers(node) for node in BOARDS}, plan_on(BOARDS[0]))
    result = deploy(tmp_path, [web("2.0.0", resources={"memory": "600m"})])
    expect_refused(result, BOARDS, "service web: 0 of 2 replicas fit (requests 600 MiB memory", "Nothing was changed")
    assert ({node: containers(node) for node in BOARDS}, plan_on(BOARDS[0])) == before
    # What an agent refuses in a service file (it sets PORT itself) the planner refuses with the
    # agent's own rule and message (module_utils/_service_spec.py), before any drain.
    result = deploy(tmp_path, [web("2.0.0", env={"PORT": "9000"})])
    expect_refused(result, BOARDS, "service web: env.PORT is set by the agent from port",
                   "(the agents refuse such a service file)")
    assert ({node: containers(node) for node in BOARDS}, plan_on(BOARDS[0])) == before


def test_a_rollout_lock_held_by_another_run_stops_this_one(first_deploy, tmp_path):
    lock = json.dumps({"owner": "other-controller:abc", "service": "web", "expires": int(time.time()) + 600})
    write_lock(lock)
    try:
        result = deploy(tmp_path, [web("1.0.0")])
        expect_refused(result, BOARDS, "holds the rollout lock until", "other-controller:abc", unchanged=BOARDS)
        write_lock(json.dumps({"owner": "crashed:xyz", "service": "web", "expires": int(time.time()) - 1}))
        after = deploy(tmp_path, [web("2.0.0")])  # an expired lease stops nobody
        expect_success(after, BOARDS)
        assert "holds the rollout lock" not in after.text
    finally:
        board(BOARDS[1], "rm", "-f", LOCK)


LOCK = "/run/pico-cloud-rollout.json"


def write_lock(text):
    subprocess.run(["docker", "exec", "-i", BOARDS[1], "sh", "-c", f"cat > {LOCK}"], input=text, text=True, check=True)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout} s; discovery: {versions_in_discovery()}")


def copies_by_node():
    """{node: [failover tag or None, ...]} of web's healthy instances, as the client's agent lists them."""
    found = {}
    for node, _, tags in versions_in_discovery():
        found.setdefault(node, []).append(next((t for t in tags if t.startswith("pico.failover:")), None))
    return {node: sorted(tags, key=repr) for node, tags in found.items()}


def test_a_board_lost_is_failed_over_folded_in_by_deploy_and_placed_again_once_back(first_deploy, tmp_path):
    """A board loses power: a peer's agent runs its replica, with no controller. deploy.yml, run
    while the board is down, folds that in: the board is unreachable, so its slot goes to a live
    board and the takeover retires once that replica serves. The board then boots with no
    controller and runs what its own files say (its old replica: one more than planned) until
    the next deploy.yml, which places one replica per board again; a rerun changes nothing."""
    victim, survivors = VICTIM, [b for b in BOARDS if b != VICTIM]
    tag = f"pico.failover:{victim}:"
    subprocess.run(["docker", "kill", victim], check=True, capture_output=True)
    try:
        wait_until(lambda: any(t and t.startswith(tag) for ts in copies_by_node().values() for t in ts), 90,
                   "the lost board's replica taken over by a peer")
        folded = deploy(tmp_path, [web("2.0.0")])
        assert folded.returncode == 4, folded.tail()  # 4: a host was unreachable
        recap = folded.recap
        assert recap[victim]["unreachable"] == 1 and all(recap[b]["failed"] == 0 for b in survivors), folded.tail()
        [survivor] = survivors
        assert sorted(plan_on(survivor)["services"]["web"]["slots"]) == [survivor, survivor]
        wait_until(lambda: copies_by_node() == {survivor: [None, None]}, 60,
                   "both planned replicas on the live board, the takeover retired")
    finally:
        subprocess.run(["docker", "start", victim], check=True, capture_output=True)
    # Back with no controller: its agent starts the replica its file names.
    wait_until(lambda: copies_by_node().get(victim) == [None], 180, "the board's own replica back")
    placed = deploy(tmp_path, [web("2.0.0")])
    expect_success(placed, BOARDS, changed="any")
    assert {b: copies_by_node().get(b) for b in BOARDS} == {b: [None] for b in BOARDS}
    assert sorted(plan_on(victim)["services"]["web"]["slots"]) == sorted(BOARDS)
    expect_unchanged(deploy(tmp_path, [web("2.0.0")]), BOARDS)


def test_a_service_no_longer_declared_is_removed(first_deploy, tmp_path):
    result = deploy(tmp_path, [])
    expect_success(result, BOARDS, changed="any")
    assert all(containers(node) == {} for node in BOARDS)
    assert "web" not in plan_on(BOARDS[0])["services"]
    assert versions_in_discovery() == []
