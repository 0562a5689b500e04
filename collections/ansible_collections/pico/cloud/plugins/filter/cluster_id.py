# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: cluster_id
short_description: A public id of the cluster, derived from its gossip key
version_added: "0.6.0"
description:
  - The first 16 hex digits of a SHA-256 of the gossip key, with a fixed prefix. Nodes share the
    key, so they share the id. deploy.yml writes it into the plan and the agent role into each
    agent's configuration; an agent takes only a plan with its own cluster's id.
  - It reveals nothing usable about the key, and it changes when the key does.
options:
  _input:
    description: The gossip key (C(pico_agent_gossip_key)).
    type: str
    required: true
"""

EXAMPLES = r"""
cluster_id: "{{ pico_agent_gossip_key | pico.cloud.cluster_id }}"
"""

RETURN = r"""
_value:
  description: 16 hex digits.
  type: str
"""

import hashlib

from ansible.errors import AnsibleFilterError


def _cluster_id(gossip_key):
    if not isinstance(gossip_key, str) or not gossip_key:
        raise AnsibleFilterError("cluster_id needs the gossip key (pico_agent_gossip_key), which is empty or not a string")
    return hashlib.sha256(("pico-cluster:" + gossip_key).encode()).hexdigest()[:16]


class FilterModule(object):
    def filters(self):
        return {"cluster_id": _cluster_id}
