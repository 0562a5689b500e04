"""The project's default strategy (plugins/strategy/mitogen_linear.py) with the real ansible-playbook CLI.

A Mitogen release that lags a new ansible-core must stop a run before its first task, with a message
that names the way out; the stock strategy must keep working whatever Mitogen supports."""
import json
import os
import re
import signal
import subprocess
import sys
import time
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
# A node that is this machine, reached the way Mitogen takes over (not a play of localhost).
INVENTORY = "controller-node ansible_connection=local ansible_python_interpreter={python}\n"
PLAY = """\
- name: Write a marker
  hosts: {hosts}
  gather_facts: false
  {connection}
  tasks:
    - name: Write what runs the task
      ansible.builtin.shell: {command}
"""
WRITE_THE_PARENT = "ps -o args= -p $PPID > {{ marker }}"


def play_files(tmp_path, hosts="controller-node", connection="", command=WRITE_THE_PARENT):
    """(play, inventory, marker) of a one-task play on the node the task's command leaves its marker on."""
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(hosts=hosts, connection=connection, command=command))
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(INVENTORY.format(python=sys.executable))
    marker = tmp_path / "marker"
    marker.unlink(missing_ok=True)
    return play, inventory, marker


def descendants(pid):
    """Every process below pid: Ansible's task workers start sessions of their own, so a signal to
    the run's process group does not reach them."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while listed
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found += children
        queue += children
    return found


def run(tmp_path, core_version, hosts="controller-node", connection="", **env):
    play, inventory, marker = play_files(tmp_path, hosts, connection)
    result = subprocess.run(
        [sys.executable, "-c", PRETEND, core_version, "-i", str(inventory), str(play), "-e", f"marker={marker}"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **env})
    return result, marker.read_text() if marker.exists() else None


def installed_core():
    import ansible
    return ansible.__version__


def test_the_tested_pair_runs_tasks_through_mitogen(tmp_path):
    result, parent = run(tmp_path, installed_core())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(mitogen:" in parent  # the task ran in Mitogen's interpreter on the node


def test_an_untested_ansible_core_stops_before_any_task_and_names_the_fixes(tmp_path):
    result, parent = run(tmp_path, "2.99.0")
    assert result.returncode != 0
    assert parent is None
    message = " ".join((result.stdout + result.stderr).split())
    assert "Mitogen 0.3.54 is not known to work with ansible-core 2.99.0" in message
    assert "ANSIBLE_STRATEGY=linear ansible-playbook" in message
    assert "make bootstrap" in message
    assert "PICO_MITOGEN_UNTESTED_OK=1" in message


def test_without_mitogen_the_run_stops_and_says_how_to_get_it(tmp_path):
    result, parent = run(tmp_path, installed_core(), HIDE_MITOGEN="1")
    assert result.returncode != 0 and parent is None
    message = " ".join((result.stdout + result.stderr).split())
    assert "Mitogen is not installed in the Python that runs ansible-playbook. Run `make bootstrap`" in message
    assert "ANSIBLE_STRATEGY=linear" in message


def test_the_stock_strategy_runs_whatever_mitogen_supports(tmp_path):
    result, parent = run(tmp_path, "2.99.0", ANSIBLE_STRATEGY="linear")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AnsiballZ_command.py" in parent  # a Python of its own per task (shell is command): the stock way


def test_a_play_on_the_controller_itself_runs_the_stock_way(tmp_path):
    """Molecule's create and destroy plays (localhost, connection local) wait on async jobs,
    which Mitogen's never finish there."""
    result, parent = run(tmp_path, installed_core(), hosts="localhost", connection="connection: local")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AnsiballZ_command.py" in parent


