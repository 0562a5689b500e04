"""pico.cloud.service_plan through the real ansible-playbook: it runs on the controller only, so a
play on localhost exercises it whole (only one service, drained nodes, members that are down,
the placement diff, check mode)."""
import json
import os
import subprocess
import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[6]

NODES = [{"name": n, "arch": "armv6l", "board": "pizero", "memory": "352m", "cpus": 1, "images": ["app:1", "app:2"]}
         for n in ("pz-1", "pz-2", "pz-3")]


def plan(tmp_path, check=False, collections=COLLECTIONS, **args):
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Plan", "pico.cloud.service_plan": args, "register": "result"},
        {"name": "Show", "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(tmp_path / "out.json")},
         "check_mode": False}]}]))
    result = subprocess.run([ansible_tool("ansible-playbook"), "-i", "localhost,", "-c", "local", str(play), "--diff",
                             *(["--check"] if check else [])],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_STRATEGY": "linear",
                                 "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    out = json.loads((tmp_path / "out.json").read_text()) if result.returncode == 0 else None
    return result, out


def ansible_tool(name):
    """The ansible-* command beside this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def ansible_galaxy(*args, cwd, collections):
    # collections: the only path galaxy looks at, or it finds this checkout's pico.cloud (through
    # the project's ansible.cfg) and installs nothing.
    subprocess.run([ansible_tool("ansible-galaxy"), *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections)})


def service(name, image="app:1", replicas=2):
    return {"name": name, "image": image, "replicas": replicas, "port": 8000}


def test_a_first_plan_changes_and_shows_the_placement_as_its_diff(tmp_path):
    result, out = plan(tmp_path, services=[service("web")], nodes=NODES)
    assert result.returncode == 0, result.stdout
    assert out["changed"] is True and out["plan"]["generation"] == 1
    assert "+web: " in result.stdout  # the diff is the placement change
    assert [b["steps"][0]["action"] for r in out["rollouts"] for b in r["batches"]] == ["start"]


def test_only_one_service_changes_the_others_keep_their_placement(tmp_path):
    _, first = plan(tmp_path, services=[service("web"), service("api")], nodes=NODES)
    held = {n: {} for n in ("pz-1", "pz-2", "pz-3")}
    for node, files in first["node_files"].items():
        held[node] = files
    _, only = plan(tmp_path, services=[service("web", image="app:2", replicas=3), service("api", replicas=3)],
                   nodes=NODES, current=first["plan"], node_services=held, only="web")
    assert [r["service"] for r in only["rollouts"]] == ["web"]
    assert only["plan"]["services"]["api"] == first["plan"]["services"]["api"]
    assert len(only["plan"]["services"]["web"]["slots"]) == 3


def test_a_drained_node_stays_drained_and_a_member_that_is_down_takes_nothing(tmp_path):
    _, first = plan(tmp_path, services=[service("web", replicas=3)], nodes=NODES, drain="pz-2")
    assert first["plan"]["drained"] == ["pz-2"] and "pz-2" not in first["plan"]["services"]["web"]["slots"]
    _, later = plan(tmp_path, services=[service("web", replicas=3)], nodes=NODES, current=first["plan"])
    assert later["plan"]["drained"] == ["pz-2"]
    _, back = plan(tmp_path, services=[service("web", replicas=3)], nodes=NODES, current=first["plan"], undrain="pz-2")
    assert back["plan"]["drained"] == [] and "pz-2" in back["plan"]["services"]["web"]["slots"]
    _, down = plan(tmp_path, services=[service("web", replicas=2)], nodes=NODES[:2] + ["pz-3"])
    assert "pz-3" not in down["plan"]["services"]["web"]["slots"]


def test_a_bad_declaration_fails_the_task_with_the_reason(tmp_path):
    result, _ = plan(tmp_path, services=[{"name": "web", "image": "app:1", "replicas": 9, "resources": {"memory": "300m"}}],
                     nodes=NODES)
    assert result.returncode != 0
    assert "service web: 3 of 9 replicas fit" in " ".join(result.stdout.split())
    result, _ = plan(tmp_path, services=[service("web")], nodes=NODES, drain="pz-9")
    assert "cannot drain pz-9: not a node of this cluster" in " ".join(result.stdout.split())


def test_the_planner_works_from_an_installed_collection(tmp_path):
    """Sites install the built collection, not this checkout: the action and its module_utils
    must travel in the archive."""
    installed = tmp_path / "installed"
    ansible_galaxy("collection", "build", str(COLLECTIONS / "pico/cloud"),
                   "--output-path", str(tmp_path), cwd=tmp_path, collections=installed)
    archive = next(tmp_path.glob("pico-cloud-*.tar.gz"))
    ansible_galaxy("collection", "install", str(archive), "-p", str(installed), cwd=tmp_path, collections=installed)
    assert (installed / "ansible_collections/pico/cloud/plugins/module_utils/placement.py").is_file()
    result, out = plan(tmp_path, services=[service("web")], nodes=NODES, collections=installed)
    assert result.returncode == 0, result.stdout
    _, from_checkout = plan(tmp_path, services=[service("web")], nodes=NODES)
    assert len(out["plan"]["services"]["web"]["slots"]) == 2
    assert out["plan"] == from_checkout["plan"]  # one planner: the same inputs give the same plan


def test_the_plan_carries_what_agents_need_to_fail_over_and_the_agent_takes_it(tmp_path):
    """The contract between deploy.yml and the agents: the agent's own parser reads the plan."""
    from pico_agent.failover import assign, parse_plan

    web = dict(service("web", replicas=2), env={"TOKEN": "s3cret"}, resources={"memory": "64m", "cpu": 0.2})
    result, out = plan(tmp_path, services=[web], nodes=NODES + ["pz-4"], cluster_id="0123456789abcdef")
    assert result.returncode == 0, result.stdout
    assert "s3cret" not in result.stdout.split("TASK [Show]")[0]  # the planner's diff shows slots, never specs
    raw = out["plan"]
    assert raw["cluster"] == "0123456789abcdef"
    entry = raw["services"]["web"]["failover"]
    assert entry["candidates"] == ["pz-1", "pz-2", "pz-3"]  # pz-4 is down and unknown: no architecture
    assert entry["requests"] == {"memory": 64 * 1024 * 1024, "cpu": 0.2}
    assert entry["specs"]["armv6l"]["replicas"] == 1 and entry["specs"]["armv6l"]["env"] == {"TOKEN": "s3cret"}
    parsed = parse_plan(raw)
    owner = raw["services"]["web"]["slots"][0]
    chosen, waiting = assign(parsed, failed={owner}, alive={"pz-1", "pz-2", "pz-3"} - {owner})
    assert not waiting and set(chosen.values()) <= {"pz-1", "pz-2", "pz-3"} - {owner}
