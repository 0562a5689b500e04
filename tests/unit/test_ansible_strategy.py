"""The project's default strategy (plugins/strategy/mitogen_linear.py) with the real ansible-playbook CLI.

A Mitogen release that lags a new ansible-core must stop a run before its first task, with a message
that names the way out; the stock strategy must keep working whatever Mitogen supports."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The real CLI, in a process whose ansible-core pretends to be another release.
PRETEND = """
import os, sys, ansible
ansible.__version__ = sys.argv.pop(1)
if os.environ.get("HIDE_MITOGEN"):  # as in a Python where it is not installed
    sys.modules["mitogen"] = None
from ansible.cli.playbook import main
sys.argv[0] = "ansible-playbook"
main()
"""
PLAY = """\
- name: Write a marker
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write it
      ansible.builtin.copy:
        content: "ran\\n"
        dest: "{{ marker }}"
        mode: "0644"
"""


def run(tmp_path, core_version, **env):
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    marker = tmp_path / "marker"
    marker.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", PRETEND, core_version, "-i", "localhost,", "-c", "local", str(play),
         "-e", f"marker={marker}", "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **env})
    return result, marker.exists()


def installed_core():
    import ansible
    return ansible.__version__


def test_the_tested_pair_runs_with_mitogen(tmp_path):
    result, ran = run(tmp_path, installed_core())
    assert result.returncode == 0, result.stdout + result.stderr
    assert ran


def test_an_untested_ansible_core_stops_before_any_task_and_names_the_fixes(tmp_path):
    result, ran = run(tmp_path, "2.99.0")
    assert result.returncode != 0
    assert not ran
    message = " ".join((result.stdout + result.stderr).split())
    assert "Mitogen 0.3.54 is not known to work with ansible-core 2.99.0" in message
    assert "ANSIBLE_STRATEGY=linear ansible-playbook" in message
    assert "make bootstrap" in message
    assert "PICO_MITOGEN_UNTESTED_OK=1" in message


def test_without_mitogen_the_run_stops_and_says_how_to_get_it(tmp_path):
    result, ran = run(tmp_path, installed_core(), HIDE_MITOGEN="1")
    assert result.returncode != 0 and not ran
    message = " ".join((result.stdout + result.stderr).split())
    assert "Mitogen is not installed in the Python that runs ansible-playbook. Run `make bootstrap`" in message
    assert "ANSIBLE_STRATEGY=linear" in message


def test_the_stock_strategy_runs_whatever_mitogen_supports(tmp_path):
    result, ran = run(tmp_path, "2.99.0", ANSIBLE_STRATEGY="linear")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ran


def test_untested_ok_lets_a_newer_ansible_core_through(tmp_path):
    """With a table that stops one minor short of the installed ansible-core, which Mitogen does
    support, the check refuses, and the override lets the same run through."""
    plugins = tmp_path / "strategy"
    plugins.mkdir()
    source = (REPO / "plugins/strategy/mitogen_linear.py").read_text()
    major, minor = (int(n) for n in installed_core().split(".")[:2])
    table = '    "0.3.54": (2, 19),\n'
    assert table in source
    (plugins / "mitogen_linear.py").write_text(source.replace(table, f'    "0.3.54": ({major}, {minor - 1}),\n'))
    refused, ran = run(tmp_path, installed_core(), ANSIBLE_STRATEGY_PLUGINS=str(plugins))
    assert refused.returncode != 0 and not ran
    assert "is not known to work with ansible-core" in refused.stdout + refused.stderr
    allowed, ran = run(tmp_path, installed_core(), ANSIBLE_STRATEGY_PLUGINS=str(plugins), PICO_MITOGEN_UNTESTED_OK="1")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert ran
