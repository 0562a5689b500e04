#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: service_wait
short_description: Wait until the cluster's discovery shows a service's instances as a rollout needs them
version_added: "0.5.0"
description:
  - Asks the pico-agent on this node, which answers for the whole cluster, until the healthy
    instances of a service match what is asked, for a given time without a break, or fails at a
    deadline. A rollout runs it on a node other than the ones it changes, so an instance counts
    only once the cluster's discovery publishes it, not when its container starts.
  - O(present) asks for instances (by node, count, and tag, the spec a rollout wrote); O(absent)
    for instances that must be gone from discovery (drained ones). Gone means gone from every
    member's discovery, each alive member's agent asked over the mesh, since each agent answers
    DNS and HTTP from its own copy of the catalog and a client on any node must no longer be
    given them. A member whose agent does not answer within 2 s is not waited for.
  - On failure the message names the service, the node and what that node's own agent says of
    its instances (health check output included), fetched over the mesh.
  - A node of O(present) that the cluster's gossip stops counting as alive (it failed or left,
    for example a board that lost its network) is not waited for. It is returned in RV(gone), and
    the rest is waited for as asked. A rollout goes on without such a node.
  - Only reads; check mode runs it too, which a dry run of a rollout does not reach.
options:
  name:
    description: The service.
    type: str
    required: true
  present:
    description: Instances that must be healthy in discovery.
    type: list
    elements: dict
    default: []
    suboptions:
      node:
        description: The node that runs them.
        type: str
        required: true
      count:
        description: How many of that node's instances, exactly.
        type: int
        default: 1
      tag:
        description: A tag each must carry (a rollout tags every instance with its spec, C(pico.spec:<digest>)).
        type: str
  absent:
    description: Nodes whose instances (with O(absent[].tag), if given) must not be in discovery.
    type: list
    elements: dict
    default: []
    suboptions:
      node:
        description: The node.
        type: str
        required: true
      tag:
        description: Only instances with this tag count.
        type: str
      id:
        description: Only the instance with this id (C(<node>/<service>-<replica>)).
        type: str
  min_healthy_time:
    description: Seconds the condition must hold without a break.
    type: float
    default: 0
  timeout:
    description: Seconds before giving up.
    type: float
    default: 180
  interval:
    description: Seconds between two looks.
    type: float
    default: 0.5
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
- name: Wait until pizero-2 serves the new version, healthy for 5 s
  pico.cloud.service_wait:
    name: web
    present: [{node: pizero-2, count: 1, tag: "pico.spec:0123456789abcdef"}]
    min_healthy_time: 5
    timeout: 180
  delegate_to: pizero-1
"""

RETURN = r"""
waited:
  description: Seconds until the condition held for O(min_healthy_time).
  returned: success
  type: float
instances:
  description: The service's healthy instances in discovery at the end.
  returned: always
  type: list
  elements: dict
gone:
  description: Nodes of O(present) that the cluster's gossip did not count as alive, so were not waited for.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._agent_api import DEFAULT_URL, AgentError, call, peer_url
from ansible_collections.pico.cloud.plugins.module_utils._service_spec import FAILOVER_TAG


def _selected(instances, which):
    """The node's own instances on which["node"], with its tag and id where it names them. A
    takeover (a replica the node runs for a failed peer) is not one of them: it carries the same
    spec tag, but its agent retires it on its own once the new plan's replicas serve."""
    return [i for i in instances if i.get("node") == which["node"]
            and not any(t.startswith(FAILOVER_TAG) for t in i.get("tags") or [])
            and (not which.get("tag") or which["tag"] in (i.get("tags") or []))
            and (not which.get("id") or i.get("id") == which["id"])]


def _matches(instances, present, absent):
    """None when the instances are as asked, else what is not yet so."""
    for want in present:
        have = _selected(instances, want)
        if len(have) != want["count"]:
            return "%s has %d healthy instance%s%s in discovery, %d wanted" % (
                want["node"], len(have), "" if len(have) == 1 else "s",
                " tagged %s" % want["tag"] if want.get("tag") else "", want["count"])
    for gone in absent:
        left = _selected(instances, gone)
        if left:
            return "%s still has %d instance%s in discovery" % (gone["node"], len(left), "" if len(left) == 1 else "s")
    return None


