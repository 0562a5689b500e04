# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: rollout_away
short_description: Which nodes a rollout step found away, and which failures are the rollout's own
version_added: "0.7.0"
description:
  - Takes the results of a rollout step run on each node in turn (a loop delegated to the nodes,
    with C(ignore_unreachable) and C(ignore_errors)) and the cluster's members as a node's agent
    lists them (C(/v1/members)).
  - A node is away when Ansible could not reach it, or when its step failed and the cluster's gossip
    no longer counts it C(alive) (a board that froze or lost its network while Ansible held a
    connection to it). The rollout goes on without it. Any other failure is the rollout's own.
  - Without the members (no node could be asked), only the unreachable nodes are away.
positional: members
options:
  _input:
    description: The step's registered C(results), each with C(item) (a rollout step with C(node), or a node name).
    type: list
    elements: dict
    required: true
  members:
    description: The cluster's members, each with C(name) and C(status); null when unknown.
    type: list
    elements: dict
"""

EXAMPLES = r"""
found: "{{ step.results | pico.cloud.rollout_away(members.json.members) }}"
"""

RETURN = r"""
_value:
  description: C(away), the nodes away, and C(failed), each other failure with C(node) and C(msg).
  type: dict
"""

from ansible.errors import AnsibleFilterError


def _node_of(result):
    item = result.get("item")
    if isinstance(item, dict) and item.get("node"):
        return item["node"]
    if isinstance(item, str) and item:
        return item
    raise AnsibleFilterError("rollout_away: a result without the node it ran for: %r" % (item,))


def _rollout_away(results, members=None):
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise AnsibleFilterError("rollout_away expects a step's loop results (a list of mappings)")
    status = None
    if members is not None:
        if not isinstance(members, list):
            raise AnsibleFilterError("rollout_away: members must be a list of {name, status}, got %r" % (members,))
        status = dict((m.get("name"), m.get("status")) for m in members if isinstance(m, dict))
    away, failed = [], []
    for result in results:
        if not (result.get("unreachable") or result.get("failed")):
            continue
        node = _node_of(result)
        if result.get("unreachable") or (status is not None and status.get(node) != "alive"):
            if node not in away:
                away.append(node)
        else:
            failed.append({"node": node, "msg": result.get("msg") or "failed"})
    return {"away": away, "failed": failed}


class FilterModule(object):
    def filters(self):
        return {"rollout_away": _rollout_away}
