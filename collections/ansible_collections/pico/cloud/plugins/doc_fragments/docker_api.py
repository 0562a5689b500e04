# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Modules that talk to the node's container runtime through its Docker-compatible API.
    DOCUMENTATION = r"""
options:
  api_socket:
    description:
      - The node's Docker-compatible API socket, served by Podman or Docker (see the
        container_runtime role, which puts it at this path on every node).
    type: path
    default: /run/docker.sock
"""