def _gone(url, present):
    """The nodes of `present` the cluster's gossip does not count as alive now."""
    status, body = call(url, "/v1/members")
    alive = set(m.get("name") for m in (body.get("members") or []) if m.get("status") == "alive") if status == 200 else None
    if alive is None:
        return []  # no answer on membership: wait for every node, as asked
    return sorted(set(want["node"] for want in present if want["node"] not in alive))


def _listed_elsewhere(url, name, absent):
    """None when no alive member's own discovery lists the instances of `absent`, else which does."""
    status, body = call(url, "/v1/members")
    if status != 200:
        return None  # no answer on membership: the local agent's view is all there is
    for member in body.get("members") or []:
        if member.get("status") != "alive" or not member.get("address"):
            continue
        try:
            status, services = call(peer_url(url, member["address"]), "/v1/services/%s" % name, timeout=2)
        except AgentError:
            continue  # its agent does not answer: it gives no client an address either
        left = _matches(services.get("instances", []), [], absent) if status == 200 else None
        if left:
            return "%s (as %s's discovery lists them)" % (left, member.get("name"))
    return None


def _node_report(url, name, node):
    """What the node's own agent says of its instances of the service, over the mesh."""
    try:
        status, members = call(url, "/v1/members")
        address = next((m["address"] for m in members.get("members", []) if m.get("name") == node), None)
        if address is None:
            return "%s is not a member of the cluster any more" % node
        status, health = call(peer_url(url, address), "/v1/health")
    except AgentError as err:
        return "its agent did not answer (%s)" % err
    parts = ["%s-%s %s%s%s" % (i["service"], i["replica"], i.get("health", "?"),
                               ": " + i["detail"] if i.get("detail") else "",
                               " (last failed check: %s)" % i["last_failure"] if i.get("last_failure") else "")
             for i in health.get("instances", []) if i.get("service") == name]
    return "; ".join(parts + ["agent problems: %s" % p for p in health.get("problems", [])]) or "no instance of %s" % name


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            present=dict(type="list", elements="dict", default=[], options=dict(
                node=dict(type="str", required=True), count=dict(type="int", default=1), tag=dict(type="str"))),
            absent=dict(type="list", elements="dict", default=[], options=dict(
                node=dict(type="str", required=True), tag=dict(type="str"), id=dict(type="str"))),
            min_healthy_time=dict(type="float", default=0),
            timeout=dict(type="float", default=180),
            interval=dict(type="float", default=0.5),
            api_url=dict(type="str", default=DEFAULT_URL),
        ),
        supports_check_mode=True,
    )
    p = module.params
    start = time.monotonic()
    held_since, instances, missing, gone = None, [], "nothing asked yet", []
    try:
        while True:
            now = time.monotonic()
            status, body = call(p["api_url"], "/v1/services/%s" % p["name"])
            instances = body.get("instances", []) if status == 200 else []
            gone = _gone(p["api_url"], p["present"]) if p["present"] else []
            present = [want for want in p["present"] if want["node"] not in gone]
            missing = _matches(instances, present, p["absent"])
            if missing is None and p["absent"]:
                missing = _listed_elsewhere(p["api_url"], p["name"], p["absent"])
            if missing is None:
                held_since = held_since if held_since is not None else now
                if now - held_since >= p["min_healthy_time"]:
                    module.exit_json(changed=False, waited=round(now - start, 2), instances=instances, gone=gone)
            else:
                held_since = None
            if now - start >= p["timeout"]:
                break
            time.sleep(p["interval"])
        if missing is None:
            missing = "healthy, but not for %g s without a break (it flapped)" % p["min_healthy_time"]
        node = next((w["node"] for w in present if _matches(instances, [w], []) is not None), None)
        report = " Its agent says: %s." % _node_report(p["api_url"], p["name"], node) if node else ""
        module.fail_json(msg="service %s: %s after %g s.%s" % (p["name"], missing, p["timeout"], report),
                         instances=instances, node=node, gone=gone)
    except AgentError as err:
        module.fail_json(msg=str(err), instances=instances, gone=gone)


if __name__ == "__main__":
    main()
