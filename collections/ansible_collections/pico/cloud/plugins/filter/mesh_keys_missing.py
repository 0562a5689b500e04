# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: mesh_keys_missing
short_description: The nodes whose current WireGuard key a node does not hold
version_added: "0.7.0"
description:
  - A board that was away (unreachable or powered down) while other nodes' mesh keys were rotated,
    or while nodes joined, holds no current key of them, so its tunnels to them are down. Given the
    peer keys the board holds and every node's current key, the names of the nodes it misses.
  - Nodes with no current key (they run no mesh) are never counted.
positional: current
options:
  _input:
    description: The peer keys the board holds, as C(wg show IF peers) prints them, or a list.
    type: raw
    required: true
  current:
    description: Every node's current public key, by name.
    type: dict
    required: true
  skip:
    description: Names not to check, such as the board itself.
    type: raw
    default: []
"""

EXAMPLES = r"""
stale: "{{ probe.mesh_peers | pico.cloud.mesh_keys_missing(keys_by_node, skip=inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: The nodes whose current key the board does not hold, sorted by name.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._wireguard import keys_not_held


def _mesh_keys_missing(held_peers, current, skip=None):
    if not isinstance(held_peers, (str, list)) or not isinstance(current, dict):
        raise AnsibleFilterError("mesh_keys_missing needs the peer keys held (wg show IF peers, or a list) "
                                 "and every node's current key (dict of name to key)")
    skip = [skip] if isinstance(skip, str) else list(skip or [])
    return keys_not_held(held_peers, current, skip)


class FilterModule(object):
    def filters(self):
        return {"mesh_keys_missing": _mesh_keys_missing}
