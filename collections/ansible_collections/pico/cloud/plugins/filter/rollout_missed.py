# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: rollout_missed
short_description: What a rollout left undone on each node found away during it
version_added: "0.7.0"
description:
  - For each node a rollout found away (see pico.cloud.rollout_away), one sentence naming the
    services and steps planned for it, for the run's closing summary. Such a node keeps what it
    ran; the agents of the other nodes cover its slots by failover until a deploy reaches it.
positional: rollouts
options:
  _input:
    description: The nodes found away.
    type: list
    elements: str
    required: true
  rollouts:
    description: The rollouts of pico.cloud.service_plan (C(service) and C(batches) of C(steps)).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
notes: "{{ away | pico.cloud.rollout_missed(plan.rollouts) }}"
"""

RETURN = r"""
_value:
  description: A sentence per node found away, by node.
  type: dict
"""

from ansible.errors import AnsibleFilterError


def _rollout_missed(away, rollouts):
    """Per node found away, a sentence of the rollout steps it did not get, for the run's summary."""
    if not isinstance(away, list) or not isinstance(rollouts, list):
        raise AnsibleFilterError("rollout_missed expects the nodes away (list) and the rollouts (list)")
    missed = {}
    for node in away:
        parts = []
        for rollout in rollouts:
            for batch in rollout.get("batches") or []:
                for step in batch.get("steps") or []:
                    if step.get("node") != node:
                        continue
                    new = step.get("new")
                    if new:
                        parts.append("%s (%s to %d of %s)" % (rollout.get("service"), step.get("action"),
                                                              new.get("replicas", 1), new.get("image", "?")))
                    else:
                        parts.append("%s (%s)" % (rollout.get("service"), step.get("action")))
        missed[node] = ("not rolled out there, or not all of it: %s; the agents cover its slots by failover "
                        "until a deploy reaches it: run deploy.yml again once it is back." % ", ".join(parts)
                        ) if parts else "the new plan did not reach it: run deploy.yml again once it is back."
    return missed


class FilterModule(object):
    def filters(self):
        return {"rollout_missed": _rollout_missed}
