"""Which of the power role's settings count for the estimate: those the node booted with."""
from ansible_collections.pico.cloud.plugins.filter.power_knobs_in_effect import FilterModule

knobs_in_effect = FilterModule().filters()["power_knobs_in_effect"]
SETTINGS = {"hdmi": False, "leds": False, "bluetooth": False, "audio": True, "arm_freq_mhz": 700, "wifi": True}
APPLIED = {"hdmi": False, "leds": False, "bluetooth": False, "audio": True, "arm_freq_mhz": 700}


def test_settings_count_once_the_node_booted_with_them():
    record = {"settings": SETTINGS, "boot_config": {"arm_freq": 700}, "boot_config_written_in_boot": "before"}
    assert knobs_in_effect(record, "now") == {"now": APPLIED, "after_reboot": APPLIED, "pending": False}


def test_settings_written_in_this_boot_wait_for_the_reboot():
    record = {"settings": SETTINGS, "boot_config": {"arm_freq": 700}, "boot_config_written_in_boot": "now"}
    assert knobs_in_effect(record, "now") == {"now": {}, "after_reboot": APPLIED, "pending": True}


def test_without_a_config_txt_or_a_record_the_stock_configuration_counts():
    stock = {"now": {}, "after_reboot": {}, "pending": False}
    assert knobs_in_effect({"settings": SETTINGS, "boot_config": None}, "now") == stock
    for not_a_record in (None, [], "text", {"settings": "hdmi=0"}):
        assert knobs_in_effect(not_a_record, "now")["now"] == {}
