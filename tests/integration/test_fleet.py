"""A fleet is never all up: boards freeze or drop off the network in the middle of a run (a paused
container: its network stack answers TCP, nothing above it does), others are powered down on
purpose. The reachable boards converge, the ones away are named and the run exits 4, nothing is
left half-done, and a re-run once they are back converges them alone.

On the fleet lab (fleet_lab.py), after the energy tests: native-1 to native-4 on, native-5 and
native-6 powered down through their switch."""
import contextlib
import json
import re
import subprocess

import pytest

from browser import page_text, screenshot
from tests.integration.fleet_lab import (BOARDS, GIVE_UP_SOONER, agent, container, on_board, on_board_ok, powered, run,
                                         run_pausing, service, tunnel_to_agent)
from tests.integration.lab_access import PauseWhen, playbook, ssh_connections_to, wait_for
from tests.playbook_run import expect_away, expect_refused, expect_success

ON, OFF = ("native-1", "native-2", "native-3", "native-4"), ("native-5", "native-6")
SUMMARY_OF_OFF = "Powered down, left out on purpose: native-5 and native-6"
# What the energy tests left placed: deploy.yml stops what is no longer declared.
PLACED = [service("web", 8090), service("api", 8091), service("batch", 8092, memory="150m")]
# The demo, answering only 12 s after it starts (the image has no shell: its Python waits).
LAZY_START = ["/usr/bin/python3.11", "-c", "import runpy, signal, sys, time; "
              "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); time.sleep(12); "
              "runpy.run_path('/app/server.py', run_name='__main__')"]
# One replica per board that is on, in four batches of one: a rolling update the tests cut into.
SPREAD = service("spread", 8094, replicas=4, memory="16m", strategy="spread", min_nodes=4,
                 update={"batch_size": 1, "min_healthy_time": 2, "healthy_deadline": 90, "drain_time": 2})


def unpause(board):
    subprocess.run(["docker", "unpause", container(board)], capture_output=True, check=False)


def digests(board, *paths):
    return on_board(board, "sha256sum", *paths).split()[::2]


def peer_entry(board, peer):
    """The [Peer] section `board`'s WireGuard configuration holds for `peer`."""
    conf = on_board(board, "cat", "/etc/wireguard/wg0.conf")
    found = re.search(rf"^\[Peer\]\n# {re.escape(peer)} .*?(?=\n\n|\Z)", conf, re.M | re.S)
    assert found, conf
    return found.group(0)


def once(tries, board, result):
    """A run reaches a board once, first: one that is away, or lost during the run, is not tried
    again task by task (README, "A fleet is never all up"). Else: the tasks that went to it."""
    task, went = "", []
    for line in result.stdout.splitlines():
        if line.startswith("TASK ["):
            task = line.rstrip(" *")
        elif re.search(rf"\[{board}\]|-> {board}\b", line):
            went.append(f"{task}: {line.strip()[:160]}")
    playbook_name = next(arg for arg in result.args if arg.endswith(".yml"))
    assert tries == 1, f"{playbook_name} opened {tries} SSH connections to {board}, not 1:\n" + "\n".join(went)


def members(board):
    return {m["name"]: m["status"] for m in agent(board, "/v1/members")["members"]}


@pytest.fixture(scope="module")
def fleet(fleet_lab):
    assert [board for board in BOARDS if not powered(board)] == list(OFF)
    yield fleet_lab
    for board in ON:
        unpause(board)


