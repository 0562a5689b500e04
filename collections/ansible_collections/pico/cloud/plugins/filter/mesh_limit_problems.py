# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: mesh_limit_problems
short_description: What a run limited to some mesh members would leave wrong on the others
version_added: "0.7.0"
description:
  - A run limited to some members of the mesh (C(--limit)) changes nothing on the members outside
    it, so it is sound only where they need to learn nothing. Every member in the play must have
    its key already and keep the mesh address and port its interface runs with, and every member
    outside must be held by a member in the play, so its entry is kept as last known (as for a
    board that is away). An endpoint that moves is learned by WireGuard's roaming.
  - The entry kept for a member outside must be current - a member in the play shook hands with it
    at that key in the last 3 minutes. So a key rotated while the members in the play were away is
    found, and a member outside that is down needs the run without C(--limit) too.
  - Returns one sentence per problem, naming the member and the fix; empty when the run is not
    limited.
positional: in_play, fresh, records
extends_documentation_fragment:
  - pico.cloud.mesh_probes
options:
  in_play:
    description: The hosts the play started with (C(ansible_play_hosts_all)); a board unreachable
      now is in it (it is away, not outside the run).
    type: list
    elements: str
    required: true
  fresh:
    description: >-
      What this run learned from each member it reached, by name - C(address), C(port),
      C(public_key) (null where a key would be made), C(applied), the probe's line
      C(applied ADDRESS PORT) of the settings the member's interface runs with (empty where none),
      and C(shook_hands), the public keys of the peers it shook hands with in the last 3 minutes.
    type: dict
    required: true
"""

EXAMPLES = r"""
problems: "{{ groups['pico_nodes'] | pico.cloud.mesh_limit_problems(ansible_play_hosts_all, fresh, records) }}"
"""

RETURN = r"""
_value:
  description: Problems, one sentence each; empty when a limited run is sound or the run is not limited.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._wireguard import limit_problems


def _mesh_limit_problems(members, in_play, fresh, records):
    if not isinstance(members, list) or not isinstance(in_play, list) or not isinstance(fresh, dict) \
            or not isinstance(records, dict):
        raise AnsibleFilterError("mesh_limit_problems needs the members (list), in_play (list), fresh (dict) and records (dict)")
    return limit_problems(members, in_play, fresh, records)


class FilterModule(object):
    def filters(self):
        return {"mesh_limit_problems": _mesh_limit_problems}
