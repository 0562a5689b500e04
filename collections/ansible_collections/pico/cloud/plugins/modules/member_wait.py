#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: member_wait
short_description: Wait until the cluster's membership shows nodes with a given status
version_added: "0.6.0"
description:
  - Asks the pico-agent on this node (which sees the whole cluster's Serf membership) until every
    named node has the status asked for, or fails at a deadline naming each node's status.
  - The playbook C(pico.cloud.energy) waits for V(left) before it cuts a board's power, so no peer fails it
    over, and for V(alive) after it powers a board up.
  - V(left) counts only once every other alive member's own agent (asked over the mesh) sees the nodes as
    left too. A leave is gossiped, and a member the leave has not reached would mark a board whose power
    was cut as failed, and fail it over. A member whose agent does not answer within 2 s is not waited for.
  - Only reads; check mode runs it too.
options:
  nodes:
    description: The node names.
    type: list
    elements: str
    required: true
  status:
    description: The status each must have.
    type: str
    choices: [alive, left]
    default: alive
  timeout:
    description: Seconds before giving up.
    type: float
    default: 120
  api_url:
    description: The agent's HTTP API on this node.
    type: str
    default: http://127.0.0.1:8500
extends_documentation_fragment:
  - pico.cloud.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: Wait until the board has left the cluster
  pico.cloud.member_wait:
    nodes: [pizero-3]
    status: left
  delegate_to: pizero-1
"""

RETURN = r"""
members:
  description: The status of each named node when the module ended (C(absent) when not a member).
  returned: always
  type: dict
  sample: {pizero-3: left}
waited:
  description: Seconds waited.
  returned: success
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._agent_api import DEFAULT_URL, AgentError, call, peer_url


def _not_left_elsewhere(url, members, nodes):
    """None when every other alive member's agent sees `nodes` as left; else what one sees."""
    for member in members.get("members") or []:
        if member.get("status") != "alive" or not member.get("address") or member.get("name") in nodes:
            continue
        try:
            status, theirs = call(peer_url(url, member["address"]), "/v1/members", timeout=2)
        except AgentError:
            continue  # its agent does not answer: nothing of its view to wait for
        by_name = dict((m.get("name"), m.get("status")) for m in theirs.get("members", [])) if status == 200 else {}
        pending = [node for node in nodes if by_name.get(node, "absent") != "left"]
        if status == 200 and pending:
            return "%s sees %s" % (member["name"], ", ".join("%s %s" % (node, by_name.get(node, "absent")) for node in pending))
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="list", elements="str", required=True),
            status=dict(type="str", default="alive", choices=["alive", "left"]),
            timeout=dict(type="float", default=120),
            api_url=dict(type="str", default=DEFAULT_URL),
        ),
        supports_check_mode=True,
    )
    p = module.params
    start = time.monotonic()
    seen, behind = {}, None
    try:
        while True:
            status, body = call(p["api_url"], "/v1/members")
            by_name = dict((m.get("name"), m.get("status")) for m in body.get("members", [])) if status == 200 else {}
            seen = dict((node, by_name.get(node, "absent")) for node in p["nodes"])
            if all(state == p["status"] for state in seen.values()):
                behind = _not_left_elsewhere(p["api_url"], body, p["nodes"]) if p["status"] == "left" else None
                if behind is None:
                    module.exit_json(changed=False, members=seen, waited=round(time.monotonic() - start, 2))
            if time.monotonic() - start >= p["timeout"]:
                break
            time.sleep(0.5)
        module.fail_json(msg="after %g s, not every node is %s: %s%s" % (
            p["timeout"], p["status"], ", ".join("%s %s" % item for item in sorted(seen.items())),
            "; but %s" % behind if behind else ""), members=seen)
    except AgentError as err:
        module.fail_json(msg=str(err), members=seen)


if __name__ == "__main__":
    main()
