"""The power model: cited numbers in, an estimate out, and unknowns refused.

Expected values are the cited measurements themselves (docs/power.md), written out here, not
read back from the model's own tables: a wrong number in the model must fail these tests."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pico.cloud.plugins.filter.power_estimate import _power_estimate

# [cnx2021] idle, Raspberry Pi OS Lite, HDMI, LED and Wi-Fi on
STOCK_IDLE_MA = {"pizero": 108, "pizero2": 120}


def test_stock_idle_is_the_measured_idle():
    for board, idle in STOCK_IDLE_MA.items():
        result = _power_estimate(board)
        assert (result["ma"], result["stock_ma"], result["saved_ma"]) == (idle, idle, 0)
        assert result["estimate"] is True


def test_headless_tweaks_subtract_the_measured_savings():
    result = _power_estimate("pizero2", {"hdmi": False, "leds": False, "wifi": False})
    # 120 idle - 25 HDMI [geerling2015] - 5 one LED [geerling2015] - 25 Wi-Fi [quietsche2021]
    assert result["ma"] == 65
    # CNX Software got a Zero 2 W from 120 mA to under 75 mA with tweaks of this kind
    assert result["ma"] < 75
    assert result["watts"] == 0.33
    assert [p["what"] for p in result["parts"]] == ["stock idle", "hdmi off", "leds off", "wifi off"]


def test_knobs_without_a_measured_effect_count_zero():
    assert _power_estimate("pizero", {"bluetooth": False, "audio": False})["ma"] == 108


def test_load_adds_current_and_an_underclock_scales_it():
    full = _power_estimate("pizero", {}, 1.0)
    assert full["ma"] == 148  # 108 idle + 40 under full load [raspitv2015]
    capped = _power_estimate("pizero", {"arm_freq_mhz": 700}, 1.0)
    assert capped["ma"] == pytest.approx(108 + 40 * 0.7)
    assert capped["stock_ma"] == full["ma"] and capped["saved_ma"] == pytest.approx(12.0)


@pytest.mark.parametrize("args,message", [
    (("pi5",), "no power model for board 'pi5'"),
    (("pizero", {}, 1.5), "outside 0..1"),
    (("pizero", {}, "busy"), "is not a number"),
])
def test_bad_input_is_refused(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        _power_estimate(*args)


def test_unknown_board_can_be_skipped():
    assert _power_estimate("native", strict=False) is None
