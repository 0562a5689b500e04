"""The power role and the power report on real lab nodes over SSH.

The emulated Pi Zero carries Raspberry Pi OS's config.txt (lab/rpi-config.txt); the native
nodes have none, like any machine that is not a Pi. No lab node has cpufreq.
"""
import json
import re

import pytest

from tests.integration.lab_access import NODES, file_digest, node_exec, playbook
from tests.playbook_run import expect_refused, expect_success, expect_unchanged

CONFIG = "/boot/firmware/config.txt"


def config_lines():
    return node_exec("pizero-1", "cat", CONFIG).splitlines()


def digest():
    return file_digest("pizero-1", CONFIG)


def record(node):
    return json.loads(node_exec(node, "cat", "/etc/ansible/facts.d/pico_power.fact"))


def power(lab_inventory, *args):
    return playbook(lab_inventory, "site.yml", "--tags", "power", *args)


def test_site_applies_balanced_where_there_is_a_config_txt(converged):
    lines = config_lines()
    assert "dtparam=audio=off" in lines and "gpu_mem=32" in lines and "dtoverlay=disable-bt" in lines
    assert record("pizero-1")["boot_config"] == CONFIG
    assert record("native-1")["boot_config"] is None  # not a Pi: boot settings skipped
    assert record("native-1")["cpufreq_supported"] is False


def test_profiles_switch_both_ways(lab_inventory, converged):
    eco = power(lab_inventory, "-e", "pico_power_profile=eco")
    expect_success(eco, NODES, changed=True)
    lines = config_lines()
    assert "dtparam=act_led_trigger=none" in lines and "gpu_mem=16" in lines and "gpu_mem=32" not in lines
    assert "changed; the firmware applies it at the next boot" in eco.text
    # one knob alone wins over the profile
    expect_success(power(lab_inventory, "-e", "pico_power_profile=eco", "-e", "pico_power_leds=true"), NODES)
    assert not any("act_led_trigger" in line for line in config_lines())
    expect_success(power(lab_inventory), NODES, changed=True)
    assert "gpu_mem=32" in config_lines() and record("pizero-1")["profile"] == "balanced"
    # The rerun that changes nothing is the next test's (with reboots allowed, which must not happen).


def test_allowed_reboots_happen_only_where_config_txt_changed(lab_inventory, converged):
    """The lab cannot reboot a node (docs/power.md); it can show the gate keeps shut when nothing changed."""
    started = {node: node_exec(node, "ps", "-o", "lstart=", "-p", "1").strip() for node in NODES}
    result = power(lab_inventory, "-e", "pico_power_allow_reboot=true")
    expect_unchanged(result, NODES)
    # The boot configuration's tasks, the reboot gate among them, are not even included: config.txt
    # has nothing to change.
    assert re.search(r"TASK \[pico\.cloud\.power : Set the boot configuration\][^\n]*\n(skipping: \[\S+\]\n)+", result.stdout)
    assert {node: node_exec(node, "ps", "-o", "lstart=", "-p", "1").strip() for node in NODES} == started


@pytest.mark.parametrize(("args", "message"), [
    (("-e", "pico_power_profile=turbo"), "value of pico_power_profile must be one of: performance, balanced, eco, got: turbo"),
    (("-e", "pico_power_gpu_mem=8"), "gpu_mem 8 MB is below the firmware's minimum of 16 MB"),
    (("-e", "pico_power_boot_config_path=/boot/nothing.txt"), "pico_power_boot_config_path /boot/nothing.txt does not exist"),
], ids=["unknown-profile", "gpu-mem", "missing-config"])
def test_bad_input_changes_nothing(lab_inventory, converged, args, message):
    before = (digest(), record("pizero-1"))
    result = power(lab_inventory, *args)
    expect_refused(result, NODES, message)
    assert (digest(), record("pizero-1")) == before


def test_malformed_config_txt_stops_the_node_before_anything_changes(lab_inventory, converged):
    node_exec("pizero-1", "cp", CONFIG, "/root/config.txt.saved")
    node_exec("pizero-1", "sh", "-c", f"echo '[pi0' >> {CONFIG}")
    try:
        before = (digest(), record("pizero-1"))
        result = power(lab_inventory, "-e", "pico_power_profile=eco")
        # The nodes without a config.txt go on to eco; the Pi Zero stops before writing anything.
        expect_refused(result, NODES, f"{CONFIG} is malformed, line ", "nothing was written", unchanged=["pizero-1"])
        assert (digest(), record("pizero-1")) == before
    finally:
        node_exec("pizero-1", "mv", "/root/config.txt.saved", CONFIG)


def test_power_report_labels_estimates_and_totals_the_cluster(lab_inventory, converged):
    result = playbook(lab_inventory, "playbooks/power-report.yml", "-e", "power_report_load=0.5")
    expect_unchanged(result, NODES)
    output = result.text
    # Pi Zero at half load: 108 mA idle + 0.5 x 40 mA; the lab's config.txt waits for a reboot the
    # lab cannot give it (containers share the host's boot id), so "now" is the stock figure.
    assert "pizero-1 (pizero, profile balanced, load 50%): ESTIMATE 128.0 mA / 0.64 W now, stock 128.0 mA" in output
    assert "after the pending reboot 103.0 mA" in output  # HDMI off saves 25 mA
    assert "native-1: no power model for board native; not estimated." in output
    assert "Cluster, 1 modelled board on: ESTIMATE 128.0 mA / 0.64 W now" in output
    assert "Not modelled: native-1, native-2" in output
    assert "not measurements" in output