def test_a_run_killed_mid_task_leaves_nothing_in_the_temporary_directory(tmp_path):
    """The boards a run lost are kept in a file of that run (the strategy's _LOSSES): one with no
    name, so a run killed with SIGKILL, whose atexit never runs, leaves no directory behind."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    play, inventory, marker = play_files(tmp_path, command="touch {{ marker }} && sleep 60")
    run = subprocess.Popen([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(play),
                            "-e", f"marker={marker}"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                           env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "TMPDIR": str(temporary)})
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the task never started"
    finally:
        below = descendants(run.pid)
        os.killpg(run.pid, signal.SIGKILL)
        for pid in below:  # the task's worker, or it waits out the task's sleep and more
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run.wait()
    assert sorted(path.name for path in temporary.glob("pico-ansible-run-*")) == []


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
    refused, parent = run(tmp_path, installed_core(), ANSIBLE_STRATEGY_PLUGINS=str(plugins))
    assert refused.returncode != 0 and parent is None
    assert "is not known to work with ansible-core" in refused.stdout + refused.stderr
    allowed, parent = run(tmp_path, installed_core(), ANSIBLE_STRATEGY_PLUGINS=str(plugins), PICO_MITOGEN_UNTESTED_OK="1")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "(mitogen:" in parent


CPUS_PLAY = """\
- name: Write the CPUs a task worker may run on
  hosts: controller-node
  gather_facts: false
  tasks:
    - name: Write them (the lookup runs in the task's worker process on the controller)
      ansible.builtin.copy:
        content: "{{ lookup('ansible.builtin.pipe', 'grep Cpus_allowed_list /proc/self/status') }}"
        dest: "{{ marker }}"
        mode: "0644"
"""


def worker_cpus(tmp_path, **env):
    play = tmp_path / "cpus.yml"
    play.write_text(CPUS_PLAY)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(INVENTORY.format(python=sys.executable))
    marker = tmp_path / "cpus"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), str(play), "-e", f"marker={marker}"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **env})
    assert result.returncode == 0, result.stdout + result.stderr
    return marker.read_text().split(":")[1].strip()


def test_task_workers_are_not_pinned_to_one_cpu_on_a_small_controller(tmp_path):
    """Mitogen pins every task worker to one CPU; on a controller with 2 or 3 CPUs that makes a
    task's workers queue behind each other, so the project's strategy leaves placement to the
    kernel there (bench/ansible_speed.py measures the gain). PICO_MITOGEN_CPU_PINNING=1 brings
    Mitogen's placement back; with 4 CPUs or more it is kept."""
    allowed = os.sched_getaffinity(0)
    everything = f"{min(allowed)}-{max(allowed)}" if len(allowed) > 1 else str(min(allowed))
    unpinned, pinned = worker_cpus(tmp_path), worker_cpus(tmp_path, PICO_MITOGEN_CPU_PINNING="1")
    one_cpu = re.compile(r"\d+")
    assert one_cpu.fullmatch(pinned)
    if 2 <= (os.cpu_count() or 1) < 4:
        assert unpinned == everything
    else:
        assert one_cpu.fullmatch(unpinned)


WORKER_STATE_LOOKUP = """
import json, sys
from ansible.plugins.lookup import LookupBase
import ansible_mitogen.planner

class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        once = ansible_mitogen.planner._load_collections
        strategy = sys.modules.get(getattr(once, "__module__", ""))
        return [json.dumps({
            "pico_filters": "ansible_collections.pico.cloud.plugins.filter.mesh_address" in sys.modules,
            "builtin_filters": any(m.startswith("ansible.plugins.filter.core") for m in sys.modules),
            "collections_listed": len(getattr(strategy, "_collection_dirs", None) or []),
        })]
"""
WORKER_STATE_PLAY = """\
- name: Write what a task worker inherited
  hosts: controller-node
  gather_facts: false
  tasks:
    - name: Write it (the lookup is the task's only template, so the worker itself imported nothing yet)
      ansible.builtin.copy:
        content: "{{ lookup('worker_state') }}"
        dest: "{{ marker }}"
        mode: "0644"
"""


def test_task_workers_start_with_the_plugin_caches_warm(tmp_path):
    """Every task on every host runs in a freshly forked worker: what the top-level process has
    imported and listed before the fork, a worker does not do again (on a 30-board lab most of a
    changed=0 site.yml's controller time went there; docs/ansible-speed.md)."""
    (tmp_path / "lookup").mkdir()
    (tmp_path / "lookup" / "worker_state.py").write_text(WORKER_STATE_LOOKUP)
    play = tmp_path / "state.yml"
    play.write_text(WORKER_STATE_PLAY)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(INVENTORY.format(python=sys.executable))
    marker = tmp_path / "state.json"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), str(play), "-e", f"marker={marker}"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_LOOKUP_PLUGINS": str(tmp_path / "lookup")})
    assert result.returncode == 0, result.stdout + result.stderr
    state = json.loads(marker.read_text())
    assert state["pico_filters"] and state["builtin_filters"], state
    assert state["collections_listed"] > 0, state  # Mitogen's per-task listing is answered from the list made once


