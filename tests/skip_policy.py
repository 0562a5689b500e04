"""pytest plugin (pytest.ini: -p tests.skip_policy): a skipped test is a test that could not fail.

Also a command for test runs this plugin cannot join (ansible-test units runs its own pytest):
`python3 -m tests.skip_policy REPORT.xml...` applies the same allow-list to their JUnit reports.

With PICO_STRICT_SKIPS=1 (`make test` sets it) the session fails on any skip whose reason is not
on the allow-list below. The list holds only what a machine running the suite may lack for a
good reason; what `make bootstrap` installs or starts (Docker, wg, the images, root, unshare)
is not on it, so a CI machine without it fails instead of passing quietly.
"""
from __future__ import annotations

import os

import pytest

# Skip reason (its start) -> why a run may legitimately skip it.
ALLOWED = {
    "this machine has a config.txt": "a developer running the suite on a Raspberry Pi: the test needs "
                                     "the absence of /boot/config.txt, which the Pi's own file breaks",
}

_skipped: list[tuple[str, str]] = []


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append((report.nodeid, _reason(report)))


def _not_allowed() -> list[tuple[str, str]]:
    return [(node, reason) for node, reason in _skipped if not any(reason.startswith(ok) for ok in ALLOWED)]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    bad = _not_allowed()
    if bad:
        strict = os.environ.get("PICO_STRICT_SKIPS") == "1"
        terminalreporter.section("skips not on the allow-list (tests/skip_policy.py)", red=strict, yellow=not strict)
        for node, reason in bad:
            terminalreporter.line(f"{node}: {reason}")
        if strict:
            terminalreporter.line("PICO_STRICT_SKIPS=1: these fail the run. Give the machine what the test "
                                  "needs (make bootstrap), or add the reason to ALLOWED with why.")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("PICO_STRICT_SKIPS") == "1" and _not_allowed() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _junit_skips(paths: list[str]) -> list[tuple[str, str]]:
    import xml.etree.ElementTree as ElementTree

    found = []
    for path in paths:
        for case in ElementTree.parse(path).iter("testcase"):
            skipped = case.find("skipped")
            if skipped is not None:
                found.append((f"{case.get('classname')}::{case.get('name')}", skipped.get("message", "")))
    return found


if __name__ == "__main__":
    import sys

    _skipped.extend(_junit_skips(sys.argv[1:]))
    for node, reason in _not_allowed():
        print(f"skipped, and the reason is not on the allow-list (tests/skip_policy.py): {node}: {reason}")
    sys.exit(1 if os.environ.get("PICO_STRICT_SKIPS") == "1" and _not_allowed() else 0)
