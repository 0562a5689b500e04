# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: mesh_peers
short_description: Every member of the WireGuard mesh, the ones this run did not reach as their peers last knew them
version_added: "0.7.0"
description:
  - The members a run reached give their address, endpoint, port and public key fresh. A member it
    did not reach (a board that lost its network, or is powered down) keeps the entry the reached
    members hold in their own WireGuard configuration, so its peers keep it and it rejoins the mesh
    by itself once it is back. The entry is never taken from a controller cache.
  - Where the reached members hold different entries for a member, the one with its newest key
    wins (a member away during a key rotation holds an older one), then the one most hold.
  - Members whose key no reached member holds (they never joined) are returned apart.
positional: fresh, records
extends_documentation_fragment:
  - pico.cloud.mesh_probes
options:
  fresh:
    description: >-
      What this run learned from each member it reached, by name - C(address), C(endpoint),
      C(port), C(public_key) and C(key_time) (when its key was made, on its own clock).
    type: dict
    required: true
"""

EXAMPLES = r"""
mesh: "{{ groups['pico_nodes'] | pico.cloud.mesh_peers(fresh, records) }}"
"""

RETURN = r"""
_value:
  description: >-
    C(peers), every member with a known key by name (C(last_known) true where the entry is a peer's
    record), and C(unknown), the members no one holds a key of.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._wireguard import mesh_from_probes


def _mesh_peers(members, fresh, records):
    if not isinstance(members, list) or not isinstance(fresh, dict) or not isinstance(records, dict):
        raise AnsibleFilterError("mesh_peers needs the members (list), fresh (dict) and records (dict)")
    for name, entry in fresh.items():
        missing = [key for key in ("address", "endpoint", "port") if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise AnsibleFilterError("mesh_peers: %s lacks %s" % (name, ", ".join(missing)))
    fresh = dict((name, dict(entry, port=int(entry["port"]), key_time=int(entry.get("key_time") or 0)))
                 for name, entry in fresh.items())
    peers, unknown = mesh_from_probes(members, fresh, records)
    return {"peers": peers, "unknown": unknown}


class FilterModule(object):
    def filters(self):
        return {"mesh_peers": _mesh_peers}
