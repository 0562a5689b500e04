# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: power_down_choice
short_description: Which of the boards a plan leaves empty may be powered down, and why the others stay on
version_added: "0.6.0"
description:
  - Takes the boards a consolidated plan leaves empty and the inventory's facts about every board,
    and splits them into those to power down and those kept on, each with its reason.
  - A board stays on when it has no power switch (C(pico_power_switch)), runs services pinned to
    it (C(pico_agent_services)), is where the playbook runs (a local connection), switches another
    board's power, is the host the playbook reaches other boards through (a C(ProxyJump)/C(-J) in
    their SSH arguments), is listed in
    C(pico_energy_keep_on), or would be the last board on.
positional: boards, keep_on
options:
  _input:
    description: The boards the plan leaves empty, in the order to power them down.
    type: list
    elements: str
    required: true
  boards:
    description: >-
      Every live board, each a dict with C(name), C(switch) (its C(pico_power_switch) or null),
      C(pinned) (names of services pinned to it), C(ssh_args) (its SSH arguments, joined),
      C(address) (its C(ansible_host)) and C(connection) (its C(ansible_connection)).
    type: list
    elements: dict
    required: true
  keep_on:
    description: Boards never to power down.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
choice: "{{ plan.empty | pico.cloud.power_down_choice(boards, pico_energy_keep_on) }}"
"""

RETURN = r"""
_value:
  description: C(power_down), a list of board names, and C(kept_on), a dict of board name to reason.
  type: dict
"""

import re

from ansible.errors import AnsibleFilterError


def _power_down_choice(empty, boards, keep_on=None):
    if not isinstance(boards, list) or not all(isinstance(b, dict) and b.get("name") for b in boards):
        raise AnsibleFilterError("power_down_choice: boards must be a list of dicts with a name")
    keep_on = set(keep_on or [])
    switched_by = {}
    for board in boards:
        host = (board.get("switch") or {}).get("host")
        if host:
            switched_by.setdefault(host, []).append(board["name"])
    jump = {}
    for board in boards:
        for host in re.findall(r"(?:ProxyJump=|-J\s*)([^\s'\"]+)", board.get("ssh_args") or ""):
            for hop in host.split(","):
                jump.setdefault(hop.split("@")[-1].split(":")[0], []).append(board["name"])
    by_name = dict((b["name"], b) for b in boards)
    down, kept = [], {}
    for name in empty:
        board = by_name.get(name)
        if board is None:
            continue  # not a live board of this play
        if name in keep_on:
            kept[name] = "listed in pico_energy_keep_on"
        elif not board.get("switch"):
            kept[name] = "no power switch (pico_power_switch)"
        elif board.get("pinned"):
            kept[name] = "runs %s, pinned to it (pico_agent_services)" % ", ".join(board["pinned"])
        elif board.get("connection") == "local":
            kept[name] = "the playbook runs on it"
        elif name in switched_by:
            kept[name] = "switches the power of %s" % ", ".join(sorted(switched_by[name]))
        elif name in jump or board.get("address") in jump:
            kept[name] = "the playbook reaches %s through it" % ", ".join(sorted(jump.get(name) or jump[board["address"]]))
        else:
            down.append(name)
    if down and len(down) == len(boards):
        kept[down[-1]] = "the last board on: the cluster keeps one"
        down = down[:-1]
    return {"power_down": down, "kept_on": kept}


class FilterModule(object):
    def filters(self):
        return {"power_down_choice": _power_down_choice}
