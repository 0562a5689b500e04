#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: packages_present
short_description: Install the Debian packages a node lacks, touching the mirror only then
version_added: "0.7.0"
description:
  - Reads the node's installed packages once per run (C(dpkg-query)) and keeps the list as the
    fact C(pico_packages_installed) (C(packages), and the run it belongs to, so a list kept in a
    fact cache by an earlier run is read again). Every later call in the run compares against it
    on the controller, with nothing run on the node. Only packages that are missing are installed
    (M(ansible.builtin.apt), no recommends, the package cache refreshed when older than an hour),
    so a converged node needs no network (offline sites) and each call costs a Pi Zero nothing.
  - Runs on the controller (an action plugin) and, when it must, C(dpkg-query) and M(ansible.builtin.apt) on the node.
  - Packages removed by hand during a run are not noticed until the next run.
options:
  name:
    description: Debian package names the node must have.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - pico.cloud.attributes
attributes:
  check_mode:
    support: full
    details: Reports the missing packages as a change; installs nothing.
  diff_mode:
    support: none
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: Install WireGuard tools where they are missing
  pico.cloud.packages_present:
    name: [wireguard-tools]
"""

RETURN = r"""
missing:
  description: The packages that were missing, installed now (or, in check mode, to install).
  returned: always
  type: list
  elements: str
ansible_facts:
  description: C(pico_packages_installed) - C(packages), the node's installed packages as this run knows them, and C(run).
  returned: always
  type: dict
"""
