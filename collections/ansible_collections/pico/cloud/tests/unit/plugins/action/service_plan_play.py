"""Runs pico.cloud.service_plan as users do: in a play, through the real ansible-playbook, on
localhost (the action runs on the controller only). Shared by this collection's tests of the
action and by the repository's plan-contract test (tests/unit/test_plan_contract.py)."""
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


def service(name, image="app:1", replicas=2, **extra):
    return {"name": name, "image": image, "replicas": replicas, "port": 8000, **extra}
