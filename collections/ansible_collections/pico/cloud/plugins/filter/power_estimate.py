# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: power_estimate
short_description: ESTIMATED supply current and power of a board, from its settings and CPU load
version_added: 0.3.0
description:
- Estimates a node's draw from its board model, its power settings and its CPU load, with a model
  built from public measurements (cited in docs/power.md). It is an estimate, not a measurement.
- Also returns the stock configuration's estimate at the same load, and each part of the sum.
positional: settings, load
options:
  _input:
    description: Board, as in C(pico_board) (V(pizero), V(pizero2)).
    type: str
    required: true
  settings:
    description: >-
      Knobs, each true (on, as stock) or false: C(hdmi), C(leds), C(wifi), C(bluetooth), C(audio);
      C(arm_freq_mhz) caps the clock. Missing knobs are stock.
    type: dict
  load:
    description: CPU utilisation of the whole board, 0 to 1.
    type: float
    default: 0
  strict:
    description: Fail for a board the model does not know; with false, return null instead.
    type: bool
    default: true
"""

EXAMPLES = r"""
draw: "{{ pico_board | pico.cloud.power_estimate({'hdmi': false, 'leds': false}, 0.1) }}"
"""

RETURN = r"""
_value:
  description: C(ma), C(watts), C(stock_ma), C(stock_watts), C(saved_ma), C(parts) and C(estimate=true); null for an unknown board when strict is false.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._power_model import BOARDS, ModelError, estimate


def _power_estimate(board, settings=None, load=0.0, strict=True):
    if not strict and board not in BOARDS:
        return None
    try:
        return estimate(board, settings or {}, load)
    except ModelError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"power_estimate": _power_estimate}
