# The project's default strategy (ansible.cfg): Mitogen for Ansible's `mitogen_linear`, after a check
# that this ansible-core is one the installed Mitogen release is known to work with. Mitogen keeps
# one Python interpreter per node instead of starting one per task, which is most of a task's cost
# on a Pi Zero (measured in bench/ansible_speed.py). Mitogen patches Ansible's internals, and a
# release may lag a new ansible-core; without this check the failure shows up mid-play as a
# traceback. The collection itself never needs Mitogen: ANSIBLE_STRATEGY=linear runs the stock one.
from __future__ import annotations

import os

from ansible import __version__ as ANSIBLE_CORE_VERSION
from ansible.errors import AnsibleError

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
        return super().run(iterator, play_context, result)
