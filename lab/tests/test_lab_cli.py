"""The lab CLI turns bad input into one line that says what to do, with exit code 2."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def lab(*args):
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True, check=False)


def test_unknown_kind_is_one_line_with_the_choices():
    result = lab("up", "--name", "unit-cli", "--mix", "pi4=1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lab: error: unknown node kind 'pi4': choose from pizero, pizero2, native"
    ]
    assert result.stdout == ""


def test_bad_subnet_is_one_line():
    result = lab("up", "--name", "unit-cli", "--subnet", "not-a-net")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "bad subnet 'not-a-net'" in result.stderr


def test_status_of_a_lab_that_is_not_there(tmp_path):
    result = lab("status", "--name", "unit-cli-absent", "--inventory", str(tmp_path / "hosts.yml"))
    assert result.returncode == 0, result.stderr
    assert "no lab named 'unit-cli-absent' is running" in result.stdout
