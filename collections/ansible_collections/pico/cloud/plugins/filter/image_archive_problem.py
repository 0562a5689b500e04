# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: image_archive_problem
short_description: Why an image archive on the controller cannot provide an image, or nothing
version_added: 0.2.0
description:
- Reads an image archive (C(docker save), C(podman save) or OCI layout tar) on the controller
  without loading it and checks that it exists, is an image archive, holds the image O(name),
  and, when O(digest) is given, that the image ID matches.
- Used in preflight, so a wrong archive stops a play before any node changes.
positional: name, digest
options:
  _input:
    description: Path of the archive; a relative path is taken from O(base_dir).
    type: path
    required: true
  name:
    description: Image name with tag the archive must hold.
    type: str
    required: true
  digest:
    description: Expected image ID (C(sha256:...)), or null.
    type: str
  base_dir:
    description: Directory relative paths start from, usually C(playbook_dir).
    type: path
"""

EXAMPLES = r"""
problem: "{{ 'images/demo.tar' | pico.cloud.image_archive_problem('pico/demo:1.0.0', base_dir=playbook_dir) }}"
"""

RETURN = r"""
_value:
  description: One sentence naming the problem and the fix; empty when the archive is good.
  type: str
"""

import os

from ansible_collections.pico.cloud.plugins.module_utils._image_archive import ArchiveError, archive_problem, read_archive


def _image_archive_problem(path, name, digest=None, base_dir=None):
    if base_dir and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    try:
        info = read_archive(path)
    except ArchiveError as exc:
        return "%s; nothing was changed" % exc
    return archive_problem(info, name, digest) or ""


class FilterModule(object):
    def filters(self):
        return {"image_archive_problem": _image_archive_problem}
