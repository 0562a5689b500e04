# The project's default strategy (ansible.cfg): Mitogen for Ansible's `mitogen_linear`, after a check
# that this ansible-core is one the installed Mitogen release is known to work with. Mitogen keeps
# one Python interpreter per node instead of starting one per task, which is most of a task's cost
# on a Pi Zero (measured in bench/ansible_speed.py). Mitogen patches Ansible's internals, and a
# release may lag a new ansible-core; without this check the failure shows up mid-play as a
# traceback. The collection itself never needs Mitogen: ANSIBLE_STRATEGY=linear runs the stock one.
from __future__ import annotations

import fcntl
import glob
import os
import tempfile

from ansible import __version__ as ANSIBLE_CORE_VERSION
from ansible import constants as C
from ansible.collections.list import list_collection_dirs
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.executor.task_executor import TaskExecutor
from ansible.executor.task_result import _WireTaskResult
from ansible.plugins import loader as plugin_loader
from ansible.plugins.loader import filter_loader, test_loader
from ansible.utils.fqcn import add_internal_fqcns
from ansible._internal._task import TaskContext
from ansible._internal._templating._engine import TemplateEngine

# Newest ansible-core (major, minor) each Mitogen release ran the project's suite with. Add a line
# after a green `make test` with the new pair; docs/ansible-speed.md says how.
TESTED = {
    "0.3.54": (2, 19),
}
UNTESTED_OK = "PICO_MITOGEN_UNTESTED_OK"
STOCK = "ANSIBLE_STRATEGY=linear"


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _check() -> None:
    try:
        import mitogen  # noqa: F401 (only its version is needed here)
    except ImportError:
        raise AnsibleError(
            "ansible.cfg selects the Mitogen strategy, but Mitogen is not installed in the Python that runs "
            "ansible-playbook. Run `make bootstrap` (it installs the pinned Mitogen into .venv) and use "
            f".venv/bin/ansible-playbook, or run with the stock strategy: {STOCK} ansible-playbook ...") from None
    mitogen_version = ".".join(str(n) for n in mitogen.__version__)
    core = _version(ANSIBLE_CORE_VERSION)[:2]
    newest = TESTED.get(mitogen_version)
    if os.environ.get(UNTESTED_OK) or (newest is not None and core <= newest):
        return
    tested = ", ".join(f"Mitogen {m} with ansible-core up to {a}.{b}" for m, (a, b) in TESTED.items())
    raise AnsibleError(
        f"Mitogen {mitogen_version} is not known to work with ansible-core {ANSIBLE_CORE_VERSION} "
        f"(this project tested: {tested}). Either run with the stock strategy ({STOCK} "
        "ansible-playbook ...: everything works, each task is only slower), or reinstall the pinned pair "
        f"with `make bootstrap`, or, once Mitogen's changelog lists this ansible-core, upgrade Mitogen and "
        f"set {UNTESTED_OK}=1 until its pair is added to plugins/strategy/mitogen_linear.py.")


_check()

# Imported by its canonical name, as Mitogen's own proxy module does, so its classes exist once.
import ansible_mitogen.affinity  # noqa: E402
import ansible_mitogen.loaders  # noqa: E402
import ansible_mitogen.planner  # noqa: E402
import ansible_mitogen.strategy  # noqa: E402

_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

KEEP_CPU_PINNING = "PICO_MITOGEN_CPU_PINNING"


def _unpin_small_controllers() -> None:
    """Leave CPU placement to the kernel on a controller with fewer than 4 CPUs.

    There Mitogen reserves CPU 0 for its multiplexer and pins the top-level process, every task
    worker and SSH to the one CPU left, so the workers of a task queue behind each other.
    bench/ansible_speed.py measures both: on a 2-CPU controller a changed=0 site.yml took 25.1 s
    unpinned against 32.3 s pinned. On 4 or more CPUs Mitogen's placement is kept.
    """
    if os.environ.get(KEEP_CPU_PINNING) or (os.cpu_count() or 1) >= 4:
        return
    ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()


_unpin_small_controllers()


# Ansible forks a worker process for every task on every host, and a worker starts from what the
# top-level process holds. Two things each worker otherwise does again, on a 30-board lab most of
# a changed=0 site.yml's controller time (bench/fleet.py; docs/ansible-speed.md):
# - Mitogen lists every installed collection for each collection module it runs (about 90
#   collections with the `ansible` package: a directory walk per task and host);
# - Jinja's filters and tests are found and imported on first use.
# Both are done once here, before the first worker forks. The list of installed collections
# cannot change during a run.
_collection_dirs: list[str] | None = None


def _installed_collection_dirs() -> list[str]:
    global _collection_dirs
    if _collection_dirs is None:
        _collection_dirs = [path.decode("utf-8") for path in list_collection_dirs()]
    return _collection_dirs


def _load_collections_once(invocation) -> None:
    invocation._extra_sys_paths.update(_installed_collection_dirs())