def test_site_goes_on_without_a_board_lost_mid_run_and_a_rerun_converges_it_alone(fleet):
    """native-4 freezes as site.yml starts gathering facts: the others get the new time zone, it
    is named, its peers keep its WireGuard entry and it rejoins the mesh by itself once back.
    The run is not given the cluster's services (pico_services, deploy.yml's): what deploy.yml
    placed stays."""
    entry = peer_entry("native-1", "native-4")
    plan = json.loads(on_board("native-1", "cat", "/etc/pico-agent/plan.json"))
    holders = sorted({node for s in plan["services"].values() for node in s["slots"]} & {"native-1", "native-2", "native-3"})
    placed = {board: on_board(board, "ls", "/etc/pico-agent/services").split() for board in holders}
    assert placed and all(set(files) - {"demo.json"} for files in placed.values()), placed
    zone = {"pico_base_timezone": "Europe/Paris"}
    lost = PauseWhen("pico-en", r"TASK \[pico\.cloud\.base : Gather the facts the roles use\]", "native-4")
    try:
        with ssh_connections_to(fleet, "native-4") as connections:
            result = run_pausing(fleet, "site.yml", [], pauses=[lost], settings=zone)
            tries = connections.count()
    finally:
        unpause("native-4")
    assert lost.paused == "native-4"
    once(tries, "native-4", result)
    recap = expect_away(result, ["native-1", "native-2", "native-3", *OFF], ["native-4"])
    assert all(recap[board]["changed"] > 0 for board in ("native-1", "native-2", "native-3"))
    assert "Lost during the run: native-4 became unreachable or failed" in result.text
    assert "ansible-playbook site.yml --limit native-4 converges it alone" in result.text
    assert SUMMARY_OF_OFF in result.text
    assert all(recap[board]["unreachable"] == recap[board]["failed"] == 0 for board in OFF)
    assert on_board("native-1", "cat", "/etc/timezone").strip() == "Europe/Paris"
    assert on_board("native-4", "cat", "/etc/timezone").strip() != "Europe/Paris"
    assert {board: on_board(board, "ls", "/etc/pico-agent/services").split() for board in placed} == placed
    # Its peers kept its entry as their own configuration held it: back, it needs no playbook.
    assert peer_entry("native-1", "native-4") == entry
    address = re.search(r"AllowedIPs = ([0-9.]+)/32", entry).group(1)
    wait_for(lambda: on_board_ok("native-1", "ping", "-c", "1", "-W", "2", address), 60, "native-4 over the mesh")
    wait_for(lambda: members("native-1").get("native-4") == "alive", 60, "native-4 alive in the gossip")

    again = run(fleet, "site.yml", PLACED, settings=zone)
    recap = expect_success(again, BOARDS)
    assert recap["native-4"]["changed"] > 0
    assert [board for board in BOARDS if board != "native-4" and recap[board]["changed"]] == []
    assert on_board("native-4", "cat", "/etc/timezone").strip() == "Europe/Paris"


