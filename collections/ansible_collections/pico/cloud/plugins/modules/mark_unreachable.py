#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mark_unreachable
short_description: Count a board that a step could not reach as unreachable for the rest of the run
version_added: "0.7.0"
description:
  - Runs on the controller (an action plugin); it connects to nothing. The host it runs for is
    reported unreachable, as if its connection had failed now, so Ansible takes it out of the play,
    counts it in the recap and ends the run with exit code 4.
  - For a board that a delegated step found away (unreachable, or no longer alive in the
    cluster's gossip) after the play had started on it. Trying its connection again would cost
    another connect timeout, and might even succeed on a board that came back but missed the
    steps in between.
options:
  msg:
    description: Why the board counts as unreachable, shown in the task's output.
    type: str
    required: true
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
- name: Count the boards lost during the rollout as unreachable
  pico.cloud.mark_unreachable:
    msg: lost during the rollout of web; not rolled out there
  when: inventory_hostname in lost_boards
"""

RETURN = r"""
msg:
  description: The reason given.
  returned: always
  type: str
"""
