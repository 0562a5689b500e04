"""Energy-aware placement on a lab of six native boards with a light load: energy.yml packs the
services on the fewest boards their declarations allow, powers the rest down through the lab's
switch (the board's container stops), with no request failed and no failover; deploy.yml powers
boards back up when it needs their room. On the fleet lab (fleet_lab.py): six boards of their own."""
import json
import subprocess
import time

import pytest

from lab.board_load import BoardLoad
from tests.integration.fleet_lab import BOARDS, CLIENT, agent, container, instances, on_board, powered, run, service
from tests.playbook_run import expect_success, expect_unchanged

LIGHT_LOAD = [service("web", 8090), service("api", 8091)]


@pytest.fixture(scope="module")
def consolidated(fleet_lab):
    """Spread over four boards first, as a cluster grows; then energy.yml under a client's load."""
    spread = [dict(s, strategy="spread") for s in LIGHT_LOAD]
    expect_success(run(fleet_lab, "playbooks/deploy.yml", spread), BOARDS, changed="any")
    used = {i["node"] for name in ("web", "api") for i in instances(name)}
    assert len(used) >= 3, used  # rendezvous spread them
    dry = run(fleet_lab, "playbooks/energy.yml", LIGHT_LOAD, "--check")
    expect_success(dry, BOARDS)
    assert "Would power down native-3, native-4, native-5, native-6" in dry.text and all(map(powered, BOARDS))
    with BoardLoad(container(CLIENT), "web", 8090) as load:
        result = run(fleet_lab, "playbooks/energy.yml", LIGHT_LOAD)
    assert expect_success(result, BOARDS)[CLIENT]["changed"] > 0
    return result, load.result


def test_a_light_load_is_packed_on_two_boards_and_the_other_four_are_powered_down(consolidated):
    result, load = consolidated
    assert "Powering down native-3, native-4, native-5, native-6" in result.text
    assert [board for board in BOARDS if not powered(board)] == ["native-3", "native-4", "native-5", "native-6"]
    plan = json.loads(on_board(CLIENT, "cat", "/etc/pico-agent/plan.json"))
    assert sorted(plan["powered_off"]) == ["native-3", "native-4", "native-5", "native-6"]
    assert {name: sorted(plan["services"][name]["slots"]) for name in ("web", "api")} == {
        "web": ["native-1", "native-2"], "api": ["native-1", "native-2"]}
    assert load["failed"] == 0 and load["ok"] > 10, load


def test_boards_powered_down_on_purpose_leave_and_are_not_failed_over(consolidated):
    members = {m["name"]: m["status"] for m in agent(CLIENT, "/v1/members")["members"]}
    assert [members[b] for b in BOARDS] == ["alive", "alive", "left", "left", "left", "left"]
    time.sleep(12)  # longer than failure detection and the failover hold-down
    for name in ("web", "api"):
        found = instances(name)
        assert sorted(i["node"] for i in found) == ["native-1", "native-2"], found
        assert not any(t.startswith("pico.failover:") for i in found for t in i["tags"]), found
    assert agent("native-2", "/v1/health")["failover"]["takeovers"] == [], agent("native-2", "/v1/health")


def test_a_rerun_changes_nothing_and_powered_down_boards_are_not_unreachable(consolidated, fleet_lab):
    result = run(fleet_lab, "playbooks/energy.yml", LIGHT_LOAD)
    expect_unchanged(result, BOARDS)
    assert "unreachable=1" not in result.text


def test_the_power_report_counts_the_powered_down_boards_and_status_leaves_them_out(consolidated, fleet_lab):
    result = run(fleet_lab, "playbooks/power-report.yml", LIGHT_LOAD)
    expect_success(result, BOARDS)
    assert "Cluster, 0 modelled boards on, 4 powered down (native-3, native-4, native-5, native-6) counted at 0 mA" in result.text
    expect_success(run(fleet_lab, "playbooks/status.yml", LIGHT_LOAD), BOARDS)


def test_a_deploy_that_needs_more_room_powers_boards_up_and_waits_for_them(consolidated, fleet_lab):
    heavier = LIGHT_LOAD + [service("batch", 8092, memory="150m")]
    result = run(fleet_lab, "playbooks/deploy.yml", heavier)
    recap = expect_success(result, BOARDS)
    assert recap["native-1"]["changed"] > 0 and recap["native-5"]["changed"] == recap["native-6"]["changed"] == 0
    assert "powering up native-3, native-4 for room" in result.text
    assert [board for board in BOARDS if not powered(board)] == ["native-5", "native-6"]
    assert sorted(i["node"] for i in instances("batch")) == ["native-3", "native-4"]
    plan = json.loads(on_board("native-3", "cat", "/etc/pico-agent/plan.json"))
    assert sorted(plan["powered_off"]) == ["native-5", "native-6"]


def test_a_board_that_does_not_come_back_is_named_and_nothing_is_rolled_out(consolidated, fleet_lab):
    # While native-5 is off, its SSH server is bound to loopback: it powers up but never answers.
    subprocess.run(["docker", "cp", "-", f"{container('native-5')}:/etc/ssh/sshd_config.d/"], check=True,
                   input=_tar("loopback-only.conf", b"ListenAddress 127.0.0.1\n"), capture_output=True)
    before = {board: on_board(board, "ls", "/etc/pico-agent/services") for board in ("native-1", "native-2")}
    more = LIGHT_LOAD + [service("batch", 8092, memory="150m"), service("more", 8093, memory="150m")]
    off_before = [board for board in BOARDS if not powered(board)]
    try:
        result = run(fleet_lab, "playbooks/deploy.yml", more, "-e", "pico_deploy_wake_timeout=20")
    finally:  # the boards as they were: powered down, SSH as it came (the fleet tests follow)
        subprocess.run(["docker", "exec", container("native-5"), "rm", "-f", "/etc/ssh/sshd_config.d/loopback-only.conf"],
                       capture_output=True, check=False)
        for board in off_before:
            subprocess.run(["docker", "stop", "--time", "30", container(board)], capture_output=True, check=True)
    assert result.returncode != 0
    assert "native-5 powered up for room but did not come back within 20 s. Nothing was rolled out." in result.text, result.tail()
    assert {board: on_board(board, "ls", "/etc/pico-agent/services") for board in ("native-1", "native-2")} == before
    assert "more" not in {i["service"] for i in agent(CLIENT, "/v1/health")["instances"]}


def _tar(name, data):
    import io
    import tarfile
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