def test_status_the_power_report_logs_and_the_status_page_name_a_board_away(fleet, tmp_path):
    """native-3 is frozen: status.yml still lists every board of the inventory, native-3 as
    unreachable with its gossip state and the replicas the plan gives it, the powered-down ones
    with since when; the power report counts the others. Once the survivors have settled each of
    native-3's slots (a copy where one fits, else waiting for room: after the energy tests its
    150 MiB batch fits nowhere), logs.yml shows the service's instances on the boards reached, and
    the status page of a board that stayed up (a real browser, through an SSH tunnel) shows
    native-3 failed and what became of each slot; a screenshot is left in the test's directory.
    The playbooks exit 4 and name it."""
    plan = json.loads(on_board("native-1", "cat", "/etc/pico-agent/plan.json"))
    held = sorted(plan["nodes"]["native-3"]["replicas"])
    slots_away = [(name, index) for name, s in sorted(plan["services"].items())
                  for index, node in enumerate(s["slots"]) if node == "native-3"]
    assert slots_away, plan["services"]
    settled = {}

    def every_slot_settled():
        """Each of native-3's slots run elsewhere or waiting for room, as native-1's agent says."""
        seen = agent("native-1", "/v1/status")
        settled["waiting"] = {(w["service"], w["slot"]) for w in seen["waiting"] if w["owner"] == "native-3"}
        settled["copies"] = {(s["name"], int(i["takeover_of"].rsplit(" ", 1)[1])) for s in seen["services"]
                             for i in s["instances"] if (i["takeover_of"] or "").startswith("native-3 slot ")}
        return set(slots_away) <= settled["waiting"] | settled["copies"]

    subprocess.run(["docker", "pause", container("native-3")], check=True, capture_output=True)
    try:
        with ssh_connections_to(fleet, "native-3") as connections:
            status = run(fleet, "playbooks/status.yml", PLACED)
            once(connections.count(), "native-3", status)
            report = run(fleet, "playbooks/power-report.yml", PLACED)
            once(connections.count() - 1, "native-3", report)
            wait_for(every_slot_settled, 90, f"native-3's slots {slots_away} run elsewhere or waiting for room")
            name = slots_away[0][0]
            logs = run(fleet, "playbooks/logs.yml", PLACED, "-e", f"service={name}", "-e", "lines=3")
            once(connections.count() - 2, "native-3", logs)
        # The status page of a board that stayed up, in a real browser through an SSH tunnel.
        with tunnel_to_agent(fleet, "native-1") as url:
            page = page_text(url, tmp_path / "chromium")
            screenshot(url, tmp_path / "chromium", tmp_path / "status-page-native-3-away.png")
    finally:
        unpause("native-3")
    reached = ["native-1", "native-2", "native-4", *OFF]
    expect_away(status, reached, ["native-3"], changed=False)
    row = re.search(r"^\s*native-3 +unreachable, (alive|suspect|failed) in the gossip.*$", status.stdout, re.M)
    assert row and all(name in row.group(0) for name in held), status.tail()
    for board in OFF:
        assert re.search(rf"^\s*{board} +powered down since \d{{4}}-\d\d-\d\d \d\d:\d\d UTC", status.stdout, re.M), status.tail()
    for board in ("native-1", "native-2", "native-4"):
        assert re.search(rf"^\s*{board} +up ", status.stdout, re.M), status.tail()
    expect_away(report, reached, ["native-3"], changed=False)
    # (YAML output doubles the apostrophe of "cluster's")
    assert re.search(r"Not reached: native-3 .*its draw is not in the cluster", report.text), report.tail()

    expect_away(logs, reached, ["native-3"], changed=False)
    for board in sorted(set(plan["services"][name]["slots"]) - {"native-3", None}):
        assert re.search(rf"^\s*== {name} replica \d+ on {board} \(running, ", logs.stdout, re.M), logs.tail()
    for slot in sorted(slot for service, slot in settled["copies"] if service == name):
        assert re.search(rf"^\s*== {name} for native-3 slot {slot} on native-\d \(running, container "
                         rf"pico-{name}-for-native-3-{slot}\) ==$", logs.stdout, re.M), logs.tail()
    assert re.search(r"Not reached: native-3 .*the logs of its instances are not above", logs.text), logs.tail()

    assert re.search(r"^native-3 failed ", page, re.M), page
    for board in ("native-1", "native-2", "native-4"):
        assert re.search(rf"^{board} alive ", page, re.M), page
    for board in OFF:
        assert re.search(rf"^{board} powered down \d{{4}}-\d\d-\d\d ", page, re.M), page
    for name, slot in settled["waiting"]:
        assert re.search(rf"^{name} {slot} native-3 waits for room$", page, re.M), page
    for name, slot in settled["copies"]:
        assert re.search(rf"^{name} \d+ / \d+ .*\(for native-3 slot {slot}\)", page, re.M), page


def batch_board(number):
    """The board of batch `number` of the rollout, as the run announced its batches."""
    def find(output):
        text = "".join(output)
        return re.search(rf"batch {number}/\d+: (native-\d) ", text).group(1)
    return find


