# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Filters that work out the mesh from what the WireGuard role's probe found on each member.
    DOCUMENTATION = r"""
options:
  _input:
    description: The members of the mesh (the inventory group), by name.
    type: list
    elements: str
    required: true
  records:
    description: >-
      Per member reached, the lines its probe printed of its own configuration
      (C(peer NAME KEY_TIME PUBLIC_KEY ADDRESS ENDPOINT:PORT)).
    type: dict
    required: true
"""