def _warm_plugin_caches() -> None:
    """Import the builtin filters and tests, and those of the collections in collections_path."""
    _installed_collection_dirs()
    filter_loader.get("ansible.builtin.to_json")  # loads every builtin filter, and tests below
    test_loader.get("ansible.builtin.match")
    for root in C.COLLECTIONS_PATHS:
        for kind, loader in (("filter", filter_loader), ("test", test_loader)):
            pattern = os.path.join(os.path.expanduser(root), "ansible_collections", "*", "*", "plugins", kind, "*.py")
            for path in sorted(glob.glob(pattern)):
                namespace, collection = path.split(os.sep)[-5:-3]
                name = os.path.splitext(os.path.basename(path))[0]
                if not name.startswith("_"):
                    loader.get(f"{namespace}.{collection}.{name}")


if hasattr(ansible_mitogen.planner, "_load_collections"):
    ansible_mitogen.planner._load_collections = _load_collections_once


# A board lost in the middle of a run (it froze, or dropped off the network, after the run
# reached it) is given up when Mitogen's keepalive runs out: in a call under way, or by the
# connection multiplexer while no task used it. Left at that, the next call connected again: an
# SSH connect to a board that does not answer, one more timeout each time, first in the same task
# (the action's clean-up of its temporary directory), then in each later step delegated to the
# board before the playbook knew it was away (deploy.yml's). README: a board is "never retried
# task by task". So a board lost is not connected again for the rest of the run, as Ansible
# leaves an unreachable host out of it: the task ends unreachable there at once. An explicit
# reset (the reboot action between its tries, `meta: reset_connection`) connects to it again.
# Boards only: SSH connections (a local or container connection that dies is Mitogen's as before).
# The workers and the multiplexer are forks of this process: the losses are kept in a file of
# this run, one line an event, the last about a board the one that counts. The file has no name
# (unlinked as it is made) and is shared through the descriptor the forks inherit, so a run that
# is killed leaves nothing behind.
import ansible_mitogen.connection  # noqa: E402
import ansible_mitogen.services  # noqa: E402

_LOSSES = tempfile.TemporaryFile(prefix="pico-ansible-run-")  # kept open: its descriptor is the file
fcntl.fcntl(_LOSSES.fileno(), fcntl.F_SETFL, fcntl.fcntl(_LOSSES.fileno(), fcntl.F_GETFL) | os.O_APPEND)


def _note(event: str, address: str | None, why: str = "") -> None:
    if not address:
        return
    try:  # one short write with O_APPEND: the forks' lines do not interleave
        os.write(_LOSSES.fileno(), f"{event}\t{address}\t{' '.join(why.split())}\n".encode())
    except (OSError, ValueError):
        pass  # the run is ending (the file closed)


def _lost(address: str) -> str | None:
    """Why `address` was lost in this run, or None if it was not (or was reset since)."""
    why = None
    descriptor = _LOSSES.fileno()
    for line in os.pread(descriptor, os.fstat(descriptor).st_size, 0).decode().splitlines():
        event, lost_address, reason = line.split("\t", 2)
        if lost_address == address:
            why = reason if event == "lost" else None
    return why


# In a task worker: a call under way lost, a connection to a board lost refused, an explicit
# reset noted.
def _rethrow_noting_the_loss(chain, recv):
    try:
        return _mitogen_rethrow(chain, recv)
    except AnsibleConnectionFailure as lost:
        if chain._connection.transport == "ssh":
            _note("lost", chain._connection._play_context.remote_addr, str(lost))
        raise


def _connect_unless_lost(connection) -> None:
    address = connection._play_context.remote_addr
    why = None if connection.connected else _lost(address)
    if why is not None:
        raise AnsibleConnectionFailure(f"{address} was lost during this run, not connected again: {why}")
    _mitogen_connect(connection)


def _reset_and_forgive(connection) -> None:
    _mitogen_reset(connection)
    if _lost(connection._play_context.remote_addr) is not None:
        _note("reset", connection._play_context.remote_addr)


# In the multiplexer: a connection that ends without being asked to (shut down, reset) was lost.
_board_by_context: dict = {}  # the multiplexer's SSH contexts: the board's address


def _connect_and_name(service, key, spec, via=None):
    response = _mitogen_service_connect(service, key, spec, via=via)
    if spec.get("method") == "ssh":
        _board_by_context[response["context"]] = (spec.get("kwargs") or {}).get("hostname")
    return response


def _on_disconnect_noting_the_loss(service, context) -> None:
    address = _board_by_context.pop(context, None)
    if context in service._key_by_context:  # not shut down on purpose, which forgets it first
        _note("lost", address, "its connection ended (keepalive unanswered, or the board went away)")
    _mitogen_on_disconnect(service, context)


_mitogen_rethrow = ansible_mitogen.connection.CallChain._rethrow
_mitogen_connect = ansible_mitogen.connection.Connection._connect
_mitogen_reset = ansible_mitogen.connection.Connection.reset
_mitogen_service_connect = ansible_mitogen.services.ContextService._connect
_mitogen_on_disconnect = ansible_mitogen.services.ContextService._on_context_disconnect
ansible_mitogen.connection.CallChain._rethrow = _rethrow_noting_the_loss
ansible_mitogen.connection.Connection._connect = _connect_unless_lost
ansible_mitogen.connection.Connection.reset = _reset_and_forgive
ansible_mitogen.connection.Connection._reset = _reset_and_forgive
ansible_mitogen.services.ContextService._connect = _connect_and_name
ansible_mitogen.services.ContextService._on_context_disconnect = _on_disconnect_noting_the_loss