def test_deploy_goes_on_without_boards_lost_between_batches_and_inside_one(fleet):
    """A rolling update in four batches of one board: the board of batch 3 freezes while batch 1
    is being checked (between batches), the board of batch 2 freezes once its old instance is
    drained (inside its batch). The other two are updated, the lock is released and the plan is
    the same on both; the two that froze keep the old version until a re-run, which changes them
    and nothing else."""
    expect_success(run(fleet, "playbooks/deploy.yml", PLACED + [SPREAD]), BOARDS, changed="any")
    assert sorted(i["node"] for i in agent("native-1", "/v1/services/spread")["instances"]) == list(ON)
    between = PauseWhen("pico-en", r"TASK \[pico\.cloud\.deploy : Wait until the new instances are healthy", batch_board(3))
    inside = PauseWhen("pico-en", r"TASK \[pico\.cloud\.deploy : Let requests already under way finish\]", batch_board(2), nth=2)
    update = dict(SPREAD, image="pico/demo:2.0.0")
    try:
        with contextlib.ExitStack() as stack:
            connections = {board: stack.enter_context(ssh_connections_to(fleet, board)) for board in ON}
            result = run_pausing(fleet, "playbooks/deploy.yml", PLACED + [update], pauses=[between, inside])
            tries = {board: counter.count() for board, counter in connections.items()}
        lost = sorted({between.paused, inside.paused})
        reached = sorted(set(ON) - set(lost))
        assert None not in lost and len(lost) == 2, (between.paused, inside.paused)
        for board in lost:
            once(tries[board], board, result)
        expect_away(result, [*reached, *OFF], lost)
        for board in lost:
            assert re.search(rf"{board}: not rolled out there, or not all of it: spread \(replace", result.text), result.tail()
        # The reachable boards: updated, the lock released, one plan.
        for board in reached:
            assert json.loads(on_board(board, "cat", "/etc/pico-agent/services/spread.json"))["image"] == "pico/demo:2.0.0"
            assert "released" in json.loads(on_board(board, "cat", "/run/pico-cloud-rollout.json"))
        assert len({on_board(board, "cat", "/etc/pico-agent/plan.json") for board in reached}) == 1
    finally:
        for board in ON:
            unpause(board)
    # Back: they still hold the run's lock (they were frozen when it ended); the re-run takes it
    # over, updates them, and leaves the others' files as they were.
    files = ("/etc/pico-agent/plan.json", "/etc/pico-agent/services/spread.json")
    before = {board: digests(board, *files) for board in reached}
    wait_for(lambda: all(members("native-1").get(board) == "alive" for board in lost), 60, "the frozen boards alive")
    again = run(fleet, "playbooks/deploy.yml", PLACED + [update])
    expect_success(again, BOARDS, changed="any")
    assert {board: digests(board, *files) for board in reached} == before
    for board in lost:
        assert json.loads(on_board(board, "cat", "/etc/pico-agent/services/spread.json"))["image"] == "pico/demo:2.0.0"
    assert len({on_board(board, "cat", "/etc/pico-agent/plan.json") for board in ON}) == 1
    wait_for(lambda: sorted(i["node"] for i in agent("native-1", "/v1/services/spread")["instances"]
                            if not any(t.startswith("pico.failover:") for t in i["tags"])) == list(ON), 90,
             "every board serving spread again")


def test_deploy_refuses_a_limit_before_any_change_and_names_the_way(fleet):
    """Placement is planned over the whole group: a --limit would move the replicas of the boards
    outside it. The refusal names the one-service run instead."""
    before = digests("native-1", "/etc/pico-agent/plan.json")
    refused = run(fleet, "playbooks/deploy.yml", PLACED, "--limit", "native-1")
    expect_refused(refused, ["native-1"], "native-2, native-3, native-4, native-5, native-6 of group pico_nodes are not in "
                   "this play (--limit?). Placement is planned over the whole group: run without --limit, and use "
                   "-e service=NAME to roll out one service.")
    assert digests("native-1", "/etc/pico-agent/plan.json") == before


