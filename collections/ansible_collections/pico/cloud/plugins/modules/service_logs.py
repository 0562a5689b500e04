#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: service_logs
short_description: The last lines each container of a service on this node wrote
version_added: "0.6.0"
description:
  - Reads, through the node's Docker-compatible API (Podman and Docker alike), the last O(lines)
    lines of every container the pico-agent runs for a service on this node, running or
    stopped; its own replicas, and the replicas it runs for failed boards (takeovers).
  - Every value of the service's C(env) (in this node's service file, and in the plan's specs the
    node holds for takeovers) of four characters or more is replaced by C(********) in the lines
    returned, so a service that prints its secrets does not send them to the controller.
  - Only reads.
options:
  service:
    description: The service, by its name.
    type: str
    required: true
  lines:
    description: Lines per container, the newest; 1 to 1000.
    type: int
    default: 50
  services_dir:
    description: The agent's directory of service files.
    type: path
    default: /etc/pico-agent/services
  plan_file:
    description: The plan the node holds.
    type: path
    default: /etc/pico-agent/plan.json
  node:
    description: The board's name in the headers of RV(text); the host's name if not given.
    type: str
extends_documentation_fragment:
  - pico.cloud.attributes
  - pico.cloud.docker_api
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: The last 100 lines of every container of web on this node
  pico.cloud.service_logs:
    service: web
    lines: 100
"""

RETURN = r"""
instances:
  description: One entry per container, replicas first, then takeovers.
  type: list
  elements: dict
  returned: always
  contains:
    container:
      description: The container's name (C(pico-<service>-<replica>), or C(pico-<service>-for-<owner>-<slot>) for a takeover).
      type: str
    replica:
      description: The replica number the agent gave it.
      type: int
    takeover_of:
      description: For a takeover, the failed board whose slot it runs; else null.
      type: str
    slot:
      description: For a takeover, the slot of that board; else null.
      type: int
    state:
      description: The container's state (running, exited, ...).
      type: str
    lines:
      description: Its last lines, oldest first, each with the engine's timestamp.
      type: list
      elements: str
text:
  description: The same as a block of text, a header line per container.
  type: str
  returned: always
"""

import json
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._docker_api import DOCKER_API_ARGUMENT_SPEC, DockerAPI, DockerAPIError
from ansible_collections.pico.cloud.plugins.module_utils._service_spec import NAME_RE, PLAN_FILE, SERVICES_DIR

MAX_LINES = 1000
# What the engine may send for one container: a tail of 1000 long lines, not a runaway log.
MAX_BYTES = 4 * 1024 * 1024
# Shorter values ("1", "true") would mask every such word in the logs and hide nothing secret.
MIN_SECRET_CHARS = 4
MASK = "********"


def env_values(service, services_dir, plan_file):
    """Every value of the service's env this node holds: its service file, the plan's specs."""
    specs = []
    for path, pick in ((os.path.join(services_dir, service + ".json"), lambda doc: [doc]),
                       (plan_file, lambda doc: list(((doc.get("services") or {}).get(service) or {})
                                                    .get("specs", {}).values()))):
        try:
            with open(path, "rb") as handle:
                specs += pick(json.loads(handle.read().decode("utf-8")))
        except (IOError, OSError, ValueError, AttributeError, TypeError):
            continue  # no such file, or not one the agent would take: nothing of it to hide
    values = set()
    for spec in specs:
        env = spec.get("env") if isinstance(spec, dict) else None
        if isinstance(env, dict):
            values.update(str(v) for v in env.values() if len(str(v)) >= MIN_SECRET_CHARS)
    return sorted(values, key=len, reverse=True)  # the longest first: no half-masked value


def masked(line, secrets):
    for secret in secrets:
        line = line.replace(secret, MASK)
    return line


def describe(container, service):
    """(replica, takeover_of, slot) from the name the agent gives a container."""
    name = (container.get("Names") or ["?"])[0].lstrip("/")
    labels = container.get("Labels") or {}
    replica = labels.get("pico.replica")
    replica = int(replica) if replica is not None and replica.isdigit() else None
    takeover = re.match(r"^pico-%s-for-(.+)-([0-9]+)$" % re.escape(service), name)
    if takeover:
        return name, replica, takeover.group(1), int(takeover.group(2))
    return name, replica, None, None


def read(api, service, lines, secrets):
    instances = []
    for container in api.containers_labelled("pico.service=%s" % service):
        name, replica, owner, slot = describe(container, service)
        try:
            text = api.logs(container["Id"], lines, MAX_BYTES)
        except DockerAPIError as exc:
            text = ["(its logs could not be read: %s)" % exc]
        instances.append(dict(container=name, replica=replica, takeover_of=owner, slot=slot,
                              state=container.get("State") or "unknown", lines=[masked(t, secrets) for t in text]))
    instances.sort(key=lambda i: (i["takeover_of"] is not None, i["takeover_of"] or "", i["slot"] or 0,
                                  i["replica"] if i["replica"] is not None else -1))
    return instances


def as_text(service, node, instances):
    blocks = []
    for instance in instances:
        what = ("%s for %s slot %d" % (service, instance["takeover_of"], instance["slot"])
                if instance["takeover_of"] else "%s replica %s" % (service, instance["replica"]))
        header = "== %s on %s (%s, container %s) ==" % (what, node, instance["state"], instance["container"])
        blocks.append("\n".join([header] + (instance["lines"] or ["(no output)"])))
    return "\n".join(blocks)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type="str", required=True),
            lines=dict(type="int", default=50),
            services_dir=dict(type="path", default=SERVICES_DIR),
            plan_file=dict(type="path", default=PLAN_FILE),
            node=dict(type="str"),
            **DOCKER_API_ARGUMENT_SPEC
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not NAME_RE.match(params["service"]):
        module.fail_json(msg="service %r is not a service name (lower-case letters, digits and '-', at most 63)"
                         % params["service"])
    if not 1 <= params["lines"] <= MAX_LINES:
        module.fail_json(msg="lines = %d: ask for 1 to %d lines" % (params["lines"], MAX_LINES))
    secrets = env_values(params["service"], params["services_dir"], params["plan_file"])
    try:
        instances = read(DockerAPI(params["api_socket"], timeout=30), params["service"], params["lines"], secrets)
    except DockerAPIError as exc:
        module.fail_json(msg="reading the logs of %s failed: %s" % (params["service"], exc))
    node = params["node"] or os.uname()[1]
    module.exit_json(changed=False, instances=instances, text=as_text(params["service"], node, instances))


if __name__ == "__main__":
    main()
