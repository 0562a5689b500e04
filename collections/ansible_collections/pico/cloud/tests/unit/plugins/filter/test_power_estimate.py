"""The power model: cited numbers in, an estimate out, and unknowns refused."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pico.cloud.plugins.filter.power_estimate import _power_estimate
from ansible_collections.pico.cloud.plugins.module_utils.power_model import BOARDS, SAVINGS_MA


def test_stock_idle_is_the_measured_idle():
    for board, spec in BOARDS.items():
        result = _power_estimate(board)
        assert (result["ma"], result["stock_ma"], result["saved_ma"]) == (spec["idle_ma"], spec["idle_ma"], 0)
        assert result["estimate"] is True


def test_headless_tweaks_subtract_the_measured_savings():
    result = _power_estimate("pizero2", {"hdmi": False, "leds": False, "wifi": False})
    assert result["ma"] == 120 - SAVINGS_MA["hdmi"] - SAVINGS_MA["leds"] - SAVINGS_MA["wifi"]
    # CNX Software got a Zero 2 W from 120 mA to under 75 mA with tweaks of this kind
    assert result["ma"] < 75
    assert result["watts"] == round(result["ma"] * 5 / 1000, 2)
    assert [p["what"] for p in result["parts"]] == ["stock idle", "hdmi off", "leds off", "wifi off"]


def test_knobs_without_a_measured_effect_count_zero():
    assert _power_estimate("pizero", {"bluetooth": False, "audio": False})["ma"] == BOARDS["pizero"]["idle_ma"]


def test_load_adds_current_and_an_underclock_scales_it():
    full = _power_estimate("pizero", {}, 1.0)
    assert full["ma"] == BOARDS["pizero"]["idle_ma"] + BOARDS["pizero"]["full_load_extra_ma"]
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
