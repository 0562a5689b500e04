# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: mesh_problems
short_description: Everything wrong with a planned WireGuard mesh
version_added: 0.1.0
description:
- Checks a planned mesh before any node changes and returns one sentence per problem that names the host,
  the value and the fix. An empty list means the plan is sound.
- Finds duplicate mesh addresses, addresses outside the mesh network, missing endpoints, endpoints or
  LAN networks that overlap the mesh network, and endpoints a node cannot reach.
positional: network
options:
  _input:
    description: Nodes by name, each a dict with C(address), C(endpoint), C(lan_networks) (CIDRs) and
      C(unreachable) (endpoints this node could not reach).
    type: dict
    required: true
  network:
    description: The mesh network, for example C(10.99.0.0/16).
    type: str
    required: true
"""

EXAMPLES = r"""
problems: "{{ nodes | pico.cloud.mesh_problems('10.99.0.0/16') }}"
"""

RETURN = r"""
_value:
  description: Problems, one sentence each; empty when the mesh plan is sound.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._wireguard import mesh_problems


def _mesh_problems(nodes, network):
    if not isinstance(nodes, dict):
        raise AnsibleFilterError("mesh_problems needs a dict of nodes, got %r" % (type(nodes).__name__,))
    return mesh_problems(nodes, network)


class FilterModule(object):
    def filters(self):
        return {"mesh_problems": _mesh_problems}
