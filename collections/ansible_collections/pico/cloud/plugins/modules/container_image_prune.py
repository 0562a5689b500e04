#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: container_image_prune
short_description: Keep the N newest versions of each image so the SD card does not fill
version_added: "0.2.0"
description:
  - For each image repository, keeps the O(keep) newest tags (by the image's creation time, then
    by version order of the tag) and removes the older ones through the node's Docker-compatible
    API, on Podman and Docker alike.
  - Never removes an image that a container (running or stopped) uses, nor one named in
    O(protect); those are reported in RV(kept_in_use) and RV(kept_protected).
  - Untagged (dangling) images that no container uses are removed too, unless O(dangling=false).
options:
  keep:
    description: Tags to keep per repository. Two keeps the current version and the one to roll back to.
    type: int
    default: 2
  repositories:
    description: Only prune these repositories (names without tag). Default is every repository.
    type: list
    elements: str
    default: []
  protect:
    description: Image names (with tag) never to remove, such as the images the node should run.
    type: list
    elements: str
    default: []
  dangling:
    description: Also remove untagged images no container uses.
    type: bool
    default: true
extends_documentation_fragment:
  - pico.cloud.attributes
  - pico.cloud.docker_api
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff lists the image names before and after.
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: Keep the current and the previous version of each image
  pico.cloud.container_image_prune:
    keep: 2
    protect: [pico/demo:2.0.0]
"""

RETURN = r"""
removed:
  description: Image names (or IDs of untagged images) removed, or that would be in check mode.
  type: list
  elements: str
  returned: always
kept_in_use:
  description: Old image names kept because a container uses them.
  type: list
  elements: str
  returned: always
kept_protected:
  description: Old image names kept because O(protect) names them.
  type: list
  elements: str
  returned: always
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._docker_api import DOCKER_API_ARGUMENT_SPEC, DockerAPI, DockerAPIError
from ansible_collections.pico.cloud.plugins.module_utils._image_archive import normalize_name, split_name


def version_key(tag):
    """'1.10.0' sorts after '1.9.2': numbers compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", tag) if part]


def plan(images, used_ids, keep, repositories, protect, dangling):
    """Return (remove, kept_in_use, kept_protected): names (or IDs) of what to remove and why old ones stay."""
    wanted_repos = set(split_name(r + ":x")[0] for r in repositories)
    protected = set(normalize_name(name) for name in protect)
    by_repo = {}
    remove, in_use, kept_protected = [], [], []
    for image in images:
        tags = [t for t in image.get("RepoTags") or [] if t and not t.startswith("<none>")]
        if not tags:
            if dangling and image["Id"] not in used_ids:
                remove.append(image["Id"])
            continue
        for name in tags:
            repository, tag = split_name(name)
            by_repo.setdefault(repository, []).append((image.get("Created") or 0, version_key(tag), name, image["Id"]))
    for repository, entries in sorted(by_repo.items()):
        if wanted_repos and repository not in wanted_repos:
            continue
        entries.sort(reverse=True)
        for _created, _key, name, image_id in entries[keep:]:
            if normalize_name(name) in protected:
                kept_protected.append(name)
            elif image_id in used_ids:
                in_use.append(name)
            else:
                remove.append(name)
    return remove, in_use, kept_protected


def main():
    module = AnsibleModule(
        argument_spec=dict(
            keep=dict(type="int", default=2),
            repositories=dict(type="list", elements="str", default=[]),
            protect=dict(type="list", elements="str", default=[]),
            dangling=dict(type="bool", default=True),
            **DOCKER_API_ARGUMENT_SPEC
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["keep"] < 1:
        module.fail_json(msg="keep must be at least 1 (got %d): the newest version of an image is never pruned" % params["keep"])
    api = DockerAPI(params["api_socket"])
    try:
        images = api.images() or []
        used_ids = set(c.get("ImageID") for c in api.containers() or [])
        remove, in_use, kept_protected = plan(images, used_ids, params["keep"], params["repositories"],
                                              params["protect"], params["dangling"])
        before = sorted(t for image in images for t in image.get("RepoTags") or [] if not t.startswith("<none>"))
        if not module.check_mode:
            for name in remove:
                api.remove_image(name)
    except DockerAPIError as exc:
        module.fail_json(msg="pruning images failed: %s; images not yet removed are kept" % exc)
    after = [t for t in before if t not in remove]
    module.exit_json(changed=bool(remove), removed=remove, kept_in_use=in_use, kept_protected=kept_protected,
                     diff=dict(before="\n".join(before) + "\n", after="\n".join(after) + "\n"))


if __name__ == "__main__":
    main()
