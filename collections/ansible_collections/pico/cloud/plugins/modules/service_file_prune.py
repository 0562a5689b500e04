#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: service_file_prune
short_description: Remove the service files of a node that neither a list nor the node's plan names
version_added: "0.7.0"
description:
  - Removes each C(<name>.json) in the agent's service directory whose service is neither in
    O(keep) nor in the plan the node holds (O(plan_file), written by the playbook
    pico.cloud.deploy). The agent then stops the service's containers.
  - The plan's services are deploy.yml's, whatever this run was given, so a provisioning run without
    the cluster's C(pico_services) never removes what deploy.yml placed. Only deploy.yml stops a
    service of the plan (when it is no longer declared).
  - A plan file that cannot be read, or that the playbook pico.cloud.deploy would refuse, stops the
    module before anything is removed.
options:
  keep:
    description: Services whose files stay (the agent role's C(pico_agent_services) and the cluster's C(pico_services)).
    type: list
    elements: str
    default: []
  path:
    description: The agent's service directory.
    type: path
    default: /etc/pico-agent/services
  plan_file:
    description: The plan the node holds; no file is a plan with no services.
    type: path
    default: /etc/pico-agent/plan.json
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
- name: Remove service files no longer listed
  pico.cloud.service_file_prune:
    keep: [demo, console]
"""

RETURN = r"""
removed:
  description: Services whose file was (or in check mode would be) removed.
  type: list
  elements: str
  returned: success
  sample: [old-console]
kept_for_plan:
  description: Services not in O(keep) whose file stays because the node's plan holds them.
  type: list
  elements: str
  returned: success
  sample: [web]
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._plan_document import BROKEN_FIX, PlanDocumentError, check_held
from ansible_collections.pico.cloud.plugins.module_utils._service_spec import PLAN_FILE, SERVICES_DIR


def plan_services(plan_file):
    """The names of the services the node's plan holds, the plan read as deploy.yml reads it
    (check_held); PlanDocumentError names the file, what is wrong and the fix."""
    try:
        with open(plan_file, "rb") as handle:
            plan = json.loads(handle.read().decode("utf-8"))
    except (IOError, OSError) as exc:
        if not os.path.exists(plan_file):
            return set()
        raise PlanDocumentError("%s: cannot read it (%s). %s" % (plan_file, exc, BROKEN_FIX))
    except ValueError as exc:
        raise PlanDocumentError("%s: not JSON (%s). %s" % (plan_file, exc, BROKEN_FIX))
    return set(check_held(plan, plan_file).get("services", {}))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            keep=dict(type="list", elements="str", default=[]),
            path=dict(type="path", default=SERVICES_DIR),
            plan_file=dict(type="path", default=PLAN_FILE),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        planned = plan_services(module.params["plan_file"])
    except PlanDocumentError as exc:
        module.fail_json(msg=str(exc))
    try:
        held = sorted(entry[:-len(".json")] for entry in os.listdir(path)
                      if entry.endswith(".json") and os.path.isfile(os.path.join(path, entry)))
    except OSError as exc:
        if os.path.isdir(path) or os.path.exists(path):
            module.fail_json(msg="cannot list %s: %s" % (path, exc))
        held = []  # no directory: no service files
    keep = set(module.params["keep"])
    removed = [name for name in held if name not in keep and name not in planned]
    if not module.check_mode:
        for index, name in enumerate(removed):
            try:
                os.unlink(os.path.join(path, name + ".json"))
            except OSError as exc:
                module.fail_json(msg="cannot remove %s: %s" % (os.path.join(path, name + ".json"), exc),
                                 removed=removed[:index])
    module.exit_json(changed=bool(removed), removed=removed,
                     kept_for_plan=[name for name in held if name not in keep and name in planned])


if __name__ == "__main__":
    main()
