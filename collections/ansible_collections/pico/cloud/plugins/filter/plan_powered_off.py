# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: plan_powered_off
short_description: A plan document with boards recorded as powered down on purpose
version_added: "0.7.0"
description:
  - Takes a plan document (as C(pico.cloud.service_plan) returns it) and returns it with the given
    boards recorded under C(powered_off), each as the planner's node entry plus C(since), and its
    generation one higher, so every agent takes it and none fails those boards over. energy.yml
    writes it to every node before it cuts their power.
positional: boards, since
options:
  _input:
    description: The plan document.
    type: dict
    required: true
  boards:
    description: Board name to its node entry (name, arch, board, labels, memory, cpus, images).
    type: dict
    required: true
  since:
    description: When they went down, in Unix seconds.
    type: int
    required: true
"""

EXAMPLES = r"""
plan: "{{ pico_deploy_placement.plan | pico.cloud.plan_powered_off(boards, now(utc=true).timestamp() | int) }}"
"""

RETURN = r"""
_value:
  description: The new plan document.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._plan_document import PlanDocumentError, with_powered_off


def _plan_powered_off(plan, boards, since):
    try:
        return with_powered_off(plan, boards, since)
    except (PlanDocumentError, TypeError, ValueError) as err:
        raise AnsibleFilterError("plan_powered_off: %s" % err)


class FilterModule(object):
    def filters(self):
        return {"plan_powered_off": _plan_powered_off}
