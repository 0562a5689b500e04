"""pico.cloud.packages is internal: run from a play, or from a role outside the collection, it
fails before anything changes, and says what to use instead."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_play(tmp_path, tasks, collections):
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    return subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           str(play)], capture_output=True, text=True, check=False,
                          env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(map(str, collections)),
                               "ANSIBLE_STRATEGY": "linear", "ANSIBLE_PYTHON_INTERPRETER": sys.executable})


def test_the_packages_role_refuses_a_play_and_a_foreign_role(tmp_path):
    include = {"ansible.builtin.include_role": {"name": "pico.cloud.packages"},
               "vars": {"pico_packages_install": ["no-such-package-pico"]}}
    direct = run_play(tmp_path, [include], [REPO / "collections"])
    assert direct.returncode == 2
    assert "pico.cloud.packages is internal to pico.cloud" in direct.stdout and "called from a play" in direct.stdout
    assert "List installed packages" not in direct.stdout  # refused before touching the node

    role = tmp_path / "ansible_collections/site/local/roles/mine/tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text("- ansible.builtin.include_role: {name: pico.cloud.packages}\n"
                                   "  vars: {pico_packages_install: [no-such-package-pico]}\n")
    foreign = run_play(tmp_path, [{"ansible.builtin.include_role": {"name": "site.local.mine"}}],
                       [REPO / "collections", tmp_path])
    assert foreign.returncode == 2 and "called from site.local.mine" in foreign.stdout