def test_with_auto_rollback_off_a_failed_batch_is_left_as_it_is(fleet):
    """update.auto_rollback: false: the batch whose new version fails its health check keeps it
    (an operator wants to look at it), nothing else is touched, and the run fails saying so. The
    next deploy of a good version converges it."""
    good = dict(SPREAD, image="pico/demo:2.0.0")
    broken = dict(good, env={"DEMO_FAIL_HEALTH": "1"},
                  update=dict(SPREAD["update"], healthy_deadline=15, auto_rollback=False))
    result = run(fleet, "playbooks/deploy.yml", PLACED + [broken])
    expect_refused(result, BOARDS, "Rollout of spread to pico/demo:2.0.0 failed",
                   "update.auto_rollback is off: the nodes were left as they are.", unchanged=[])
    # A failed rollout still ends with the fleet's summary: here it names the boards powered down,
    # and none of the boards the failure stopped as lost.
    assert SUMMARY_OF_OFF in result.text and "Lost during the run" not in result.text, result.tail()
    env = {board: json.loads(on_board(board, "cat", "/etc/pico-agent/services/spread.json")).get("env", {}) for board in ON}
    assert sorted(env.values(), key=len) == [{}, {}, {}, {"DEMO_FAIL_HEALTH": "1"}], env
    assert "Rolled back:" not in result.text
    expect_success(run(fleet, "playbooks/deploy.yml", PLACED + [good]), BOARDS, changed="any")
    assert all("env" not in json.loads(on_board(board, "cat", "/etc/pico-agent/services/spread.json")) for board in ON)


def test_a_rollback_waits_as_long_as_the_previous_version_takes_to_start(fleet):
    """A version that fails within its 3 s healthy_deadline is rolled back to one that takes 12 s
    to answer: the rollback waits for it (pico_deploy_rollback_deadline, 180 s), not for the
    failed version's 3 s alone, and the run says the previous version serves again. Both
    replicas are one batch of two boards: both get the failing version, both go back."""
    settled = PLACED + [dict(SPREAD, image="pico/demo:2.0.0")]
    lazy = service("lazy", 8095, replicas=2, min_nodes=2, memory="16m", command=LAZY_START)
    expect_success(run(fleet, "playbooks/deploy.yml", settled + [lazy]), BOARDS, changed="any")
    broken = dict(lazy, env={"DEMO_FAIL_HEALTH": "1"}, update=dict(lazy["update"], healthy_deadline=3, batch_size=2))
    result = run(fleet, "playbooks/deploy.yml", settled + [broken])
    expect_refused(result, BOARDS, "Rollout of lazy to pico/demo:1.0.0 failed", "Rolled back: native-",
                   "run the previous version again, healthy in discovery", unchanged=[])
    assert SUMMARY_OF_OFF in result.text, result.tail()
    nodes = sorted(instance["node"] for instance in agent("native-1", "/v1/services/lazy")["instances"])
    restored = re.search(r"Rolled back: (native-\d), (native-\d) run the previous version", result.text)
    assert restored and sorted(restored.groups()) == nodes and len(set(nodes)) == 2, (nodes, result.tail())
    for node in nodes:
        assert "env" not in json.loads(on_board(node, "cat", "/etc/pico-agent/services/lazy.json"))
    expect_success(run(fleet, "playbooks/deploy.yml", settled), BOARDS, changed="any")


