"""cpufreq against a fake sysfs tree shaped like a Pi Zero's (one policy, 700 MHz - 1 GHz)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

GOVERNORS = "conservative ondemand userspace powersave performance schedutil"


def make_policy(root, name="policy0", governor="ondemand", low=700000, high=1000000):
    policy = root / name
    policy.mkdir(parents=True)
    files = {
        "scaling_available_governors": GOVERNORS, "scaling_governor": governor,
        "cpuinfo_min_freq": low, "cpuinfo_max_freq": high, "scaling_min_freq": low, "scaling_max_freq": high,
    }
    for file_name, value in files.items():
        (policy / file_name).write_text("%s\n" % value)
    return policy


@pytest.fixture
def sysfs(tmp_path):
    root = tmp_path / "cpufreq"
    make_policy(root)
    return root


def value(root, attribute, policy="policy0"):
    return (root / policy / attribute).read_text().strip()


def test_sets_governor_and_limits_then_changes_nothing(run_module, sysfs):
    result = run_module("cpufreq", diff=True, sysfs_root=str(sysfs), governor="powersave", max_freq="800MHz")
    assert result["changed"] is True and result["supported"] is True
    assert (value(sysfs, "scaling_governor"), value(sysfs, "scaling_max_freq")) == ("powersave", "800000")
    assert result["policies"]["policy0"]["max_freq"] == 800000
    assert "governor=ondemand" in result["diff"]["before"] and "governor=powersave" in result["diff"]["after"]
    again = run_module("cpufreq", sysfs_root=str(sysfs), governor="powersave", max_freq=800000)
    assert again["changed"] is False


def test_check_mode_writes_nothing(run_module, sysfs):
    result = run_module("cpufreq", check=True, sysfs_root=str(sysfs), governor="performance")
    assert result["changed"] is True
    assert result["policies"]["policy0"]["governor"] == "performance"
    assert value(sysfs, "scaling_governor") == "ondemand"


def test_no_cpufreq_is_unsupported_not_an_error(run_module, tmp_path):
    result = run_module("cpufreq", sysfs_root=str(tmp_path / "absent"), governor="ondemand")
    assert result.get("failed") is not True
    assert (result["changed"], result["supported"]) == (False, False)


def test_unknown_governor_lists_the_available_ones(run_module, sysfs):
    result = run_module("cpufreq", sysfs_root=str(sysfs), governor="turbo", max_freq=900000)
    assert result["failed"] is True
    assert "governor 'turbo' is not available on policy0; available: conservative, ondemand" in result["msg"]
    assert "nothing was changed" in result["msg"]
    assert (value(sysfs, "scaling_governor"), value(sysfs, "scaling_max_freq")) == ("ondemand", "1000000")


@pytest.mark.parametrize("args,message", [
    ({"max_freq": "1.2GHz"}, "max_freq 1200000 kHz is outside the hardware range of policy0, 700000-1000000 kHz"),
    ({"min_freq": 100000}, "min_freq 100000 kHz is outside the hardware range"),
    ({"min_freq": "900MHz", "max_freq": "800MHz"}, "min_freq 900000 kHz would be above max_freq 800000 kHz"),
    ({"max_freq": "fast"}, "max_freq 'fast' is not a frequency"),
])
def test_frequencies_outside_the_hardware_range_are_refused(run_module, sysfs, args, message):
    result = run_module("cpufreq", sysfs_root=str(sysfs), governor="powersave", **args)
    assert result["failed"] is True and message in result["msg"]
    assert value(sysfs, "scaling_governor") == "ondemand"  # nothing written, the governor included


def test_raising_the_minimum_above_the_current_maximum_writes_the_maximum_first(run_module, sysfs):
    (sysfs / "policy0" / "scaling_max_freq").write_text("800000\n")
    result = run_module("cpufreq", sysfs_root=str(sysfs), min_freq="900MHz", max_freq="1GHz")
    assert result["changed"] is True
    assert (value(sysfs, "scaling_min_freq"), value(sysfs, "scaling_max_freq")) == ("900000", "1000000")


def test_several_policies_and_a_chosen_one(run_module, tmp_path):
    root = tmp_path / "cpufreq"
    make_policy(root, "policy0")
    make_policy(root, "policy4", low=600000, high=1800000)
    result = run_module("cpufreq", sysfs_root=str(root), policies=["policy4"], max_freq="1.5GHz")
    assert result["changed"] is True and list(result["policies"]) == ["policy4"]
    assert value(root, "scaling_max_freq", "policy0") == "1000000"
    assert value(root, "scaling_max_freq", "policy4") == "1500000"
    missing = run_module("cpufreq", sysfs_root=str(root), policies=["policy9"], governor="ondemand")
    assert missing["failed"] is True and "no cpufreq policy policy9 here; this machine has policy0, policy4" in missing["msg"]
