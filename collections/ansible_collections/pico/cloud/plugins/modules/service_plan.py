#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: service_plan
short_description: Place service replicas on nodes and work out the rollout that gets there
version_added: "0.5.0"
description:
  - Runs on the controller (an action plugin; nothing runs on a node). Validates the cluster's
    service declarations, places every replica slot on a node with the planner in
    C(module_utils/_placement.py), which is pure and deterministic (the same inputs give the same plan),
    and returns the plan, each node's service files, and for each service the batches of node
    changes a rollout makes.
  - Placement respects constraints (architecture, board, node labels), resource requests (memory
    and CPU against each node's capacity), the image each node has for its architecture, and
    spreads replicas over nodes or a label (C(spread)), or packs them on as few nodes as fit
    (C(strategy=pack)). It is stable. A plan with nothing changed moves nothing, a new node takes
    only what spreading needs, a node that is gone gives up only its own replicas.
  - A declaration that cannot be placed in full fails with the service and the reason, before
    anything changes; there is never a partial plan.
  - Reports C(changed) when the placement or a node's service files would change, with the
    placement change as its diff.
options:
  services:
    description:
      - The service declarations (C(pico_services)). Each has C(name), C(image) (a name, or a
        mapping of architecture to name), C(replicas), C(port), C(health), C(env), C(command),
        C(tags), C(network), C(container_port) (what the agent runs), C(resources) (C(memory),
        C(cpu) requests), C(constraints) (C(arch), C(board), C(labels)), C(spread) (V(node) or
        V(label:<name>)), C(strategy) (V(spread) or V(pack)), C(min_nodes) (the fewest nodes its
        replicas use) and C(update) (C(batch_size),
        C(order), C(min_healthy_time), C(healthy_deadline), C(canary), C(auto_rollback),
        C(drain_time)). Unknown fields are refused.
    type: list
    elements: dict
    required: true
  nodes:
    description:
      - Every node of the cluster with C(name), C(arch), C(board), C(labels), C(memory), C(cpus),
        C(images) (image names it has; omitted means unknown) and C(alive).
      - A bare name stands for a member that is down (unreachable), which takes no replicas.
    type: list
    elements: raw
    required: true
  current:
    description:
      - The plan the nodes hold (C(generation), C(version), C(services)); empty for a first deploy.
      - Ignored when O(held) is given.
    type: dict
    default: {}
  held:
    description:
      - The plan each node holds, by node name (null where a node holds none). Every one is
        checked, and one that is not a plan fails the task naming the node and O(plan_file);
        the newest (highest C(generation)) is the one this plan builds on.
    type: dict
  plan_file:
    description: Where the nodes keep their plan, for the messages about O(held).
    type: str
  agent_check:
    description:
      - The agent bundle's path on the task's node (the agent role installs it). When the plan
        or a service file would change, that node's agent checks the new plan and every service
        file with its own parser (C(check-plan), over stdin) and the task fails with each
        problem, its nodes and the agent's message, before anything is drained or written.
    type: path
  node_services:
    description: Each node's current service files, by node and service name.
    type: dict
    default: {}
  only:
    description: Change only this service; every other keeps the placement the nodes hold.
    type: str
  cluster_id:
    description:
      - The cluster's id (C(pico_agent_gossip_key | pico.cloud.cluster_id)), written into the plan.
        An agent takes only a plan that carries its own cluster's id.
    type: str
  drain:
    description: Nodes to drain (a name or a list); they take no replicas, in this plan and later ones, until undrained.
    type: raw
  undrain:
    description: Drained nodes that take replicas again.
    type: raw
  consolidate:
    description:
      - Place every service on as few nodes as its declaration allows (C(strategy=pack),
        C(min_nodes)); slots already on nodes that stay in use are kept, so only the replicas on
        nodes being emptied move. The plan's C(empty) names the nodes left empty
        (the playbook C(pico.cloud.energy) powers them down).
    type: bool
    default: false
  standby:
    description:
      - Nodes found powered off at their switch. Those the current plan records as
        C(powered_off) may be powered up when the live nodes lack room; the fewest that make the
        plan fit, in pack order, are returned in RV(wake).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - pico.cloud.attributes
  - pico.cloud.attributes.flow
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  action:
    support: full
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: Plan the placement of every declared service
  pico.cloud.service_plan:
    services: "{{ pico_services }}"
    nodes: "{{ ansible_play_hosts | map('extract', hostvars, 'pico_deploy_node') | list }}"
    current: "{{ newest_plan }}"
  run_once: true
  register: placement
"""

RETURN = r"""
plan:
  description:
    - C(generation), C(version), C(cluster), C(services) (each with C(digest), C(slots), a node per
      replica, and C(failover), what an agent needs to take a failed node's slot, namely
      C(candidates), C(requests) and one replica's service file per architecture), C(nodes) (architecture,
      capacity and requests per node), C(drained) (nodes kept empty), C(empty) (live nodes with
      no replica) and C(powered_off) (nodes powered down on purpose, each with what it was).
    - The failover specs carry the services' C(env), so the plan is written 0600 on the nodes.
  returned: success
  type: dict
node_files:
  description: By node, the service files its agent runs under the plan.
  returned: success
  type: dict
rollouts:
  description: By service with something to change, its update C(policy) and C(batches) of steps (C(node), C(action), C(old), C(new)).
  returned: success
  type: list
  elements: dict
removed:
  description: Services the nodes run under the old plan that are no longer declared.
  returned: success
  type: list
  elements: str
wake:
  description: Powered-down nodes (O(standby)) the plan needs for room and places replicas on; power them up first.
  returned: success
  type: list
  elements: str
moves:
  description: Each slot that changes node, as [service, slot, from, to].
  returned: success
  type: list
  elements: list
"""
