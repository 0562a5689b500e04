#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mount_options
short_description: Ensure mount options on existing fstab entries
version_added: "0.1.0"
description:
  - Adds or removes mount options (such as C(noatime), which spares an SD card a write on every
    read) on the fstab entries of the given mount points.
  - Only existing entries are touched; mount points without an entry are reported in
    RV(missing) and left alone. Comments, blank lines, spacing of untouched lines and every other
    entry are kept byte for byte.
  - The file is written atomically (temp file, fsync, rename). Nothing is remounted; the options
    apply at the next mount, or after C(mount -o remount MOUNTPOINT).
options:
  path:
    description: The fstab file.
    type: path
    default: /etc/fstab
  mountpoints:
    description: Mount points whose entries get the options.
    type: list
    elements: path
    required: true
  options:
    description: Mount options, each a single word without commas (C(noatime), C(commit=600)).
    type: list
    elements: str
    required: true
  state:
    description: Whether the options are present or absent.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - pico.cloud.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: Mount the root and boot file systems with noatime
  pico.cloud.mount_options:
    mountpoints: [/, /boot/firmware]
    options: [noatime]
"""

RETURN = r"""
changed_mountpoints:
  description: Mount points whose entry was (or in check mode would be) changed.
  type: list
  elements: str
  returned: always
  sample: [/]
missing:
  description: Requested mount points that have no fstab entry.
  type: list
  elements: str
  returned: always
  sample: [/boot]
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._atomic_file import write_atomic

# fs_spec, fs_file, fs_vfstype, fs_mntops, then optional dump/pass; keep the separators.
ENTRY = re.compile(r"^(\s*)(\S+)(\s+)(\S+)(\s+)(\S+)(\s+)(\S+)(.*)$")


def _unescape(field):
    # fstab writes a space in a path as \040
    return field.replace("\\040", " ")


def edit_fstab(text, mountpoints, options, present):
    """Return (new_text, changed_mountpoints, missing) for the requested edit."""
    wanted = set(os.path.normpath(m) for m in mountpoints)
    seen, changed, out = set(), [], []
    for line in text.splitlines(True):
        match = ENTRY.match(line.rstrip("\n"))
        if line.lstrip().startswith("#") or not match:
            out.append(line)
            continue
        parts = list(match.groups())
        mountpoint = os.path.normpath(_unescape(parts[3]))
        if mountpoint not in wanted:
            out.append(line)
            continue
        seen.add(mountpoint)
        current = parts[7].split(",")
        if present:
            new = current + [opt for opt in options if opt not in current]
        else:
            new = [opt for opt in current if opt not in options]
        new_field = ",".join(new) if new else "defaults"  # the field may not be empty
        if new_field != parts[7]:
            parts[7] = new_field
            changed.append(mountpoint)
            line = "".join(parts) + ("\n" if line.endswith("\n") else "")
        out.append(line)
    missing = sorted(wanted - seen)
    return "".join(out), changed, missing


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/fstab"),
            mountpoints=dict(type="list", elements="path", required=True),
            options=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    path, options = module.params["path"], module.params["options"]
    bad = [opt for opt in options if not opt or "," in opt or any(c.isspace() for c in opt)]
    if bad:
        module.fail_json(msg="options must be single words without commas or spaces; got %r: list each option separately" % bad)
    if not os.path.isfile(path):
        module.fail_json(msg="%s does not exist: give the fstab path in `path`" % path)
    try:
        with open(path) as handle:
            before = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc))

    after, changed_mountpoints, missing = edit_fstab(
        before, module.params["mountpoints"], options, module.params["state"] == "present")
    changed = after != before
    if changed and not module.check_mode:
        write_atomic(module, path, after)
    result = dict(changed=changed, changed_mountpoints=changed_mountpoints, missing=missing)
    if module._diff:
        result["diff"] = dict(before=before, after=after, before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
