#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout_lock
short_description: Take or release a node's rollout lock, a lease that a dead controller cannot hold for ever
version_added: "0.5.0"
description:
  - A rollout holds this lock on every node it may touch, so two controllers cannot roll out at
    once. Taking it is atomic on the node (the read, the expiry check and the write happen under
    an exclusive C(flock)), so of two runs that start together exactly one gets it.
  - The lock is a lease. Once O(lease) seconds have passed it counts as free, so a controller
    that crashed mid-rollout blocks the next one for that long at most. Keep the file on a
    C(tmpfs) such as C(/run), and a reboot frees it too.
  - Taking a lock this owner already holds changes nothing. Releasing marks the lock released only
    when this owner holds it, and never touches another run's lock. The released lock stays on the
    node (its owner and when), so a later run knows that run ended.
  - A board that was away when a run ended still holds that run's lock when it is back. The next
    run passes the runs it knows ended (released on other nodes) as O(ended), and takes such a
    lock over instead of waiting out its lease.
options:
  owner:
    description: Who takes or releases the lock, unique per run (for example C(controller-host:random)).
    type: str
    required: true
  service:
    description: What the rollout changes, shown to a run the lock stops.
    type: str
    default: all
  lease:
    description: Seconds the lock is held for unless released first.
    type: int
    default: 1800
  ended:
    description: Runs known to have ended (their lock is released on other nodes); a lock one of them still holds here is free.
    type: list
    elements: str
    default: []
  state:
    description: V(present) to take the lock, V(absent) to release it.
    type: str
    choices: [present, absent]
    default: present
  path:
    description: The lock file.
    type: path
    default: /run/pico-cloud-rollout.json
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
- name: Take the rollout lock
  pico.cloud.rollout_lock:
    owner: "{{ run_id }}"
    service: web
  any_errors_fatal: true

- name: Release it, failed or not
  pico.cloud.rollout_lock:
    owner: "{{ run_id }}"
    state: absent
"""

RETURN = r"""
holder:
  description: >-
    The lock as the module left it (owner, service, expires as Unix time), or null when free. A
    released lock is free and has C(released), the Unix time it was released.
  returned: always
  type: dict
"""

import fcntl
import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._atomic_file import write_atomic


def read_lock(path):
    """The lock's content, or None when there is none. A file that is not a lock (a crash cannot
    leave half a file: it is written atomically) counts as free rather than blocking for ever."""
    try:
        with open(path) as handle:
            held = json.load(handle)
    except (OSError, ValueError):
        return None
    return held if isinstance(held, dict) else None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            owner=dict(type="str", required=True),
            service=dict(type="str", default="all"),
            ended=dict(type="list", elements="str", default=[]),
            lease=dict(type="int", default=1800),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            path=dict(type="path", default="/run/pico-cloud-rollout.json"),
        ),
        supports_check_mode=True,
    )
    owner, path = module.params["owner"], module.params["path"]
    if module.params["lease"] <= 0:
        module.fail_json(msg="lease must be a positive number of seconds, not %s" % module.params["lease"])
    # Every run on this node takes the same exclusive flock before it looks at the lock, so a
    # check and the write after it cannot interleave with another run's.
    try:
        guard = open(path + ".guard", "a")
    except OSError as exc:
        module.fail_json(msg="cannot open %s.guard: %s" % (path, exc))
    with guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        held = read_lock(path)
        now = int(time.time())
        mine = held is not None and held.get("owner") == owner and not held.get("released")
        if module.params["state"] == "absent":
            if mine and not module.check_mode:
                released = dict(held, released=now)
                write_atomic(module, path, json.dumps(released) + "\n", mode=0o644)
            module.exit_json(changed=mine, holder=None if mine else held)
        if mine:
            module.exit_json(changed=False, holder=held)
        expires = held.get("expires", 0) if held else 0
        if held is not None and not held.get("released") and held.get("owner") not in module.params["ended"] \
                and isinstance(expires, (int, float)) and expires > now:
            module.fail_json(
                msg="a rollout of %s by %s holds the rollout lock until %s. Wait for it to end. If that run is "
                    "dead, remove %s on the nodes (it also expires by itself). Nothing was changed."
                    % (held.get("service", "?"), held.get("owner", "?"),
                       time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires)), path),
                holder=held)
        lock = {"owner": owner, "service": module.params["service"], "expires": now + module.params["lease"]}
        if not module.check_mode:
            write_atomic(module, path, json.dumps(lock) + "\n", mode=0o644)
        module.exit_json(changed=True, holder=lock)


if __name__ == "__main__":
    main()
