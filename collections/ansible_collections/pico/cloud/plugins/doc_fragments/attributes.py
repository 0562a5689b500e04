# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # What every module's attributes mean; each module says only how far it supports them.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the node.
  diff_mode:
    description: Returns details on what has changed (or would change, in check mode) in diff mode.
"""

    # Modules with an action plugin of the same name.
    FLOW = r"""
attributes:
  action:
    description: Has a corresponding action plugin, so part of the work runs on the controller.
"""
