# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: rollout_wait
short_description: What pico.cloud.service_wait should wait for, from a batch of rollout steps
version_added: "0.5.0"
description:
  - Turns rollout steps (from pico.cloud.service_plan, each with C(node), C(old) and C(new)
    service files) into the O(pico.cloud.service_wait#module:present) or
    O(pico.cloud.service_wait#module:absent) entries of M(pico.cloud.service_wait).
  - V(new) or V(old) give, for each step with that file, the node, its replica count and the
    spec tag its instances carry, that is what must be healthy after the step, or after a rollback.
  - V(gone) gives, for each step, the node and the old spec tag, for instances that must have left
    discovery once drained; for a scale-down, the ids of the replicas that go.
positional: which
options:
  _input:
    description: Rollout steps.
    type: list
    elements: dict
    required: true
  which:
    description: V(new), V(old) or V(gone).
    type: str
    required: true
"""

EXAMPLES = r"""
present: "{{ batch.steps | pico.cloud.rollout_wait('new') }}"
"""

RETURN = r"""
_value:
  description: Entries for service_wait, each with node and tag, and count for V(new) and V(old).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._placement import spec_tag


def _rollout_wait(steps, which):
    if which not in ("new", "old", "gone"):
        raise AnsibleFilterError("rollout_wait: which must be new, old or gone, got %r" % (which,))
    if not isinstance(steps, list):
        raise AnsibleFilterError("rollout_wait expects a list of rollout steps, got %r" % (type(steps).__name__,))
    found = []
    for step in steps:
        if not isinstance(step, dict) or "node" not in step:
            raise AnsibleFilterError("rollout_wait: %r is not a rollout step (node, old, new)" % (step,))
        if which == "gone":
            if step.get("drain"):  # scaling down: only these replicas leave
                found.extend({"node": step["node"], "id": "%s/%s-%d" % (step["node"], step["old"]["name"], i)}
                             for i in step["drain"])
            elif step.get("old"):
                found.append({"node": step["node"], "tag": spec_tag(step["old"])})
            continue
        spec = step.get(which)
        if spec:
            found.append({"node": step["node"], "count": spec.get("replicas", 1), "tag": spec_tag(spec)})
    return found


class FilterModule(object):
    def filters(self):
        return {"rollout_wait": _rollout_wait}
