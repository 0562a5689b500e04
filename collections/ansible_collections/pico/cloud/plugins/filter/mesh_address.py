# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: mesh_address
short_description: The stable WireGuard mesh address of a node
version_added: "0.1.0"
description:
  - Derives a node's mesh address from its name and the mesh network alone (a SHA-256 hash of
    the name, inside the network), so adding, removing or reordering nodes never renumbers the
    others.
positional: network
options:
  _input:
    description: The node's name (normally C(inventory_hostname)).
    type: str
    required: true
  network:
    description: The mesh network, for example C(10.99.0.0/16).
    type: str
    required: true
"""

EXAMPLES = r"""
address: "{{ inventory_hostname | pico.cloud.mesh_address('10.99.0.0/16') }}"
"""

RETURN = r"""
_value:
  description: The address, without prefix length.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._wireguard import mesh_address


def _mesh_address(name, network):
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError("mesh_address needs a node name, got %r" % (name,))
    try:
        return mesh_address(name, network)
    except ValueError as exc:
        raise AnsibleFilterError("mesh_address: bad mesh network %r: %s" % (network, exc))


class FilterModule(object):
    def filters(self):
        return {"mesh_address": _mesh_address}
