#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wireguard_peers
short_description: Apply the peers of a WireGuard configuration file to its running interface, touching only those that differ
version_added: "0.7.0"
description:
  - Makes the peers a running WireGuard interface has those its configuration file declares. It
    adds the new ones, updates the endpoint, keepalive or allowed IPs of those that differ, and
    removes those the file no longer lists, in one C(wg set).
  - A peer that is already as declared is not touched. C(wg syncconf) replaces the allowed IPs of
    every peer it is given, and for that moment the peer's packets have no route (seen as a lost
    echo on a running tunnel while another peer was added). Here only the peers whose allowed IPs
    differ have them replaced, and new peers are added before old ones are removed, so an address
    that moves to a new key (a key rotation) is routed all along.
  - The interface's own settings (private key, port, address, MTU) are left as they are; they
    need the interface restarted. The private key is never passed or returned; the first line of
    C(wg show IF dump), which holds it, is skipped, and a failure never quotes that output.
options:
  interface:
    description: The running WireGuard interface.
    type: str
    required: true
  config:
    description: The configuration file whose [Peer] sections to apply.
    type: path
    required: true
extends_documentation_fragment:
  - pico.cloud.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: One line per peer before and after (name, public key, endpoint, allowed IPs); no secret.
requirements:
  - wireguard-tools (C(wg)) on the managed node
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: Apply the mesh's peers to wg0 without touching the running tunnels
  pico.cloud.wireguard_peers:
    interface: wg0
    config: /etc/wireguard/wg0.conf
"""

RETURN = r"""
added:
  description: The peers added, by the name the file's comment gives them (else the public key).
  type: list
  elements: str
  returned: always
  sample: [pizero-1]
updated:
  description: The peers whose endpoint, keepalive or allowed IPs changed.
  type: list
  elements: str
  returned: always
removed:
  description: The public keys of the peers removed (the file no longer lists them).
  type: list
  elements: str
  returned: always
"""

import socket

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._wireguard import config_peers, dump_peers, peer_changes


def endpoints_of(endpoint):
    """The host:port forms a configured endpoint runs as: a DNS name resolves to addresses."""
    host, sep, port = endpoint.rpartition(":")
    host = host.strip("[]")
    try:
        found = socket.getaddrinfo(host, int(port), 0, socket.SOCK_DGRAM)
    except (socket.error, ValueError):
        return [endpoint]
    forms = [endpoint]
    for family, dummy, dummy, dummy, address in found:
        forms.append(("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (address[0], address[1]))
    return forms


def describe(peers):
    return "".join("%s %s endpoint=%s keepalive=%s allowed-ips=%s\n"
                   % (peer["name"] or "-", key, peer["endpoint"] or "-", peer["keepalive"] or "off",
                      ",".join(peer["allowed_ips"]) or "-")
                   for key, peer in sorted(peers.items(), key=lambda item: (item[1]["name"] or "", item[0])))


def main():
    module = AnsibleModule(
        argument_spec=dict(interface=dict(type="str", required=True), config=dict(type="path", required=True)),
        supports_check_mode=True,
    )
    interface, path = module.params["interface"], module.params["config"]
    try:
        with open(path) as handle:
            wanted = config_peers(handle.read())
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc))
    except ValueError as exc:
        module.fail_json(msg="%s, %s; nothing was changed" % (path, exc))
    wg = module.get_bin_path("wg", required=True)
    rc, out, dummy = module.run_command([wg, "show", interface, "dump"])
    if rc != 0:
        # Never quote the output: its first line holds the private key.
        module.fail_json(msg="`wg show %s dump` failed with exit code %d: is the interface up (systemctl status wg-quick@%s)?"
                         % (interface, rc, interface))
    running = dump_peers(out)
    args, report = peer_changes(wanted, running, endpoints_of)
    changed = bool(args)
    if changed and not module.check_mode:
        rc, dummy, err = module.run_command([wg, "set", interface] + args)
        if rc != 0:
            module.fail_json(msg="`wg set %s` failed with exit code %d: %s" % (interface, rc, err.strip()), **report)
    # The dump names no peer: the running ones take the file's names where it has them.
    before = dict((key, dict(peer, name=wanted.get(key, peer)["name"])) for key, peer in running.items())
    module.exit_json(changed=changed, diff=dict(before=describe(before), after=describe(wanted)), **report)


if __name__ == "__main__":
    main()
