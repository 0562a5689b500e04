#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: power_switch
short_description: Cut or restore a board's power through the switch it hangs on
version_added: "0.6.0"
description:
  - Runs on the host wired to the switch (delegate to it), never on the board itself. Reads the
    port's state first and switches only when it differs, so a second run changes nothing.
  - V(clusterctrl) drives a ClusterHAT or ClusterCTRL board (C(clusterctrl on|off pN)).
    V(uhubctl) drives a USB hub with per-port power switching (C(uhubctl -l LOCATION -p PORT -a on|off)).
    V(lab) starts or stops the container that stands for a board in the project's emulated lab.
  - Cutting power is a hard stop. Halt the board and let it leave the cluster first, as
    the playbook C(pico.cloud.energy) does.
options:
  switch:
    description:
      - The board's C(pico_power_switch) from the inventory, whole. Its keys C(driver), C(port),
        C(location), C(container) and C(command) are the options below; C(host) and C(become)
        are for the task (where it runs) and ignored here. Given options win over its keys.
    type: dict
  driver:
    description: The kind of switch; required unless O(switch) names it.
    type: str
    choices: [clusterctrl, uhubctl, lab]
  state:
    description: V(on) or V(off) to switch, V(query) to only read the port.
    type: str
    choices: ['on', 'off', query]
    default: query
  port:
    description: The port, for clusterctrl the slot number (1 for p1), for uhubctl the hub port.
    type: int
  location:
    description: For uhubctl, the hub's location as uhubctl lists it (for example V(1-1)).
    type: str
  container:
    description: For lab, the container of the board.
    type: str
  command:
    description: The switch's tool, if not V(clusterctrl), V(uhubctl) or V(docker) on the PATH.
    type: path
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
- name: Power the board down (it left the cluster and halted first)
  pico.cloud.power_switch:
    driver: clusterctrl
    port: 2
    state: "off"
  delegate_to: cluster-controller

- name: Power a board on a USB hub up
  pico.cloud.power_switch:
    driver: uhubctl
    location: 1-1
    port: 3
    state: "on"
  delegate_to: hub-host

- name: Read the switch of each board, as the inventory declares it
  pico.cloud.power_switch:
    switch: "{{ hostvars[item].pico_power_switch }}"
  delegate_to: "{{ hostvars[item].pico_power_switch.host | default('localhost') }}"
  loop: "{{ groups['pico_nodes'] }}"
"""

RETURN = r"""
power:
  description: The port's state after the module ran (in check mode, the state it would have).
  returned: always
  type: str
  sample: "off"
before:
  description: The port's state before.
  returned: always
  type: str
  sample: "on"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._power_switch import SwitchError, driver

SWITCH_KEYS = ("driver", "port", "location", "container", "command")
TASK_KEYS = ("host", "become")  # where the task runs: not the module's business


def main():
    module = AnsibleModule(
        argument_spec=dict(
            switch=dict(type="dict"),
            driver=dict(type="str", choices=["clusterctrl", "uhubctl", "lab"]),
            state=dict(type="str", default="query", choices=["on", "off", "query"]),
            port=dict(type="int"),
            location=dict(type="str"),
            container=dict(type="str"),
            command=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params)
    state = params["state"]
    declared = params.pop("switch") or {}
    unknown = sorted(set(declared) - set(SWITCH_KEYS) - set(TASK_KEYS))
    if unknown:
        module.fail_json(msg="pico_power_switch has unknown key%s %s (known: %s)" % (
            "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(SWITCH_KEYS + TASK_KEYS)))
    for key in SWITCH_KEYS:
        if params.get(key) is None and declared.get(key) is not None:
            params[key] = declared[key]
    if params.get("port") is not None:
        try:
            params["port"] = int(params["port"])
        except (TypeError, ValueError):
            module.fail_json(msg="pico_power_switch port %r: a whole number" % (params["port"],))

    def run(argv):
        if not module.get_bin_path(argv[0]) and "/" not in argv[0]:
            raise SwitchError("%s is not on this host's PATH: run the task on the host wired to the switch "
                              "(pico_power_switch.host), install %s there, or set command" % (argv[0], argv[0]))
        return module.run_command(argv)

    try:
        switch = driver(run, params)
        before = "on" if switch.is_on() else "off"
        changed = state != "query" and state != before
        if changed and not module.check_mode:
            switch.switch(state == "on")
            after = "on" if switch.is_on() else "off"
            if after != state:
                module.fail_json(msg="the %s switch still reads %s after switching it %s" % (params["driver"], after, state),
                                 before=before, power=after)
        module.exit_json(changed=changed, before=before, power=state if changed else before)
    except SwitchError as err:
        module.fail_json(msg=str(err))


if __name__ == "__main__":
    main()
