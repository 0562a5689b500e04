"""tests/skip_policy.py: under PICO_STRICT_SKIPS=1 (make test) a skip off the allow-list fails the run."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = '''
import pytest
def test_runs(): assert True
def test_skipped(): pytest.skip(REASON)
'''


def pytest_run(tmp_path, reason, strict):
    (tmp_path / "test_sample.py").write_text(TESTS.replace("REASON", repr(reason)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PICO_STRICT_SKIPS": "1" if strict else "0"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-c", os.devnull, "-p", "tests.skip_policy",
                           "-p", "no:cacheprovider", str(tmp_path)], capture_output=True, text=True, env=env, check=False)


def test_a_skip_off_the_allow_list_fails_a_strict_run_and_says_why(tmp_path):
    result = pytest_run(tmp_path, "no Docker engine on this machine", strict=True)
    assert result.returncode == 1, result.stdout
    assert "test_sample.py::test_skipped: no Docker engine on this machine" in result.stdout
    assert "Give the machine what the test needs (make bootstrap)" in result.stdout


def test_the_same_skip_only_warns_outside_make_test(tmp_path):
    result = pytest_run(tmp_path, "no Docker engine on this machine", strict=False)
    assert result.returncode == 0, result.stdout
    assert "skips not on the allow-list" in result.stdout


def test_an_allowed_reason_passes_a_strict_run(tmp_path):
    result = pytest_run(tmp_path, "this machine has a config.txt at /boot/config.txt", strict=True)
    assert result.returncode == 0, result.stdout
    assert "skips not on the allow-list" not in result.stdout


def test_junit_reports_of_runs_it_cannot_join_are_held_to_the_same_list(tmp_path):
    """ansible-test units runs its own pytest: make collection checks its JUnit reports."""
    (tmp_path / "test_sample.py").write_text(TESTS.replace("REASON", repr("no Docker engine on this machine")))
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-c", os.devnull, "-p", "no:cacheprovider",
                    f"--junitxml={report}", str(tmp_path)], capture_output=True, check=False)

    def check(strict):
        return subprocess.run([sys.executable, "-m", "tests.skip_policy", str(report)], cwd=REPO, capture_output=True,
                              text=True, check=False, env={**os.environ, "PICO_STRICT_SKIPS": "1" if strict else "0"})
    strict = check(True)
    assert strict.returncode == 1 and "test_skipped: no Docker engine on this machine" in strict.stdout
    assert check(False).returncode == 0
