# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""An ESTIMATE of a board's supply current from public measurements (docs/power.md cites them).

    current = stock idle current of the board
              - savings of each knob turned off that is on in the stock configuration
              + CPU load (0..1) x the extra current of full load, scaled by the clock cap

Every number below comes from a cited measurement; where no measurement separates a knob's
effect (Bluetooth, audio, Wi-Fi power save, GPU memory) the model counts 0 mA and says so,
rather than invent one. The result is an estimate, never a measurement.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

SUPPLY_VOLTS = 5.0

# Stock: Raspberry Pi OS Lite, idle, HDMI on, ACT LED on, Wi-Fi on. Sources in docs/power.md.
BOARDS = {
    "pizero": {
        "name": "Raspberry Pi Zero / Zero W",
        "idle_ma": 108,  # [cnx2021] Pi Zero, same image and meter as its Zero 2 W figure
        "full_load_extra_ma": 40,  # [raspitv2015] about 100 mA idle, 140 mA when pushed
        "stock_arm_freq_mhz": 1000,
        "leds": 1,  # ACT only
    },
    "pizero2": {
        "name": "Raspberry Pi Zero 2 W",
        "idle_ma": 120,  # [cnx2021]
        # [andrejacobs2021]: under load it draws about 270 mA more than a Zero W, idling 2 mA more
        "full_load_extra_ma": 40 + 268,
        "stock_arm_freq_mhz": 1000,
        "leds": 1,
    },
}

# What turning a knob off saves against the stock configuration, in mA.
SAVINGS_MA = {
    "hdmi": 25,  # [geerling2015] tvservice -o
    "leds": 5,  # [geerling2015] per LED
    "wifi": 25,  # [quietsche2021] Wi-Fi associated without traffic, +25 mA
    "bluetooth": 0,  # [otc2021] disable-bt: no change within 10 mA
    "audio": 0,  # [otc2021] dtparam=audio=off: no change within 10 mA
}
STOCK = {"hdmi": True, "leds": True, "wifi": True, "bluetooth": True, "audio": True, "wifi_powersave": True,
         "arm_freq_mhz": None}


class ModelError(ValueError):
    pass


def estimate(board, settings=None, load=0.0):
    """{'ma', 'watts', 'stock_ma', 'saved_ma', 'parts', 'estimate': True} for one node.

    settings: the node's knobs (missing ones are stock); load: CPU utilisation 0..1.
    """
    if board not in BOARDS:
        raise ModelError("no power model for board %r (modelled: %s)" % (board, ", ".join(sorted(BOARDS))))
    try:
        load = float(load)
    except (TypeError, ValueError):
        raise ModelError("load %r is not a number between 0 and 1" % (load,))
    if not 0.0 <= load <= 1.0:
        raise ModelError("load %s is outside 0..1 (CPU utilisation, all cores)" % load)
    spec = BOARDS[board]
    knobs = dict(STOCK)
    knobs.update(dict((k, v) for k, v in (settings or {}).items() if v is not None))
    parts = [("stock idle", spec["idle_ma"])]
    for knob, saving in sorted(SAVINGS_MA.items()):
        if STOCK[knob] and not knobs.get(knob, True):
            count = spec["leds"] if knob == "leds" else 1
            parts.append(("%s off" % knob, -saving * count))
    clock = knobs.get("arm_freq_mhz") or spec["stock_arm_freq_mhz"]
    # Assumption, not a measurement: the load's extra current scales with the clock cap.
    scale = min(1.0, float(clock) / spec["stock_arm_freq_mhz"])
    if load:
        parts.append(("load %.0f%%" % (load * 100), spec["full_load_extra_ma"] * load * scale))
    ma = sum(value for _name, value in parts)
    stock = spec["idle_ma"] + spec["full_load_extra_ma"] * load
    return {
        "board": board,
        "ma": round(ma, 1),
        "watts": round(ma * SUPPLY_VOLTS / 1000.0, 2),
        "stock_ma": round(stock, 1),
        "stock_watts": round(stock * SUPPLY_VOLTS / 1000.0, 2),
        "saved_ma": round(stock - ma, 1),
        "parts": [{"what": name, "ma": round(value, 1)} for name, value in parts],
        "estimate": True,
    }


# The knobs of the power role's record (/etc/ansible/facts.d/pico_power.fact) the model counts.
RECORDED_KNOBS = ("hdmi", "leds", "bluetooth", "audio", "arm_freq_mhz")


def knobs_in_effect(record, boot_id):
    """{'now', 'after_reboot', 'pending'}: the knobs in effect now and after the next reboot, and
    whether one is pending, from the power role's record (its local fact pico_power).

    Its settings count once the node booted with them: not at all without a config.txt, and
    not in the boot that wrote it (boot_id: this boot's /proc/sys/kernel/random/boot_id).
    """
    record = record if isinstance(record, dict) else {}
    settings = record.get("settings") if isinstance(record.get("settings"), dict) else {}
    boot_applied = record.get("boot_config") is not None
    pending = boot_applied and record.get("boot_config_written_in_boot") == boot_id
    applied = dict((knob, settings.get(knob)) for knob in RECORDED_KNOBS) if boot_applied else {}
    return {"now": {} if pending else applied, "after_reboot": applied, "pending": pending}
