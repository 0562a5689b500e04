# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: fleet_summary
short_description: The boards a run did not converge, and what to do once they are back
version_added: "0.7.0"
description:
  - Takes the fleet as a run found it at its start (the C(pico_fleet) fact of the
    C(pico.cloud.fleet) role's C(reach) entry point) and the boards still in the play at its end,
    and says, one sentence each, which boards did not answer at the start (nothing was done there),
    which were lost during the run (unreachable or failed), which were left out because they are
    powered down, and how to converge the missing ones.
  - An empty list means every board of the group took part.
positional: remaining, playbook, missed, notes, run_failed, limit_rerun
options:
  _input:
    description: The C(pico_fleet) fact - C(group), C(powered_down), C(reached) and C(switch_problems).
    type: dict
    required: true
  remaining:
    description: The boards still in the play at its end (C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  playbook:
    description: The playbook to run again, as the user types it.
    type: str
    required: true
  missed:
    description: What a board that was not reached misses, in a few words.
    type: str
    default: ""
  notes:
    description: Per board, a sentence to add about it (what the playbook knows it left undone there).
    type: dict
    default: {}
  run_failed:
    description:
      - The run also failed on boards it reached (a rollout that failed and was rolled back), so
        running it again does more than converge the boards named, and the summary says so.
    type: bool
    default: false
  limit_rerun:
    description:
      - The playbook can be run with C(--limit) on the boards named alone, and the summary says how
        (after the run over every board, which works whatever changed while they were away).
    type: bool
    default: false
"""

EXAMPLES = r"""
lines: "{{ pico_fleet | pico.cloud.fleet_summary(ansible_play_hosts, 'site.yml', 'its roles were not applied') }}"
"""

RETURN = r"""
_value:
  description: Sentences for the operator; empty when every board took part.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._fleet import summary_lines


def _fleet_summary(fleet, remaining, playbook, missed="", notes=None, run_failed=False, limit_rerun=False):
    try:
        return summary_lines(fleet, remaining, playbook, missed, notes or {}, run_failed, limit_rerun)
    except (TypeError, ValueError) as err:
        raise AnsibleFilterError("fleet_summary: %s" % err)


class FilterModule(object):
    def filters(self):
        return {"fleet_summary": _fleet_summary}
