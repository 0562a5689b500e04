# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: power_knobs_in_effect
short_description: The power settings in effect on a node now and after its next reboot
version_added: "0.7.0"
description:
  - Reads the record the C(pico.cloud.power) role leaves on a node (its local fact C(pico_power))
    and says which knobs count for the power estimate (P(pico.cloud.power_estimate#filter)) now,
    which after the next reboot, and whether a reboot is pending.
  - Settings count once the node booted with them - not at all without a C(config.txt), and not
    in the boot that wrote it. The agents' power estimate in C(/metrics) uses the same rule.
positional: boot_id
options:
  _input:
    description: The power role's record (its local fact C(pico_power)); anything else counts as no record.
    type: raw
    required: true
  boot_id:
    description: This boot's id (C(/proc/sys/kernel/random/boot_id)).
    type: str
    required: true
"""

EXAMPLES = r"""
knobs: "{{ ansible_local.pico_power | default({}) | pico.cloud.power_knobs_in_effect(boot_id) }}"
"""

RETURN = r"""
_value:
  description: C(now) and C(after_reboot) (knobs for the power_estimate filter) and C(pending) (a reboot is due).
  type: dict
"""

from ansible_collections.pico.cloud.plugins.module_utils._power_model import knobs_in_effect


class FilterModule(object):
    def filters(self):
        return {"power_knobs_in_effect": knobs_in_effect}
