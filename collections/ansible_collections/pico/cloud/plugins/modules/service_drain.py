#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: service_drain
short_description: Take a service's instances on this node out of discovery, or put them back
version_added: "0.5.0"
description:
  - Asks the node's pico-agent to stop publishing its instances of a service in DNS and HTTP
    discovery while they keep running and being health-checked, so clients stop choosing them
    before they are stopped (a rollout drains a node's old instances first, then waits for the
    change to reach every peer). The next version of the service is published as usual.
  - With O(state=published), the instances are published again (a rollback of a drained node).
  - Runs on the node. The agent answers on its loopback address, with the API token the agent
    made on the node, which never leaves it.
options:
  name:
    description: The service.
    type: str
    required: true
  replicas:
    description: Only these replicas (numbers from 0) are drained; default all. A scale-down drains the ones that go.
    type: list
    elements: int
  state:
    description: V(drained) to withdraw the instances from discovery, V(published) to publish them again.
    type: str
    choices: [drained, published]
    default: drained
  api_url:
    description: The agent's HTTP API on this node.
    type: str
    default: http://127.0.0.1:8500
  token_file:
    description: The agent's API token file on this node (root only).
    type: path
    default: /var/lib/pico-agent/api-token
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
- name: Take the old web instances out of discovery before they stop
  pico.cloud.service_drain:
    name: web
"""

RETURN = r"""
instances:
  description: The node's instances of the service (replica keys) when the call was made.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._agent_api import DEFAULT_TOKEN_FILE, DEFAULT_URL, AgentError, call, read_token


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            replicas=dict(type="list", elements="int"),
            state=dict(type="str", choices=["drained", "published"], default="drained"),
            api_url=dict(type="str", default=DEFAULT_URL),
            token_file=dict(type="path", default=DEFAULT_TOKEN_FILE),
        ),
        supports_check_mode=True,
    )
    name, drained = module.params["name"], module.params["state"] == "drained"
    try:
        status, health = call(module.params["api_url"], "/v1/health")
        only = module.params["replicas"]
        mine = [i for i in health.get("instances", []) if i.get("service") == name
                and (not drained or only is None or i.get("replica") in only)]
        keys = sorted("%s-%s" % (i["service"], i["replica"]) for i in mine)
        changed = any(bool(i.get("drained")) != drained for i in mine)
        if changed and not module.check_mode:
            token = read_token(module.params["token_file"])
            query = "?replicas=%s" % ",".join(str(n) for n in only) if drained and only is not None else ""
            status, body = call(module.params["api_url"], "/v1/services/%s/drain%s" % (name, query),
                                method="POST" if drained else "DELETE", token=token)
            if status != 200:
                module.fail_json(msg="the agent refused to %s %s: HTTP %s %s" % (
                    "drain" if drained else "publish", name, status, body.get("error", body)), instances=keys)
    except AgentError as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=changed, instances=keys)


if __name__ == "__main__":
    main()
