# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: newest_plan
short_description: The newest of the plan documents the nodes hold
version_added: "0.7.0"
description:
  - Takes the plan each node holds (C(/etc/pico-agent/plan.json), by node name; null where a node
    has none) and returns the one with the highest generation, the first node by name among
    equals (the plan the cluster runs). The same choice as C(pico.cloud.service_plan) makes.
  - A plan file that cannot be read fails the filter with the node, the file and the fix, unless
    O(skip_broken) is set (a status report leaves it out).
positional: skip_broken
options:
  _input:
    description: Node name to the plan it holds (a dict), or null.
    type: dict
    required: true
  skip_broken:
    description: Leave out plan files that cannot be read instead of failing.
    type: bool
    default: false
"""

EXAMPLES = r"""
plan: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'held_plan'))) | pico.cloud.newest_plan }}"
"""

RETURN = r"""
_value:
  description: The newest plan, or an empty dict when no node holds one.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._plan_document import PlanDocumentError, newest


def _newest_plan(held, skip_broken=False):
    try:
        return newest(held, skip_broken=skip_broken)
    except PlanDocumentError as err:
        raise AnsibleFilterError("newest_plan: %s" % err)


class FilterModule(object):
    def filters(self):
        return {"newest_plan": _newest_plan}