def test_drain_and_key_rotation_go_on_without_a_board_away(fleet):
    """native-3 is frozen. Draining native-2 marks it drained in the plan every reachable board
    holds and moves its replicas; rotating native-1's key rotates it and keeps native-3's entry on
    its peers. Both exit 4 naming native-3; the rotation says native-3, and the boards still
    powered down, are cut off from native-1's new key, and gives the command that mends it. Until
    it is run, a deploy stops before it changes anything; a deploy that powers such a board up for
    room stops before it places anything there. Each says so and how to mend it."""
    reached = ["native-1", "native-2", "native-4", *OFF]
    entry = peer_entry("native-1", "native-3")
    old_key = peer_entry("native-2", "native-1")
    subprocess.run(["docker", "pause", container("native-3")], check=True, capture_output=True)
    try:
        with ssh_connections_to(fleet, "native-3") as connections:
            drain = run(fleet, "playbooks/drain.yml", PLACED, "-e", "node=native-2")
            once(connections.count(), "native-3", drain)
        expect_away(drain, reached, ["native-3"])
        plans = {board: json.loads(on_board(board, "cat", "/etc/pico-agent/plan.json")) for board in ("native-1", "native-2", "native-4")}
        assert len({json.dumps(plan, sort_keys=True) for plan in plans.values()}) == 1
        assert plans["native-1"]["drained"] == ["native-2"]
        assert not plans["native-1"]["nodes"].get("native-2", {}).get("replicas")

        off = [board for board in OFF if not powered(board)]  # the drain may have powered one up for room
        assert off, "no board powered down left"
        with ssh_connections_to(fleet, "native-3") as connections:
            rotate = run(fleet, "playbooks/rotate-wireguard-keys.yml", PLACED,
                         "-e", "pico_wireguard_rotate_nodes=native-1", "-e", "pico_wireguard_rotate_min_age_hours=0")
            once(connections.count(), "native-3", rotate)
        expect_away(rotate, reached, ["native-3"])
        mend = "ansible-playbook pico.cloud.rotate_wireguard_keys -e pico_wireguard_rotate_nodes=native-3"
        # The powered-down boards miss the new key as well (exit 4 is native-3's).
        for board in ("native-3", *off):
            assert re.search(rf"{board}: it still holds the old public keys of native-1\b", rotate.text), rotate.tail()
        assert mend in rotate.text, rotate.tail()
        assert peer_entry("native-2", "native-1") != old_key
        assert peer_entry("native-1", "native-3") == entry
    finally:
        unpause("native-3")
    wait_for(lambda: members("native-1").get("native-3") == "alive", 60, "native-3 alive in the gossip")
    # Replicas that each take a whole board: one more than there are empty boards on, so the
    # deploy must power one up.
    plan = json.loads(on_board("native-1", "cat", "/etc/pico-agent/plan.json"))
    used = {node for placed in plan["services"].values() for node in placed["slots"]}
    empty = [board for board in BOARDS if powered(board) and board not in used and board not in plan["drained"]]
    whole_board = service("more", 8093, replicas=len(empty) + 1, min_nodes=1, memory="200m")
    # native-3 is back, cut off from native-1: a deploy stops before it changes anything and says how to mend it.
    refused = run(fleet, "playbooks/deploy.yml", PLACED + [whole_board])
    expect_refused(refused, BOARDS, "native-3 holds no current mesh key of native-1 (rotated, or added, while it was away)",
                   mend)
    assert not any(powered(board) for board in off)
    expect_success(run(fleet, "playbooks/rotate-wireguard-keys.yml", PLACED, "-e", "pico_wireguard_rotate_nodes=native-3"),
                   BOARDS, changed="any")
    address = re.search(r"AllowedIPs = ([0-9.]+)/32", peer_entry("native-3", "native-1")).group(1)
    wait_for(lambda: on_board_ok("native-3", "ping", "-c", "1", "-W", "2", address), 60, "native-1 over the mesh from native-3")
    # A board the deploy powers up for room that missed the rotation: it stops before it places anything there.
    try:
        woken = run(fleet, "playbooks/deploy.yml", PLACED + [whole_board])
        up = [board for board in off if powered(board)]
        assert woken.returncode != 0 and len(up) == 1, woken.tail()
        # native-1's key and native-3's (rotated by the command that mended native-3)
        assert f"{up[0]}, powered up for room, holds no current mesh key of native-1, native-3 (" in woken.text, woken.tail()
        assert f"rotate_wireguard_keys -e pico_wireguard_rotate_nodes={up[0]}, then deploy again" in woken.text
        assert "more" not in {i["service"] for i in agent("native-1", "/v1/health")["instances"]}
    finally:  # powered down again, as energy.yml left it
        for board in off:
            subprocess.run(["docker", "stop", "--time", "30", container(board)], capture_output=True, check=True)


