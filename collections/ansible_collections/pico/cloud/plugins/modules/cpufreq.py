#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cpufreq
short_description: Set the CPU frequency governor and frequency limits through sysfs
version_added: "0.3.0"
description:
  - Sets the scaling governor and the minimum and maximum scaling frequency of each cpufreq
    policy (C(/sys/devices/system/cpu/cpufreq/policyN)). On a Pi Zero there is one policy; a
    Pi Zero 2 W has one for its four cores.
  - Everything asked is checked against what the hardware offers before anything is written. An
    unknown governor fails with the list of available ones, a frequency outside the hardware
    range fails with that range.
  - On a machine without cpufreq (a container, a VM, the emulated lab) it returns
    RV(supported=false) and changes nothing, rather than failing.
  - Sysfs settings last until reboot; the power role installs a unit that applies them at boot.
options:
  governor:
    description: Scaling governor, for example V(ondemand), V(powersave), V(performance), V(schedutil).
    type: str
  min_freq:
    description:
      - Lowest frequency the governor may choose. An integer is kHz, as in sysfs; a string may
        carry a unit (V(700MHz), V(1GHz), V(700000kHz)).
    type: raw
  max_freq:
    description: Highest frequency the governor may choose (under-clocking); same forms as O(min_freq).
    type: raw
  policies:
    description: Only these policies (for example V(policy0)). Default is every policy.
    type: list
    elements: str
    default: []
  sysfs_root:
    description: The cpufreq directory; tests point it at a fake tree.
    type: path
    default: /sys/devices/system/cpu/cpufreq
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
- name: Let the CPU idle low and rise on demand
  pico.cloud.cpufreq:
    governor: ondemand
    max_freq: 1GHz
  register: cpufreq

- name: Report machines without cpufreq
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} has no cpufreq"
  when: not cpufreq.supported
"""

RETURN = r"""
supported:
  description: Whether the machine has cpufreq policies.
  type: bool
  returned: always
policies:
  description: Per policy, the settings after the task and what the hardware offers.
  type: dict
  returned: always
  sample:
    policy0:
      governor: ondemand
      min_freq: 700000
      max_freq: 1000000
      available_governors: [conservative, ondemand, userspace, powersave, performance, schedutil]
      hardware_min_freq: 700000
      hardware_max_freq: 1000000
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

UNITS_KHZ = {"khz": 1, "mhz": 1000, "ghz": 1000000}


