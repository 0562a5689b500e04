"""What the collection ships for monitoring (monitoring/): Prometheus rules that promtool checks
and exercises with its rule unit tests, and a Grafana dashboard; both ask only for metrics a real
agent exports."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from agentlab import DOCKER_SOCKET, AgentLab, wait_for
from pico_agent.catalog import Catalog
from pico_agent.metrics import Metrics

MONITORING = Path(__file__).resolve().parents[2] / "collections/ansible_collections/pico/cloud/monitoring"
RULES = MONITORING / "pico-cloud.rules.yml"
RULE_TESTS = MONITORING / "pico-cloud.rules.test.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
# Exported only where the board's thermal zone and Raspberry Pi firmware flags exist (no lab node
# or CI machine has them); their names are checked against the agent's rendering with both.
BOARD_ONLY = {"pico_node_temperature_celsius", "pico_node_throttled", "pico_node_throttled_since_boot"}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: scripts/bootstrap.sh (make bootstrap) puts Debian's into .venv/bin"
    return path


def queries() -> list[str]:
    rules = [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return rules + [target["expr"] for panel in panels for target in panel["targets"]]


def metrics_asked_for() -> set[str]:
    """The agents' metric names the queries use (recording rules' own are pico:..., Prometheus' up)."""
    return {name for expr in queries() for name in re.findall(r"\bpico_[a-z0-9_]+", expr)}


def exported(text: str) -> set[str]:
    """Names a /metrics text exports, a summary's _sum and _count included."""
    names = set()
    for kind_line in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        name, kind = kind_line
        names |= {name, f"{name}_sum", f"{name}_count"} if kind == "summary" else {name}
    return names


def test_the_rules_are_valid_and_their_unit_tests_pass():
    for command in (["check", "rules", RULES.name], ["test", "rules", RULE_TESTS.name]):
        run = subprocess.run([promtool(), *command], capture_output=True, text=True, cwd=MONITORING)
        assert run.returncode == 0, f"promtool {' '.join(command)}:\n{run.stdout}{run.stderr}"


def test_the_dashboard_is_self_contained_and_every_panel_queries_the_chosen_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    assert not re.search(r"https?://", DASHBOARD.read_text())  # boards are often offline: nothing fetched


def test_every_metric_the_rules_and_dashboard_ask_for_is_one_a_real_agent_exports(tmp_path):
    lab = AgentLab(tmp_path, 1, docker_socket=DOCKER_SOCKET, prefix="metrics")
    # A Pi Zero's agent, as the role configures it (the power estimate is for modelled boards),
    # with the record the power role leaves.
    record = tmp_path / "pico_power.fact"
    record.write_text(json.dumps({"profile": "eco", "settings": {"hdmi": False, "leds": False}, "boot_config": {}}))
    lab.nodes[0].extra_config.update(board="pizero", power_record_file=str(record))
    lab.start()
    try:
        node = lab.nodes[0]
        text = wait_for(lambda: (lambda reply: reply[0] == 200 and reply[1])(node.get("/metrics")), 30,
                        what="the agent's /metrics")
    finally:
        lab.stop()
    asked = metrics_asked_for()
    assert {"pico_service_desired", "pico_service_instances", "pico_failover_waiting", "pico_power_estimate_watts"} <= asked
    missing = asked - BOARD_ONLY - exported(text)
    assert not missing, f"asked for but not exported by the agent: {sorted(missing)}"
    # The board-only ones, as an agent on a Raspberry Pi renders them.
    (tmp_path / "temp").write_text("48312\n")
    (tmp_path / "throttled").write_text("50005\n")
    on_a_pi = Metrics().render(Catalog("a"), [], {}, 0, True, thermal=tmp_path / "temp", throttled=tmp_path / "throttled")
    assert asked & BOARD_ONLY <= exported(on_a_pi)