# native-2: in a whole run of this module native-1's mesh key is rotated above while native-5 and
# native-6 are powered down, and a board powered up later does not reach native-1 over the mesh
# until it is rotated too. `make monitoring-lab` runs this test after the energy tests alone.
PROMETHEUS_ON = "native-2"


def prometheus_up(board=PROMETHEUS_ON):
    """{node: value of up} as the Prometheus on `board` has it now."""
    script = ("import json, urllib.request; print(json.dumps({r['metric'].get('node'): r['value'][1] for r in json.load("
              "urllib.request.urlopen('http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22pico-agents%22%7D'))"
              "['data']['result']}))")
    try:
        return json.loads(on_board(board, "python3", "-c", script))
    except subprocess.CalledProcessError:
        return {}  # not answering yet


def prometheus_targets(board=PROMETHEUS_ON):
    """What a failed wait shows: each target's node, health and last error, and the agents' members."""
    script = ("import json, urllib.request; print(json.dumps([(t['labels'].get('node'), t['health'], t['lastError']) "
              "for t in json.load(urllib.request.urlopen('http://127.0.0.1:9090/api/v1/targets'))['data']['activeTargets']]))")
    return f"targets {on_board(board, 'python3', '-c', script).strip()}; members {members(board)}"


def test_prometheus_on_a_board_follows_the_fleet_through_the_agents(fleet, tmp_path):
    """The monitoring role on native-2 (Debian's Prometheus; a scrape every 5 s here): up is 1 for
    every board that is on; a powered-down board powered back up is scraped without touching
    Prometheus; a board that dies goes to 0. A rerun changes nothing."""
    extra = tmp_path / "monitoring.yml"
    extra.write_text(f"all:\n  children:\n    pico_monitoring:\n      hosts:\n        {PROMETHEUS_ON}:\n")
    args = ("playbooks/monitoring.yml", "-i", str(extra), "-e", "pico_monitoring_scrape_interval=5s")
    expect_success(playbook(fleet, *args, env=GIVE_UP_SOONER), [PROMETHEUS_ON], changed=True)
    expect_success(playbook(fleet, *args, env=GIVE_UP_SOONER), [PROMETHEUS_ON])
    rules = on_board(PROMETHEUS_ON, "python3", "-c", "import urllib.request; print(urllib.request.urlopen("
                     "'http://127.0.0.1:9090/api/v1/rules').read().decode())")
    assert '"PicoBoardDown"' in rules and '"pico:service_healthy:max"' in rules
    # The earlier tests' deploys may have powered a board back up for room: what is on is what runs.
    on = [board for board in BOARDS if powered(board)]
    off = [board for board in BOARDS if board not in on]
    assert off, "every board is on: none to power up"

    def every_board_on_up():
        # A powered-down board that left the cluster is no target; one cut without a leave is
        # failed in the gossip, a target at 0.
        up = prometheus_up()
        return all(up.get(board) == "1" for board in on) and all(up.get(board, "0") == "0" for board in off)

    wait_for(every_board_on_up, 60, f"up 1 for every board that is on ({', '.join(on)})", prometheus_targets)
    subprocess.run(["docker", "start", container(off[0])], check=True, capture_output=True)
    wait_for(lambda: prometheus_up().get(off[0]) == "1", 120, f"{off[0]}, powered up, scraped", prometheus_targets)
    dies = next(board for board in reversed(on) if board != PROMETHEUS_ON)
    subprocess.run(["docker", "kill", container(dies)], check=True, capture_output=True)
    wait_for(lambda: prometheus_up().get(dies) == "0", 90, f"{dies}, dead, at up 0", prometheus_targets)
