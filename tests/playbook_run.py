"""One strict way for tests to run ansible-playbook and read what it did.

A run is judged by its exit code AND by a PLAY RECAP line for every host it was meant for: a check
like `all(changed == 0 for every recap line)` is true when no recap was printed at all, so every
helper here first requires the hosts it was told to expect.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_RECAP_LINE = re.compile(r"^(\S+)\s+:\s+(ok=.*)$", re.M)


@dataclass(frozen=True)
class PlaybookRun:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """{host: {ok: n, changed: n, unreachable: n, failed: n, ...}} from the PLAY RECAP."""
        return {host: {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counts)}
                for host, counts in _RECAP_LINE.findall(self.stdout)}

    @property
    def text(self) -> str:
        """Output with runs of whitespace made single spaces: the YAML callback folds long messages."""
        return " ".join((self.stdout + "\n" + self.stderr).split())

    def tail(self, size: int = 4000) -> str:
        return f"ansible-playbook {' '.join(self.args)} (exit {self.returncode}):\n{self.stdout[-size:]}\n{self.stderr[-1000:]}"


def run_playbook(inventory: Path, *args: str, env: dict[str, str | None] | None = None) -> PlaybookRun:
    """ansible-playbook with the project's ansible.cfg, from the repository root. In env, a value
    of None removes that variable (e.g. a callback the caller's environment enables)."""
    merged = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0", **(env or {})}
    full_env = {name: value for name, value in merged.items() if value is not None}
    result = subprocess.run(["ansible-playbook", "-i", str(inventory), *args], cwd=REPO, capture_output=True,
                            text=True, check=False, env=full_env)
    return PlaybookRun(("-i", str(inventory), *args), result.returncode, result.stdout, result.stderr)


def run_playbook_watching(inventory: Path, *args: str, on_line, env: dict[str, str | None] | None = None) -> PlaybookRun:
    """run_playbook, calling on_line(line, output_so_far) for each line of output as it comes:
    a test acts on the nodes at a given moment of the run (pauses a board in the middle of a batch)."""
    merged = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0", **(env or {})}
    full_env = {name: value for name, value in merged.items() if value is not None}
    lines: list[str] = []
    with subprocess.Popen(["ansible-playbook", "-i", str(inventory), *args], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=full_env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            on_line(line, lines)
        returncode = proc.wait()
    return PlaybookRun(("-i", str(inventory), *args), returncode, "".join(lines), "")


def _recap_of(run: PlaybookRun, hosts) -> dict[str, dict[str, int]]:
    """The recap of exactly `hosts`. The playbooks open with a play on localhost that checks the
    inventory names boards; it is left out unless asked for, and must not have failed."""
    recap = run.recap
    if "localhost" in recap and "localhost" not in hosts:
        controller = recap.pop("localhost")
        assert controller["failed"] == 0 and controller["unreachable"] == 0, f"localhost: {controller}\n{run.tail()}"
    assert sorted(recap) == sorted(hosts), f"recap lists {sorted(recap)}, expected {sorted(hosts)}\n{run.tail()}"
    return recap


def expect_success(run: PlaybookRun, hosts, *, changed: bool | str | None = None) -> dict[str, dict[str, int]]:
    """Exit 0, a recap line for exactly `hosts`, none failed or unreachable; with changed=False,
    nothing changed on any of them, with changed=True something did on each, with changed="any"
    something did on one at least (a rollout: Ansible counts a step delegated to a node for the
    host that ran it)."""
    assert run.returncode == 0, run.tail()
    recap = _recap_of(run, hosts)
    for host, counts in recap.items():
        assert counts["failed"] == 0 and counts["unreachable"] == 0, f"{host}: {counts}\n{run.tail()}"
        if changed is False:
            assert counts["changed"] == 0, f"{host} changed {counts['changed']} things\n{run.tail()}"
        elif changed is True:
            assert counts["changed"] > 0, f"{host} changed nothing\n{run.tail()}"
    if changed == "any":
        assert any(counts["changed"] for counts in recap.values()), f"nothing changed\n{run.tail()}"
    return recap


def expect_unchanged(run: PlaybookRun, hosts) -> dict[str, dict[str, int]]:
    """A second run, or a run that must find everything in place: exit 0 and changed=0 everywhere."""
    return expect_success(run, hosts, changed=False)


def expect_refused(run: PlaybookRun, hosts, *messages: str, unchanged=None) -> dict[str, dict[str, int]]:
    """Bad input: the run fails, every expected host is in the recap, and each message appears
    in the output. Nothing changed on `unchanged` (default: on every host)."""
    assert run.returncode != 0, f"the run was expected to fail\n{run.tail()}"
    recap = _recap_of(run, hosts)
    for host in hosts if unchanged is None else unchanged:
        counts = recap[host]
        assert counts["changed"] == 0, f"{host} changed {counts['changed']} things in a refused run\n{run.tail()}"
    for message in messages:
        assert message in run.text, f"{message!r} not in the output\n{run.tail()}"
    return recap


def expect_away(run: PlaybookRun, reached, away, *, changed: bool | None = None) -> dict[str, dict[str, int]]:
    """A run with boards away: exit 4 (Ansible's "unreachable"), every reached board converged
    (none failed; with changed=False nothing changed on them), each away board unreachable in the
    recap and named in the closing summary of the pico.cloud.fleet role."""
    assert run.returncode == 4, run.tail()
    recap = _recap_of(run, [*reached, *away])
    for host in reached:
        counts = recap[host]
        assert counts["failed"] == 0 and counts["unreachable"] == 0, f"{host}: {counts}\n{run.tail()}"
        if changed is False:
            assert counts["changed"] == 0, f"{host} changed {counts['changed']} things\n{run.tail()}"
    for host in away:
        assert recap[host]["unreachable"] == 1, f"{host} is not unreachable in the recap: {recap[host]}\n{run.tail()}"
        assert re.search(rf"(Not reached|Lost during the run): [^.]*\b{re.escape(host)}\b", run.text), \
            f"{host} is not named in the summary\n{run.tail()}"
    return recap