def parse_khz(value, name):
    """kHz from an int or a string such as '700MHz'; None stays None. Raises ValueError with the reason."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG][hH][zZ])?\s*$", str(value))
    if not match:
        raise ValueError("%s %r is not a frequency: give kHz as an integer, or a number with kHz, MHz or GHz" % (name, value))
    number, unit = match.groups()
    return int(round(float(number) * UNITS_KHZ[(unit or "khz").lower()]))


def read(path):
    with open(path) as handle:
        return handle.read().strip()


def read_policy(directory):
    return {
        "governor": read(os.path.join(directory, "scaling_governor")),
        "min_freq": int(read(os.path.join(directory, "scaling_min_freq"))),
        "max_freq": int(read(os.path.join(directory, "scaling_max_freq"))),
        "available_governors": read(os.path.join(directory, "scaling_available_governors")).split(),
        "hardware_min_freq": int(read(os.path.join(directory, "cpuinfo_min_freq"))),
        "hardware_max_freq": int(read(os.path.join(directory, "cpuinfo_max_freq"))),
    }


def plan(name, current, governor, min_freq, max_freq):
    """The sysfs writes for one policy, in a safe order; raises ValueError naming what is wrong."""
    problems = []
    if governor is not None and governor not in current["available_governors"]:
        problems.append("governor %r is not available on %s; available: %s"
                        % (governor, name, ", ".join(current["available_governors"])))
    low, high = current["hardware_min_freq"], current["hardware_max_freq"]
    for label, value in (("min_freq", min_freq), ("max_freq", max_freq)):
        if value is not None and not low <= value <= high:
            problems.append("%s %d kHz is outside the hardware range of %s, %d-%d kHz" % (label, value, name, low, high))
    new_min = current["min_freq"] if min_freq is None else min_freq
    new_max = current["max_freq"] if max_freq is None else max_freq
    if not problems and new_min > new_max:
        problems.append("on %s min_freq %d kHz would be above max_freq %d kHz" % (name, new_min, new_max))
    if problems:
        raise ValueError("; ".join(problems))
    writes = []
    if governor is not None and governor != current["governor"]:
        writes.append(("scaling_governor", governor))
    freq_writes = []
    if min_freq is not None and min_freq != current["min_freq"]:
        freq_writes.append(("scaling_min_freq", str(min_freq)))
    if max_freq is not None and max_freq != current["max_freq"]:
        freq_writes.append(("scaling_max_freq", str(max_freq)))
    # The kernel refuses a minimum above the current maximum: raise the maximum first then.
    if min_freq is not None and min_freq > current["max_freq"]:
        freq_writes.reverse()
    return writes + freq_writes


def describe(policies):
    return "".join("%s: governor=%s min_freq=%d max_freq=%d\n" % (name, p["governor"], p["min_freq"], p["max_freq"])
                   for name, p in sorted(policies.items()))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            governor=dict(type="str"),
            min_freq=dict(type="raw"),
            max_freq=dict(type="raw"),
            policies=dict(type="list", elements="str", default=[]),
            sysfs_root=dict(type="path", default="/sys/devices/system/cpu/cpufreq"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    root = params["sysfs_root"]
    try:
        min_freq = parse_khz(params["min_freq"], "min_freq")
        max_freq = parse_khz(params["max_freq"], "max_freq")
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    found = sorted(d for d in (os.listdir(root) if os.path.isdir(root) else []) if re.match(r"^policy\d+$", d))
    if not found:
        module.exit_json(changed=False, supported=False, policies={},
                         msg="no cpufreq policies under %s (a container or VM?): nothing to set" % root)
    unknown = sorted(set(params["policies"]) - set(found))
    if unknown:
        module.fail_json(msg="no cpufreq policy %s here; this machine has %s" % (", ".join(unknown), ", ".join(found)))
    names = params["policies"] or found

    try:
        current = dict((name, read_policy(os.path.join(root, name))) for name in names)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read cpufreq settings under %s: %s" % (root, exc))
    writes, problems = {}, []
    for name in names:
        try:
            writes[name] = plan(name, current[name], params["governor"], min_freq, max_freq)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        module.fail_json(msg="%s; nothing was changed" % "; ".join(problems), policies=current, supported=True)

    after = dict((name, dict(current[name])) for name in names)
    for name, policy_writes in writes.items():
        for attribute, value in policy_writes:
            key = {"scaling_governor": "governor", "scaling_min_freq": "min_freq", "scaling_max_freq": "max_freq"}[attribute]
            after[name][key] = value if key == "governor" else int(value)
    changed = any(writes.values())
    if changed and not module.check_mode:
        done = []
        for name, policy_writes in writes.items():
            for attribute, value in policy_writes:
                path = os.path.join(root, name, attribute)
                try:
                    with open(path, "w") as handle:
                        handle.write(value)
                except (OSError, IOError) as exc:
                    module.fail_json(msg="writing %s to %s failed: %s; written before it: %s"
                                     % (value, path, exc, ", ".join(done) or "nothing"), supported=True)
                done.append("%s/%s=%s" % (name, attribute, value))
        after = dict((name, read_policy(os.path.join(root, name))) for name in names)
    module.exit_json(changed=changed, supported=True, policies=after,
                     diff=dict(before=describe(current), after=describe(after)))


if __name__ == "__main__":
    main()