def _skipped_result(loader, host, task, task_vars, play_context) -> dict | None:
    """The result a worker would return for a task whose `when` is false on this host, or None.

    A worker is a fork of this process: on 30 boards a skipped task still costs the controller
    30 forks (most of a changed=0 site.yml's time is fork, copy-on-write and exit; docs/ansible-
    speed.md). The condition is evaluated here exactly as the worker's TaskExecutor does, with the
    same variables and the connection's magic variables added. Anything else, a loop (the
    condition is per item), delegation, a condition that is true or cannot be evaluated, goes to a
    worker as usual, which reports it the stock way.
    """
    if not task.when or task.loop is not None or task.loop_with or task.delegate_to:
        return None
    templar = TemplateEngine(loader=loader, variables=task_vars)
    try:
        context = play_context.set_task_and_variable_override(task=task, variables=task_vars, templar=templar)
        context.post_validate(templar=templar)
        if not context.remote_addr:
            context.remote_addr = host.address
        variables = task_vars.copy()
        context.update_vars(variables)
        false_condition: dict = {}
        if task._resolve_conditional(task.when, variables, result_context=false_condition):
            return None
    except Exception:  # pylint: disable=broad-except  (the worker reports it, as without this)
        return None
    result = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False", **false_condition}
    task.update_result_no_log(templar, result)
    return result


# Actions that only template, compare or record variables on the controller: they never touch the
# board or the file system, so they need no worker of their own.
_PURE_CONTROLLER_ACTIONS = frozenset(add_internal_fqcns(("assert", "debug", "fail", "set_fact", "validate_argument_spec")))


def _runs_in_process(task) -> bool:
    """A pure controller action with nothing that would hold the top-level process: no loop, no
    delegation, no retries, no timeout (an alarm), not asynchronous."""
    return (task.action in _PURE_CONTROLLER_ACTIONS and task.loop is None and not task.loop_with
            and not task.delegate_to and not task.until and task.retries is None and not task.timeout
            and not task.async_val)


def _own_copy(task):
    """A copy of a task under the same block, as a worker holds."""
    copy = task.copy(exclude_parent=True, exclude_tasks=True)
    copy._parent = task._parent
    return copy


def _controller_only(play) -> bool:
    """A play that addresses only this machine, over the local connection (Molecule's create and destroy)."""
    return play.connection == "local" and set(play.hosts or []) <= {"localhost", "127.0.0.1"}


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
    """Ansible's linear strategy, run through Mitogen's connection multiplexer."""

    def run(self, iterator, play_context, result=0):
        # A play on the controller itself gains nothing from Mitogen, and Mitogen's async jobs
        # never report back there (Molecule's create and destroy plays waited on them for ever).
        if _controller_only(iterator._play):
            return _Linear.run(self, iterator, play_context)
        _warm_plugin_caches()
        return super().run(iterator, play_context, result)

    # A worker is a fork of this process, and on 30 boards most of a changed=0 site.yml's
    # controller time is fork, copy-on-write and exit, not the tasks (docs/ansible-speed.md). A
    # task that is skipped, or a pure controller action, runs here instead: the same TaskExecutor
    # (or the same condition) a worker would run, its result handled by the same code.
    def _queue_task(self, host, task, task_vars, play_context):
        if _runs_in_process(task):
            self._tqm.send_callback("v2_runner_on_start", host, task)
            # post_validate templates the task in place: a copy, as a worker's is its own.
            own_task = _own_copy(task)
            with TaskContext(own_task):
                result = TaskExecutor(host, own_task, task_vars, play_context, self._loader,
                                      plugin_loader.get_plugin_loader_namespace(), self._final_q,
                                      self._variable_manager).run()
            return self._queue_result(host, task, task_vars, play_context, result, own_task.dump_attrs())
        skipped = _skipped_result(self._loader, host, task, task_vars, play_context)
        if skipped is None:
            return super()._queue_task(host, task, task_vars, play_context)
        self._tqm.send_callback("v2_runner_on_start", host, task)
        return self._queue_result(host, task, task_vars, play_context, skipped, task.dump_attrs())

    def _queue_result(self, host, task, task_vars, play_context, result, task_fields):
        """Hand a result on as the stock _queue_task and the results thread do with a worker's."""
        self._queued_task_cache[(host.name, task._uuid)] = {
            "host": host, "task": task, "task_vars": task_vars, "play_context": play_context}
        raw = self._convert_wire_task_result_to_raw(_WireTaskResult(
            host_name=host.name, task_uuid=task._uuid, return_data=result, task_fields=task_fields))
        with self._results_lock:
            self._results.append(raw)
        self._pending_results += 1