# The real CLI, counting the task workers it forks (a worker's start is called in this process).
COUNT_WORKERS = """
import atexit, collections, json, sys
from ansible.executor.process.worker import WorkerProcess
forks, path = collections.Counter(), sys.argv.pop(1)
start = WorkerProcess.start
def counted(self):
    forks[self._task.get_name()] += 1
    return start(self)
WorkerProcess.start = counted
atexit.register(lambda: open(path, "w").write(json.dumps(forks)))
from ansible.cli.playbook import main
sys.argv[0] = "ansible-playbook"
main()
"""
# Two nodes, so a condition can differ between them; every kind of task the strategy runs without
# a worker, next to the ways its result is used later (register, rescue, run_once, handlers).
NO_WORKER_PLAY = """\
- name: Skipped and controller-only tasks
  hosts: all
  gather_facts: false
  tasks:
    - name: Skipped everywhere
      ansible.builtin.command: echo never
      when: false
      register: never
    - name: Skipped on node-b only
      ansible.builtin.command: echo {{ inventory_hostname }}
      changed_when: false
      when: inventory_hostname == 'node-a'
      register: only_a
    - name: Skipped include
      ansible.builtin.include_tasks: missing-file.yml
      when: false
    - name: Condition on a connection variable the worker adds
      ansible.builtin.command: echo here
      changed_when: false
      when: ansible_host is defined
    - name: Set a fact
      ansible.builtin.set_fact:
        recorded: "{{ inventory_hostname }}-{{ only_a is skipped }}"
    - name: Hidden fact
      ansible.builtin.set_fact:
        hidden: not-for-the-output
      no_log: true
    - name: Validate the arguments
      ansible.builtin.validate_argument_spec:
        argument_spec:
          recorded: {type: str, required: true}
    - name: Check the results so far
      ansible.builtin.assert:
        that:
          - never is skipped and never.false_condition == false
          - (only_a is skipped) == (inventory_hostname == 'node-b')
          - recorded == inventory_hostname ~ '-' ~ (inventory_hostname == 'node-b')
    - name: An assert that fails on node-b, rescued
      block:
        - name: Fail on node-b
          ansible.builtin.assert:
            that: inventory_hostname == 'node-a'
            fail_msg: not node-a
      rescue:
        - name: Say what was rescued
          ansible.builtin.debug:
            msg: "rescued: {{ ansible_failed_result.msg }}"
    - name: Once for all
      ansible.builtin.set_fact:
        first: "{{ inventory_hostname }}"
      run_once: true
    - name: Notify a skipped handler
      ansible.builtin.command: echo notify
      changed_when: true
      notify: Skipped handler
    - name: Fail node-b
      ansible.builtin.fail:
        msg: node-b stops here
      when: inventory_hostname == 'node-b'
    - name: Only node-a is left
      ansible.builtin.debug:
        msg: "{{ first }}"
  handlers:
    - name: Skipped handler
      ansible.builtin.command: echo handler
      when: false
"""
NO_WORKER_INVENTORY = "node-a ansible_connection=local ansible_python_interpreter={python}\nnode-b ansible_connection=local ansible_python_interpreter={python}\n"
VOLATILE = {"start", "end", "delta", "duration", "_ansible_no_log_warnings"}


def run_counted(tmp_path, strategy):
    play, inventory, forks = tmp_path / "play.yml", tmp_path / "hosts.ini", tmp_path / f"forks-{strategy}.json"
    play.write_text(NO_WORKER_PLAY)
    inventory.write_text(NO_WORKER_INVENTORY.format(python=sys.executable))
    result = subprocess.run(
        [sys.executable, "-c", COUNT_WORKERS, str(forks), "-i", str(inventory), str(play)],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STRATEGY": strategy,
             "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    assert result.returncode == 2, result.stdout + result.stderr  # node-b failed on purpose
    output = json.loads(result.stdout)
    results = {}
    for play_result in output["plays"]:
        for task in play_result["tasks"]:
            for host, outcome in task["hosts"].items():
                results[(task["task"]["name"], host)] = {
                    key: value for key, value in outcome.items() if key not in VOLATILE and not key.startswith("_")}
    return results, output["stats"], json.loads(forks.read_text()), result.stdout


def test_skipped_and_controller_only_tasks_need_no_worker_and_end_as_with_the_stock_strategy(tmp_path):
    """A worker is a fork of the controller for each task and host: on 30 boards most of a
    changed=0 site.yml's controller time (docs/ansible-speed.md). The project's strategy runs a task
    whose condition is false, and assert/debug/fail/set_fact/validate_argument_spec, without one;
    every result, the facts they set and the stats must be the stock strategy's."""
    stock, stock_stats, stock_forks, _ = run_counted(tmp_path, "linear")
    ours, our_stats, our_forks, output = run_counted(tmp_path, "mitogen_linear")
    assert ours == stock
    assert our_stats == stock_stats
    assert "not-for-the-output" not in output
    # The stock strategy forks for every task and host; the project's only where a module runs.
    assert stock_forks["Skipped everywhere"] == 2 and stock_forks["Set a fact"] == 2
    assert set(our_forks) == {"Skipped on node-b only", "Condition on a connection variable the worker adds",
                              "Notify a skipped handler"}, our_forks
    assert our_forks["Skipped on node-b only"] == 1  # node-a's runs; node-b's is skipped here
