#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wireguard_keypair
short_description: Generate a WireGuard key pair on the node; only the public key ever leaves it
version_added: "0.1.0"
description:
  - Generates a WireGuard private key on the managed node with C(wg genkey) and stores it with
    mode 0600, written atomically. The private key is never returned, printed or logged; the
    module returns the public key (derived with C(wg pubkey) through stdin, never on a command
    line) and a fingerprint of it.
  - An existing valid key is kept unless O(regenerate=always). An existing file that does not
    hold a valid key fails the module with the path, unless O(regenerate=always) replaces it.
  - The public key is also written next to the private key (O(path) with C(.pub)), so other
    tools can read it without touching the secret.
options:
  path:
    description: Private key file. Its directory is created with mode 0700 if missing.
    type: path
    required: true
  regenerate:
    description:
      - V(never) keeps an existing valid key (default); V(always) makes a new key on every run
        (used by key rotation).
    type: str
    choices: [never, always]
    default: never
extends_documentation_fragment:
  - pico.cloud.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the public key before and after, never the private key.
requirements:
  - wireguard-tools (C(wg)) on the managed node
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: Make sure the node has its WireGuard key
  pico.cloud.wireguard_keypair:
    path: /etc/wireguard/wg0.key
  register: wg_key

- name: Rotate it
  pico.cloud.wireguard_keypair:
    path: /etc/wireguard/wg0.key.next
    regenerate: always
"""

RETURN = r"""
public_key:
  description: The public key; null in check mode when a key would be created.
  type: str
  returned: always
  sample: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
fingerprint:
  description: SHA-256 based fingerprint of the public key, for reports.
  type: str
  returned: when public_key is known
  sample: SHA256:5e2a0c1f9b7d3a11
path:
  description: The private key file.
  type: str
  returned: always
created:
  description: >-
    When the key in O(path) was made (the file's modification time, in seconds since the epoch on
    the node's clock); null where there is no key yet. Peers keep it beside the public key, so of
    two public keys recorded for a node the newer one is known.
  type: int
  returned: always
  sample: 1764850000
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._atomic_file import write_atomic
from ansible_collections.pico.cloud.plugins.module_utils._wireguard import is_valid_key, key_fingerprint


def _wg(module, args, data=None):
    wg = module.get_bin_path("wg", required=True)
    rc, out, err = module.run_command([wg] + args, data=data, binary_data=True)
    if rc != 0:
        # err of `wg pubkey` may echo input on some versions: never include it
        module.fail_json(msg="`wg %s` failed with exit code %d: is wireguard-tools installed and working?" % (args[0], rc))
    return out.strip()


def _read_existing(module, path):
    if not os.path.exists(path):
        return None
    if not os.path.isfile(path):
        module.fail_json(msg="%s exists but is not a file: remove it or choose another path" % path)
    try:
        with open(path) as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg="cannot read the key file %s: %s" % (path, exc))


def _write_secret(module, path, content):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    # 0600 before the file takes its name: the key is never readable by others, even briefly.
    write_atomic(module, path, content, mode=0o600)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            regenerate=dict(type="str", choices=["never", "always"], default="never"),
        ),
        supports_check_mode=True,
    )
    path, regenerate = module.params["path"], module.params["regenerate"]
    pub_path = path + ".pub"

    existing = _read_existing(module, path)
    if existing is not None and not is_valid_key(existing) and regenerate != "always":
        module.fail_json(msg="%s does not hold a valid WireGuard private key (expected 44 base64 characters): "
                             "move it away, or set regenerate=always to replace it" % path)
    old_public = _wg(module, ["pubkey"], data=existing.strip()) if existing is not None and is_valid_key(existing) else None

    changed = existing is None or regenerate == "always"
    public = old_public
    if changed and not module.check_mode:
        private = _wg(module, ["genkey"])
        public = _wg(module, ["pubkey"], data=private)
        _write_secret(module, path, private + "\n")
    elif changed:
        public = None

    # The .pub file follows the key: repair it when it is missing or stale (a dry run says so too).
    if public is not None:
        current_pub = _read_existing(module, pub_path)
        if current_pub is None or current_pub.strip() != public:
            if not module.check_mode:
                write_atomic(module, pub_path, public + "\n", mode=0o644)
            changed = True
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else None
    if mode is not None and mode != 0o600:
        if not module.check_mode:
            os.chmod(path, 0o600)
        changed = True

    created = int(os.stat(path).st_mtime) if os.path.exists(path) and public is not None else None
    result = dict(changed=changed, path=path, public_key=public, created=created)
    if public:
        result["fingerprint"] = key_fingerprint(public)
    if module._diff:
        result["diff"] = dict(before={"public_key": old_public}, after={"public_key": public if changed else old_public})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
